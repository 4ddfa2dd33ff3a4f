"""The data-loss policy both sides apply: what a loss is, and what failOnDataLoss does.

Kinesis trims records older than the stream's retention period. A query that was stopped
(or stuck) for longer than that may find that records after its position are gone. The
driver looks for the signs when it plans (``driver/loss_check.py``); an executor meets the
same losses when it starts reading: GetShardIterator (polling) or SubscribeToShard
(enhanced fan-out) answers ``ResourceNotFoundException`` for a shard that is gone,
``InvalidArgumentException`` for a sequence number no longer in the shard. ``read_loss``
and ``go_on_after`` decide that case for both transports.

Either side then applies one rule, ``lost``: with ``failOnDataLoss=true`` the query stops
with a ``DataLossError`` that names the shard and the time span; with ``false`` a warning
is logged and the query goes on from the oldest record still retained (a gone shard has
none: it counts as ended).
"""

from __future__ import annotations

import enum
import logging

from kinesis_source.errors import DataLossError
from kinesis_source.source.positions import Position

log = logging.getLogger(__name__)


def lost(
    stream: str,
    shard_id: str,
    message: str,
    *,
    fail_on_data_loss: bool,
    sequence_number: str | None = None,
    cause: BaseException | None = None,
) -> None:
    """Records of ``shard_id`` are lost: raise a ``DataLossError`` saying so and naming the
    option, or (failOnDataLoss=false) log it; the caller then goes on from the oldest record."""
    if fail_on_data_loss:
        raise DataLossError(
            f"{message} Set the option failOnDataLoss=false to log this and go on from "
            "the oldest record still in the shard.",
            stream=stream,
            shard_id=shard_id,
            sequence_number=sequence_number,
        ) from cause
    log.warning("%s failOnDataLoss=false: going on from the oldest record.", message)


class ReadLoss(enum.Enum):
    """What a refused GetShardIterator or SubscribeToShard says about the records to read."""

    # ResourceNotFoundException: the shard closed and aged out (or the stream is gone).
    SHARD_GONE = "shard gone"
    # InvalidArgumentException at a sequence number: it is older than the trim horizon.
    TRIMMED = "position trimmed"


def read_loss(error_code: str, position: Position) -> ReadLoss | None:
    """The loss an error of a call that starts reading at ``position`` reveals, if any."""
    if error_code == "ResourceNotFoundException":
        return ReadLoss.SHARD_GONE
    if error_code == "InvalidArgumentException" and position.sequence is not None:
        return ReadLoss.TRIMMED
    return None


def go_on_after(
    loss: ReadLoss,
    *,
    stream: str,
    shard_id: str,
    position: Position,
    refusal: str,
    fail_on_data_loss: bool,
    cause: BaseException | None = None,
) -> Position:
    """Where a read that met ``loss`` at ``position`` goes on: the oldest record still in
    the shard, or SHARD_END for a shard that is gone. Raises ``DataLossError`` (from
    ``cause``) with failOnDataLoss=true. ``refusal`` says which call refused, and how."""
    if loss is ReadLoss.SHARD_GONE:
        message = (
            f"Data loss on stream {stream!r}: shard {shard_id} is no longer in the stream "
            f"({refusal}; it closed and aged out of the retention before it was read to its "
            f"end); its records after {position.text()} are lost."
        )
        resume = Position.shard_end()
    else:
        message = (
            f"Data loss on stream {stream!r} shard {shard_id}: its position {position.text()} "
            f"is older than the stream's trim horizon ({refusal}); the records between it "
            "and the oldest record still retained were trimmed before they were read."
        )
        resume = Position.trim_horizon()
    lost(
        stream,
        shard_id,
        message,
        fail_on_data_loss=fail_on_data_loss,
        sequence_number=position.sequence,
        cause=cause,
    )
    return resume
