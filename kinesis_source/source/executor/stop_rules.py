"""When a shard read stops, and which rows of each page it hands out, decided without I/O.

A read takes pages (one GetRecords response, or later one SubscribeToShard event) one after
the other; these rules say, per page, which units to emit and whether to go on. They hold
for every transport alike:

- a replay reads from the start position up to and including the recorded end, whatever
  the limits, and fails if the shard's data runs out before it;
- a fresh read stops when caught up with the shard's tip, at the shard's end, at the
  per-shard or per-trigger record cap, at ``maxFetchTimeMs``, or (Trigger.AvailableNow)
  before the first record that arrived after the run's bound. A shard the driver knows is
  closed has no tip: its read goes on to its end (no ``NextShardIterator``), which may come
  in a later, empty call;
- a fresh read that has met only empty pages, one of them behind the tip
  (``MillisBehindLatest > 0``: an empty stretch of the shard's storage), records how far
  it walked as a timestamp (``walked_position``), so that the next batch goes on from there;
- a batch read (``for_batch``) stops at its fixed end: a last record, the arrival bound of
  its planning, the shard's end or the tip, with no cap and no time limit.

No boto3, no Spark: ``tests/unit/test_consume.py`` checks the slicing against a unit-by-unit
loop on hand-made pages.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import pyarrow.compute as pc

from kinesis_source import limits
from kinesis_source.errors import KinesisReadError
from kinesis_source.source.executor.walk import walk_on
from kinesis_source.source.positions import AT_TIMESTAMP, TRIM_HORIZON, Position

if TYPE_CHECKING:
    from kinesis_source.records.records_page import RecordsPage

# A user record's place in a shard: (sequence number, sub-sequence number or None for the
# whole record).
Mark = tuple[int, int | None]


@dataclass
class Progress:
    """Where a read stands: the last user record handed out and why it stopped."""

    position: Position
    records: int = 0
    # Bytes of data of the user records handed out (maxBytesPerTrigger's measure).
    data_bytes: int = 0
    millis_behind_latest: int | None = None
    caught_up: bool = False
    done: bool = False
    reached_bound: bool = False
    # A page held records (taken, skipped or past a bound): the position now follows them.
    took_records: bool = False
    # An empty page behind the tip was met before any record: the read is walking an
    # empty stretch, and its position follows the walk (``walked_position``).
    walking: bool = False

    def shard_ended(self) -> None:
        """The shard has no more records for this read: it closed, or it is gone."""
        self.position = Position.shard_end()
        self.caught_up = self.done = True


def passed(seq: int, sub: int, mark: Mark) -> bool:
    """True if user record (seq, sub) lies at or before ``mark`` = (seq, sub or whole)."""
    mark_seq, mark_sub = mark
    if seq != mark_seq:
        return seq < mark_seq
    return mark_sub is None or sub <= mark_sub


def bytes_allowed(ends: Sequence[int], left: int, *, first_goes: bool) -> int | None:
    """How many units a byte cap with ``left`` bytes to go lets a read take, of units whose
    running data sizes are ``ends`` (non-decreasing); None: all of them, the cap not met.

    The cap ends the read at the first unit that would pass it, or once met exactly. A
    read's first unit (``first_goes``) goes whatever its size, as a file source's first file
    does under ``maxBytesPerTrigger``, or a record larger than the shard's share would hold
    the shard back for ever. One binary search, not a loop over the units.
    """
    fits = bisect_right(ends, left)
    if fits == 0 and first_goes:
        fits = 1
    taken = ends[fits - 1] if fits else 0
    if fits < len(ends) or taken >= left:
        return fits
    return None


def first_arrival_after(page: RecordsPage, until_ms: int, count: int) -> int:
    """Index of the first of the page's first ``count`` records that arrived after
    ``until_ms`` (whole epoch milliseconds, inclusive), or ``count`` if none did."""
    if count == 0:
        return 0
    later = pc.greater(page.arrival_us.slice(0, count), until_ms * 1000 + 999)
    index = pc.index(later, True).as_py()
    return count if index < 0 else int(index)


def after_continuation(
    position: Position, continuation: str | None, stop: Position | None
) -> tuple[Position, bool]:
    """Where a read stands once it consumed an event entirely, and whether a replay up to
    ``stop`` is complete.

    Every record up to the continuation was delivered, so an empty event moves an idle
    shard's position forward (a resubscription there loses and repeats nothing). A
    replay is complete once the continuation reaches its recorded end.
    """
    if continuation is None:
        return position, False
    if stop is not None and stop.sequence is not None and int(continuation) >= int(stop.sequence):
        return stop, True
    if position.skip_sequence is not None and int(continuation) <= int(position.skip_sequence):
        return position, False  # still among the records read before a walk
    if position.sequence is not None and position.sub is not None:
        # Mid-aggregate: the rest of that aggregate is still unread.
        if int(continuation) <= int(position.sequence):
            return position, False
    if position.sequence is None or int(continuation) > int(position.sequence):
        return Position.after(continuation), False
    return position, False


@dataclass(frozen=True)
class StopRules:
    """The limits of one read of one shard, and the decisions taken on each page.

    ``stop`` set means a replay up to that recorded end; a replay has no other limit.
    """

    start: Position
    stop: Position | None
    max_records: int | None
    until_ms: int | None
    max_fetch_seconds: float
    # The most records one GetRecords page can hold (its Limit); a full page is not the
    # tip. An event (a page with a continuation) has no such limit.
    page_limit: int | None
    # ``stop`` is a batch read's fixed end, not a replay's recorded end: the read may reach
    # the tip or the arrival bound before it, which ends it without an error.
    end_is_bound: bool = False
    # The driver's last listing showed the shard closed (an EndingSequenceNumber): it has
    # no tip, and a read goes on until the call without a NextShardIterator.
    closed: bool = False
    walk_margin_ms: int = limits.WALK_CLOCK_MARGIN_MS
    # A replay whose recorded end is an enhanced fan-out continuation, not a record: read
    # by GetRecords, reaching the tip means every record up to it was read (section 13).
    stop_at_continuation: bool = False
    # The batch's byte limit for the shard (maxBytesPerTrigger's share); None: no limit.
    max_bytes: int | None = None

    @classmethod
    def for_read(
        cls,
        start: Position,
        stop: Position | None,
        *,
        task_max_records: int | None,
        max_records_per_shard: int | None,
        until_ms: int | None,
        max_fetch_ms: int,
        page_limit: int | None,
        closed: bool = False,
        task_max_bytes: int | None = None,
    ) -> StopRules:
        """The rules of a read from ``start``: a replay if ``stop`` is set, else fresh.

        ``task_max_records`` is the batch's admission limit for the shard; None falls back
        to ``max_records_per_shard``, and with neither the read is bounded by its time
        (``max_fetch_ms``), the tip and the run's bound only. ``task_max_bytes`` is the
        batch's byte limit for the shard: whichever of the two is met first ends the read.
        """
        if stop is not None:
            # A replay reads to the recorded end whatever the limits: only a fresh read has them.
            return cls(start, stop, None, None, max_fetch_ms / 1000.0, page_limit, closed=closed)
        cap = max_records_per_shard if task_max_records is None else task_max_records
        return cls(
            start,
            None,
            cap,
            until_ms,
            max_fetch_ms / 1000.0,
            page_limit,
            closed=closed,
            max_bytes=task_max_bytes,
        )

    @property
    def skip(self) -> Mark | None:
        """Units of a split aggregate the start position has already consumed."""
        return self.start.skip_through()

    @property
    def stop_mark(self) -> Mark | None:
        if self.stop is None or self.stop.sequence is None:
            return None
        return (int(self.stop.sequence), self.stop.sub)

    def units_left(self, progress: Progress) -> int | None:
        """User records a fresh read may still take under its cap; None: no cap (a replay,
        or a read with neither a batch limit nor ``maxRecordsPerShard``)."""
        if self.max_records is None:
            return None
        return max(0, self.max_records - progress.records)

    def with_page_limit(self, limit: int | None) -> StopRules:
        """These rules for a page asked with GetRecords' ``limit`` (a full page of that
        many records is not the tip)."""
        if limit is None or limit == self.page_limit:
            return self
        return replace(self, page_limit=limit)

    def nothing_to_read(self) -> bool:
        """A replay of a batch that read nothing from this shard: its recorded end is its
        start, or a timestamp (only a read that took no record records one)."""
        return self.stop is not None and (
            self.stop == self.start or self.stop.kind in (AT_TIMESTAMP, TRIM_HORIZON)
        )

    def at_tip(self, page: RecordsPage) -> bool:
        """The page reached the shard's newest record (and the shard goes on).

        Never on a shard known closed: its end may come in a later, empty call."""
        return (
            not self.closed
            and page.millis_behind_latest == 0
            and page.next_shard_iterator is not None
            and (
                self.page_limit is None
                or page.continuation is not None
                or len(page) < self.page_limit
            )
        )

    def consume(self, page: RecordsPage, progress: Progress) -> tuple[int, int]:
        """The units ``lo`` .. ``hi - 1`` of ``page`` to emit; updates ``progress``.

        Honours, in this order per user record, the skip mark (units of a split aggregate
        already consumed), the stop mark (a replay's recorded end) and the record cap.
        Units are in (sequence, sub) order, so the skip mark cuts a prefix and the stop
        mark and the cap cut a suffix: only the records at the cuts are looked at, not
        every unit. ``tests/unit/test_consume.py`` checks this against the unit-by-unit loop.
        """
        count = len(page)
        seqs = page.sequence_numbers
        starts = page.unit_starts
        stop_mark = self.stop_mark
        # Records past the stop mark's sequence number are never looked at; reaching one
        # ends the read.
        record_end = count
        if stop_mark is not None:
            record_end = bisect_right(seqs, stop_mark[0], key=int)
            if record_end < count:
                progress.done = True
        if self.until_ms is not None:
            after = first_arrival_after(page, self.until_ms, record_end)
            if after < record_end:
                record_end = after
                progress.done = progress.caught_up = progress.reached_bound = True
        # Skip mark: whole records up to its sequence number, then up to its sub.
        lo = 0
        skip = self.skip
        if skip is not None:
            skip_seq, skip_sub = skip
            index = 0
            while index < record_end:
                seq = int(seqs[index])
                if seq > skip_seq:
                    break
                if seq == skip_seq and skip_sub is not None:
                    lo = min(starts[index] + skip_sub + 1, starts[index + 1])
                    break
                index += 1
                lo = starts[index]
        hi = max(lo, starts[record_end])
        # Stop mark within the record of its sequence number.
        if stop_mark is not None and record_end > 0:
            stop_seq, stop_sub = stop_mark
            last = record_end - 1
            if stop_sub is not None and int(seqs[last]) == stop_seq:
                # Units from here on are past the mark; skipped ones never reach it.
                cut = max(lo, starts[last] + stop_sub + 1)
                if cut < hi:
                    hi = cut
                    progress.done = True
        capped = False
        # Running data sizes from ``lo``, only where a byte cap needs them.
        ends = page.data_ends(lo, hi) if self.max_bytes is not None else None
        allowed = self._units_allowed(lo, hi, progress, ends)
        if allowed is not None:
            cap = lo + allowed
            progress.done = capped = True
            if cap < hi:
                hi = cap
                progress.caught_up = progress.reached_bound = False
            elif not progress.reached_bound:
                # The cap ended exactly at the shard's last record: say so, or the next
                # batch is planned only to find nothing.
                progress.caught_up = hi == page.unit_count and self.at_tip(page)
        if hi > lo:
            unit = hi - 1
            record = page.record_of(unit)
            end_of_record = unit == starts[record + 1] - 1
            sub = None if end_of_record else unit - starts[record]
            progress.records += hi - lo
            if ends is not None:
                progress.data_bytes += ends[hi - lo - 1]
            progress.position = Position.after(seqs[record], sub)
        if record_end > 0 and hi == starts[record_end] and not capped:
            # Every record before record_end is consumed, including trailing ones that
            # hold no unit (a KPL aggregate of no user records): the position must pass
            # them, or each probe finds them again and plans an empty batch, forever.
            last_seq = seqs[record_end - 1]
            if skip is not None and skip[1] is None and int(last_seq) < skip[0]:
                # Only records read before a walk so far: they end at the skip mark.
                last_seq = str(skip[0])
            progress.position = Position.after(last_seq)
        if count:
            progress.took_records = True
        elif self.stop is None:
            walk_on(page, progress, self.start, self.until_ms, self.walk_margin_ms)
        if stop_mark is not None and progress.position == self.stop:
            progress.done = True
        if page.continuation is not None and not progress.done:
            # An event consumed whole: its continuation is where the read stands.
            progress.position, progress.done = after_continuation(
                progress.position, page.continuation, self.stop
            )
        return lo, hi

    def _units_allowed(
        self, lo: int, hi: int, progress: Progress, ends: Sequence[int] | None
    ) -> int | None:
        """How many of units ``lo`` .. ``hi - 1`` the caps let the read take before it ends;
        None: the caps do not end it on this page. ``ends``: the units' running data sizes
        (``RecordsPage.data_ends``), given where a byte cap is set.

        The record cap ends the read once met; the byte cap as ``bytes_allowed`` says.
        """
        allowed: int | None = None
        if self.max_records is not None and hi - lo >= self.max_records - progress.records:
            allowed = max(0, self.max_records - progress.records)
        if self.max_bytes is not None and ends:
            fits = bytes_allowed(
                ends, self.max_bytes - progress.data_bytes, first_goes=not progress.records
            )
            if fits is not None:
                allowed = fits if allowed is None else min(allowed, fits)
        return allowed

    def stops_after(
        self,
        page: RecordsPage,
        progress: Progress,
        elapsed_seconds: float,
        *,
        stream: str,
        shard_id: str,
        batch: int,
    ) -> bool:
        """After ``page`` was consumed: True if the read ends here; updates ``progress``.

        The stream, shard and batch name the read in the error a replay raises when the
        shard's data ran out before the recorded end.
        """
        if progress.done:
            return True
        if page.next_shard_iterator is None:
            progress.shard_ended()
            return True
        if self.stop is not None and not self.end_is_bound:
            if not len(page) and page.millis_behind_latest == 0:
                if self.stop_at_continuation:
                    progress.position, progress.done = self.stop, True
                    return True
                raise KinesisReadError(
                    f"replay of batch {batch} on shard {shard_id} reached the end of the "
                    f"shard's data before the recorded end {self.stop.text()}; the records "
                    "in between are gone",
                    stream=stream,
                    shard_id=shard_id,
                    sequence_number=self.stop.sequence,
                )
            return False
        if self.at_tip(page):
            progress.caught_up = True
            return True
        return elapsed_seconds >= self.max_fetch_seconds

    def reads_on_after(self, page: RecordsPage, progress: Progress) -> bool:
        """After ``page`` was consumed: the read will ask for the next page unless its time
        runs out first. ``stops_after`` without its side effects and clock, so that the
        next call can start while this page's rows are still being handed on."""
        if progress.done or page.next_shard_iterator is None:
            return False
        if self.stop is not None and not self.end_is_bound:
            # A replay reads on, except where it is about to fail for data that ran out.
            return bool(len(page)) or page.millis_behind_latest != 0
        return not self.at_tip(page)

    @classmethod
    def for_batch(
        cls, start: Position, end: Position | None, *, until_ms: int, page_limit: int | None
    ) -> StopRules:
        """The rules of a batch read (docs/design.md section 19): from ``start`` through
        ``end`` (a through mark; None: no mark), before the first record that arrived after
        ``until_ms``, or to the shard's end or its tip, whichever comes first. No cap and no
        time limit: the range is read whole, and every attempt reads the same rows."""
        return cls(start, end, None, until_ms, math.inf, page_limit, end_is_bound=True)
