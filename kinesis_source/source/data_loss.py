"""Records lost before the query read them: shards that vanished, positions past retention.

Kinesis trims records older than the stream's retention period. A query that was stopped
(or stuck) for longer than that may find that records after its position are gone. Two
signs are checked on the driver, without I/O here:

- a tracked shard that is not finished no longer appears in ListShards: it was closed
  and aged out before it was read to its end, so its unread tail is lost;
- a shard's position was last confirmed up to date (by a read that recorded it, or by a
  probe that found nothing new) longer ago than the retention: records that arrived
  between that time and the trim horizon may have been trimmed unread.

With ``failOnDataLoss=true`` either stops the query with a ``DataLossError`` that names
the shard and the time span; with ``false`` a warning is logged and the query goes on
from the oldest record still retained.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timezone

from kinesis_source.source.positions import AFTER_SEQUENCE_NUMBER, AT_SEQUENCE_NUMBER, Position


def vanished_shards(tracked: Mapping[str, Position], listed: Iterable[str]) -> list[str]:
    """Tracked shards with records still to read that ListShards no longer shows."""
    present = set(listed)
    return sorted(
        sid for sid, pos in tracked.items() if not pos.is_shard_end and sid not in present
    )


def stale_shards(
    tracked: Mapping[str, Position],
    confirmed_at_ms: Mapping[str, int],
    now_ms: int,
    retention_ms: int,
) -> dict[str, int]:
    """Shards whose sequence-number position was last confirmed before the trim horizon.

    Positions at TRIM_HORIZON or a timestamp cannot lose records: they start at whatever is
    oldest. Returns shard id -> the time its position was last confirmed (epoch ms).
    """
    horizon = now_ms - retention_ms
    return {
        sid: confirmed_at_ms[sid]
        for sid, pos in tracked.items()
        if pos.kind in (AFTER_SEQUENCE_NUMBER, AT_SEQUENCE_NUMBER)
        and sid in confirmed_at_ms
        and confirmed_at_ms[sid] < horizon
    }


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, timezone.utc).isoformat(timespec="seconds")


def span(ms: int) -> str:
    """A rough human duration: '3.2 h', '12 min', '40 s'."""
    seconds = ms / 1000
    if seconds >= 2 * 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 120:
        return f"{seconds / 60:.0f} min"
    return f"{seconds:.0f} s"
