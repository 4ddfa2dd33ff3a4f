"""Driver side: records lost before the query read them, seen when a batch is planned.

Two signs are checked, without I/O here:

- a tracked shard that is not finished no longer appears in ListShards: it was closed
  and aged out before it was read to its end, so its unread tail is lost;
- a shard's position was last confirmed up to date (by a read that recorded it, or by a
  probe that found nothing new) longer ago than the retention: records that arrived
  between that time and the trim horizon may have been trimmed unread. Whether they were
  is asked of the shard (``trimmed_unread``): the oldest record it still holds, one
  GetRecords at TRIM_HORIZON (``trim_probe``), only for such a shard.

What a loss then does is the policy both sides share (``source/data_loss.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timezone

from kinesis_source.source.data_loss import lost
from kinesis_source.source.positions import (
    AFTER_SEQUENCE_NUMBER,
    AT_SEQUENCE_NUMBER,
    Position,
    ShardEnd,
)


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


def trimmed_unread(position: Position, oldest: str | None) -> bool:
    """Whether records after a stale sequence-number ``position`` may have been trimmed,
    given ``oldest``, the oldest record the shard still holds (None: it holds none).

    Trimming removes the oldest records first. If the shard still holds a record at or
    before the position, nothing after it was trimmed: no loss, however long the query was
    down. If the oldest record left is later (or there is none), the position's own record
    was trimmed, and so may records that came after it: sequence numbers have gaps, so
    nothing tells whether any arrived in between, and that is reported.
    """
    if oldest is None or position.sequence is None:
        return True
    return int(oldest) > int(position.sequence)


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


class DataLossCheck:
    """The data-loss checks of one stream, and when each shard's position was last confirmed.

    A position is confirmed by a read that recorded its end (``confirm_ends``) or by a
    probe that found nothing new (``confirm``).
    """

    def __init__(
        self,
        stream: str,
        retention_ms: int,
        fail_on_data_loss: bool,
        oldest_record: Callable[[str], str | None] | None = None,
    ) -> None:
        self.stream = stream
        # Shard id -> the oldest record it still holds (driver/trim_probe.py); None: every
        # stale position is reported (no I/O here).
        self.oldest_record = oldest_record
        self.retention_ms = retention_ms
        self.fail_on_data_loss = fail_on_data_loss
        # Shard id -> when its position was last known up to date (epoch ms).
        self.confirmed_ms: dict[str, int] = {}

    def confirm(self, shard_id: str, at_ms: int) -> None:
        self.confirmed_ms[shard_id] = at_ms

    def confirm_ends(self, ends: Mapping[str, ShardEnd]) -> None:
        for sid, shard_end in ends.items():
            if shard_end.written_at_ms is not None:
                known_at = self.confirmed_ms.get(sid, 0)
                self.confirmed_ms[sid] = max(known_at, shard_end.written_at_ms)

    def check(
        self, positions: dict[str, Position], listed: Iterable[str] | None, now_ms: int
    ) -> dict[str, Position]:
        """Fail or warn about lost records; vanished shards count as ended.

        ``listed`` is the shard ids of a fresh listing, None if the stream was not listed.
        """
        stream = self.stream
        if listed is not None:
            for sid in vanished_shards(positions, listed):
                self._lost(
                    sid,
                    f"Data loss on stream {stream!r}: shard {sid} is no longer in the stream "
                    f"(it closed and aged out of the retention before it was read to its "
                    f"end); its records after {positions[sid].text()} are lost.",
                )
                positions[sid] = Position.shard_end()
        stale = stale_shards(positions, self.confirmed_ms, now_ms, self.retention_ms)
        for sid, confirmed in stale.items():
            horizon = now_ms - self.retention_ms
            found = ""
            if self.oldest_record is not None:
                oldest = self.oldest_record(sid)
                if not trimmed_unread(positions[sid], oldest):
                    # The position's record is still kept: nothing after it was trimmed.
                    self.confirmed_ms[sid] = now_ms
                    continue
                found = (
                    " and the shard holds no record now"
                    if oldest is None
                    else f" and the oldest record the shard still holds, {oldest}, comes after it"
                )
            self._lost(
                sid,
                f"Possible data loss on stream {stream!r} shard {sid}: its position "
                f"{positions[sid].text()} was last confirmed at {iso(confirmed)}, more than "
                f"the stream's retention ({span(self.retention_ms)}) ago{found}; records "
                f"that arrived between {iso(confirmed)} and {iso(horizon)} (about "
                f"{span(horizon - confirmed)}) were trimmed before they were read.",
            )
            self.confirmed_ms[sid] = now_ms
        # Bounded by the tracked shards: a finished shard no longer tracked is not asked.
        for sid in set(self.confirmed_ms) - set(positions):
            del self.confirmed_ms[sid]
        return positions

    def _lost(self, shard_id: str, message: str) -> None:
        lost(self.stream, shard_id, message, fail_on_data_loss=self.fail_on_data_loss)
