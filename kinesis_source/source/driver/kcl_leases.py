"""Start where a KCL (or Spark DStream) application stopped: its DynamoDB lease table.

The KCL 1.x, 2.x and 3.x lease tables share one item shape, one item per shard:
``leaseKey`` (the shard id, or ``ACCOUNT:STREAM:CREATION_EPOCH:SHARD_ID`` for a KCL 2.x/3.x
multi-stream application), ``checkpoint`` (a sequence number, or a sentinel:
``TRIM_HORIZON``, ``LATEST``, ``AT_TIMESTAMP``, ``SHARD_END``),
``checkpointSubSequenceNumber`` (the user record inside a KPL aggregate), plus
ownership fields (``leaseOwner``, ``leaseCounter``, ...) that do not matter here.

A checkpoint ``(seq, sub)`` means the application processed every user record up to and
including sub-record ``sub`` of record ``seq``; the KCL resumes AT ``seq`` and drops user
records at or before it. ``Position.after(seq, sub)`` is exactly that. The table is only
read (one consistent Scan), never written: the old application's state stays as it was.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kinesis_source.aws.clients import store_client
from kinesis_source.errors import KclLeaseError
from kinesis_source.source.options import InitialPosition, KinesisOptions
from kinesis_source.source.positions import Position

log = logging.getLogger(__name__)

# KCL's SentinelCheckpoint values that are a start rule, not progress: the application
# never checkpointed the shard, so we do not know more than the table does.
_NO_PROGRESS = frozenset({"LATEST", "AT_TIMESTAMP"})


@dataclass(frozen=True)
class Lease:
    """One lease item: ``stream`` is set for a multi-stream lease key."""

    shard_id: str
    checkpoint: str
    sub: int
    stream: str | None = None

    def position(self) -> Position | None:
        """Where reading resumes; None if the lease records no progress."""
        if self.checkpoint == "SHARD_END":
            return Position.shard_end()
        if self.checkpoint == "TRIM_HORIZON":
            return Position.trim_horizon()
        if self.checkpoint in _NO_PROGRESS:
            return None
        return Position.after(self.checkpoint, self.sub)


def parse_lease(table: str, item: Mapping[str, Any]) -> Lease:
    """A lease from a DynamoDB item already turned into plain values (str, int, Decimal)."""
    key = item.get("leaseKey")
    checkpoint = item.get("checkpoint")
    if not isinstance(key, str) or not isinstance(checkpoint, str):
        raise KclLeaseError(
            f"KCL lease table {table!r}: the item {dict(item)!r} has no leaseKey or checkpoint "
            "string; is this a KCL lease table (option kclLeaseTable)?"
        )
    if not (checkpoint.isdigit() or checkpoint in (*_NO_PROGRESS, "TRIM_HORIZON", "SHARD_END")):
        raise KclLeaseError(
            f"KCL lease table {table!r}: lease {key!r} has the checkpoint {checkpoint!r}, "
            "which is neither a sequence number nor a KCL sentinel"
        )
    sub = int(item.get("checkpointSubSequenceNumber") or 0)
    parts = key.split(":")
    if len(parts) == 1:
        return Lease(key, checkpoint, sub)
    if len(parts) == 4:
        # KCL 2.x/3.x multi-stream: StreamIdentifier "account:stream:epoch", then the shard.
        return Lease(parts[3], checkpoint, sub, stream=parts[1])
    raise KclLeaseError(
        f"KCL lease table {table!r}: cannot read the lease key {key!r}; expected a shard id "
        "or ACCOUNT:STREAM:CREATION_EPOCH:SHARD_ID"
    )


def lease_positions(
    table: str, leases: Iterable[Lease], streams: Sequence[str]
) -> dict[str, dict[str, Position]]:
    """Stream -> shard -> the position the leases give, for the streams of the query.

    Leases of a single-stream application (plain shard ids) belong to the query's stream,
    so they need a query of one stream. Leases of other streams are ignored.
    """
    found: dict[str, dict[str, Position]] = {name: {} for name in streams}
    for lease in leases:
        stream = lease.stream
        if stream is None:
            if len(streams) != 1:
                raise KclLeaseError(
                    f"KCL lease table {table!r} belongs to a single-stream application (its "
                    f"lease keys are shard ids such as {lease.shard_id!r}), but the query "
                    f"reads {len(streams)} streams: read that stream in a query of its own"
                )
            stream = streams[0]
        if stream not in found:
            continue
        position = lease.position()
        if position is not None:
            found[stream][lease.shard_id] = position
    return found


def read_lease_table(client: Any, table: str) -> list[Lease]:
    """Every lease of ``table``: one strongly consistent, paginated Scan, nothing written."""
    from boto3.dynamodb.types import TypeDeserializer
    from botocore.exceptions import BotoCoreError, ClientError

    plain = TypeDeserializer()
    leases: list[Lease] = []
    request: dict[str, Any] = {"TableName": table, "ConsistentRead": True}
    try:
        while True:
            page = client.scan(**request)
            for item in page.get("Items", []):
                values = {name: plain.deserialize(value) for name, value in item.items()}
                leases.append(parse_lease(table, values))
            if not page.get("LastEvaluatedKey"):
                break
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code == "ResourceNotFoundException":
            raise KclLeaseError(
                f"KCL lease table {table!r} does not exist (option kclLeaseTable; it is read "
                "with the DynamoDB settings checkpointRegion and checkpointEndpointUrl)"
            ) from exc
        raise KclLeaseError(f"cannot read KCL lease table {table!r}: {code or exc}") from exc
    except BotoCoreError as exc:
        raise KclLeaseError(f"cannot read KCL lease table {table!r}: {exc}") from exc
    log.info("KCL lease table %s: %d leases", table, len(leases))
    return leases


def leases_for(opts: KinesisOptions, streams: Sequence[str]) -> dict[str, dict[str, Position]]:
    """``initialPosition=kcl``: each stream's positions from the KCL lease table (nothing
    for another start). The table is read where the checkpoint store would be
    (``checkpointRegion``, ``checkpointEndpointUrl``)."""
    table = opts.kcl_lease_table
    if opts.initial_position is not InitialPosition.KCL or table is None:
        return {}
    dynamodb = store_client(
        "dynamodb",
        opts,
        region=opts.checkpoint_region,
        endpoint_url=opts.checkpoint_endpoint_url,
        check=True,
    )
    return lease_positions(table, read_lease_table(dynamodb, table), streams)
