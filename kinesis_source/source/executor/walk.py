"""Empty stretches of a shard: how far a read of empty pages got, decided without I/O.

GetRecords from TRIM_HORIZON, an old AT_TIMESTAMP or a sequence number with nothing after
it for a long while "might take multiple calls to get to a portion of the shard that
contains records" (GetRecords API reference): empty pages with ``MillisBehindLatest > 0``
and a ``NextShardIterator`` further on. A read that met only such pages records how far
it walked as a timestamp, so that the next batch goes on from there (docs/design.md
section 12, "Empty stretches").
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from kinesis_source.source.positions import (
    AFTER_SEQUENCE_NUMBER,
    AT_SEQUENCE_NUMBER,
    AT_TIMESTAMP,
    TRIM_HORIZON,
    Position,
)

if TYPE_CHECKING:
    from kinesis_source.records.records_page import RecordsPage


class Walk(Protocol):
    """What a walk updates of a read's progress (``stop_rules.Progress``)."""

    position: Position
    took_records: bool
    walking: bool
    done: bool
    caught_up: bool
    reached_bound: bool


def walked_position(start: Position, reached_ms: int) -> Position | None:
    """Where a read from ``start`` that met only empty pages up to a point dated
    ``reached_ms`` (epoch ms, margin included) stands, or None: it cannot say.

    No record arrived between ``start`` and that point, and every record after it arrived
    at ``reached_ms`` or later, so ``AT_TIMESTAMP(reached_ms)`` skips nothing. From a
    sequence number the records up to it were read, and some may have arrived after
    ``reached_ms``: the position skips through them. A timestamp start moves only forward.
    """
    if start.kind == TRIM_HORIZON:
        return Position.walked_to(reached_ms)
    if start.kind == AT_TIMESTAMP:
        assert start.timestamp_ms is not None
        if reached_ms <= start.timestamp_ms:
            return None
        return Position.walked_to(reached_ms, start.skip_sequence)
    if start.kind == AFTER_SEQUENCE_NUMBER and start.sub is None:
        return Position.walked_to(reached_ms, start.sequence)
    if start.kind == AT_SEQUENCE_NUMBER:
        # Sequence numbers are integers: "before x" is "through x - 1".
        assert start.sequence is not None
        return Position.walked_to(reached_ms, str(int(start.sequence) - 1))
    # Inside a split aggregate (its record comes first), or at a shard's end.
    return None


def walk_on(
    page: RecordsPage, progress: Walk, start: Position, until_ms: int | None, margin_ms: int
) -> None:
    """An empty page of a fresh read from ``start`` that has met no record yet: once a page
    was behind the tip, the position follows the walk, dated by this page (its arrival on
    the reader's clock, minus MillisBehindLatest, minus ``margin_ms``). Under
    Trigger.AvailableNow (``until_ms``) a walk past the run's bound is done for the run."""
    if (
        progress.took_records
        or page.continuation is not None
        or page.next_shard_iterator is None
        or page.received_ms is None
        or page.millis_behind_latest is None
    ):
        return
    if page.millis_behind_latest > 0:
        progress.walking = True
    if not progress.walking:
        return
    reached_ms = page.received_ms - page.millis_behind_latest - margin_ms
    walked = walked_position(start, reached_ms)
    if walked is not None:
        progress.position = walked
    if until_ms is not None and reached_ms > until_ms:
        progress.done = progress.caught_up = progress.reached_bound = True
