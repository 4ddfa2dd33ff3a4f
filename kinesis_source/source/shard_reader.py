"""Executor side: read one shard for one batch and record where the read ended.

``read_shard`` is the whole of DESIGN.md section 2's ``read(p)``:

1. If the store has an end for ``(batch, shard)``, this is a replay: read from the start
   position up to and including that end, ignoring every limit.
2. Otherwise read until caught up, the shard ends, or a cap is hit; after the last row was
   handed to Spark, record the end with put-if-absent. Losing that race raises, so Spark
   retries the task, which then takes branch 1.
"""

from __future__ import annotations

import logging
import time
from bisect import bisect_right
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import pyarrow as pa
import pyarrow.compute as pc
from botocore.exceptions import ClientError

from kinesis_source.aws.clients import kinesis_client
from kinesis_source.aws.retry import call_with_retry, policy_of
from kinesis_source.errors import (
    CheckpointConflictError,
    KinesisReadError,
    StreamNotFoundError,
)
from kinesis_source.options import Decoder, KinesisOptions
from kinesis_source.records.fast_decode import get_records_page
from kinesis_source.records.records_page import RecordsPage, page_from_response
from kinesis_source.source.positions import Position, ShardEnd
from kinesis_source.stores import CheckpointStore

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class ShardTask:
    """What one read needs besides the options: it travels in the InputPartition."""

    batch: int
    stream: str
    query: str
    shard_id: str
    start: Position
    # The batch's record limit for this shard (admission control); None: maxRecordsPerShard.
    max_records: int | None = None
    # Trigger.AvailableNow: records that arrived after this (epoch ms) are not read.
    until_ms: int | None = None


@dataclass
class _Progress:
    """Where a read stands: the last user record handed out and why it stopped."""

    position: Position
    records: int = 0
    millis_behind_latest: int | None = None
    caught_up: bool = False
    done: bool = False
    reached_bound: bool = False


def _passed(seq: int, sub: int, mark: tuple[int, int | None]) -> bool:
    """True if user record (seq, sub) lies at or before ``mark`` = (seq, sub or whole)."""
    mark_seq, mark_sub = mark
    if seq != mark_seq:
        return seq < mark_seq
    return mark_sub is None or sub <= mark_sub


class _ShardRead:
    """One pass over a shard from ``task.start``; ``stop`` set means replay up to it."""

    def __init__(
        self,
        opts: KinesisOptions,
        task: ShardTask,
        stop: Position | None,
    ) -> None:
        self.opts = opts
        self.task = task
        self.stop = stop
        self.client = kinesis_client(opts, raw_get_records=opts.decoder is Decoder.FAST)
        self.policy = policy_of(opts)
        self.progress = _Progress(position=task.start)
        # A replay reads to the recorded end whatever the limits: only a fresh read has them.
        self.max_records: int | None = None
        self.until_ms: int | None = None
        if stop is None:
            self.max_records = (
                opts.max_records_per_shard if task.max_records is None else task.max_records
            )
            self.until_ms = task.until_ms
        skip = task.start.skip_through()
        self.skip: tuple[int, int | None] | None = skip
        self.stop_mark: tuple[int, int | None] | None = None
        if stop is not None and stop.sequence is not None:
            self.stop_mark = (int(stop.sequence), stop.sub)

    def _retrying(self, what: str, call: Callable[[], T]) -> T:
        return call_with_retry(
            call, self.policy, what=what, stream=self.task.stream, shard_id=self.task.shard_id
        )

    def _iterator_at(self, position: Position) -> str | None:
        """An iterator at ``position``; None if the shard is gone and failOnDataLoss=false."""
        request = position.iterator_request()
        try:
            resp = self._retrying(
                "GetShardIterator",
                lambda: self.client.get_shard_iterator(
                    StreamName=self.task.stream, ShardId=self.task.shard_id, **request
                ),
            )
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if not self.opts.fail_on_data_loss:
                if code == "ResourceNotFoundException":
                    log.warning(
                        "shard %s of stream %r is gone; its records after %s are lost "
                        "(failOnDataLoss=false: treating it as ended)",
                        self.task.shard_id,
                        self.task.stream,
                        position.text(),
                    )
                    return None
                if code == "InvalidArgumentException" and position.sequence is not None:
                    log.warning(
                        "shard %s: position %s is no longer valid (%s); going on from the "
                        "oldest record (failOnDataLoss=false)",
                        self.task.shard_id,
                        position.text(),
                        exc,
                    )
                    return self._iterator_at(Position.trim_horizon())
            self._raise_for(exc, "GetShardIterator")
        return str(resp["ShardIterator"])

    def _raise_for(self, exc: ClientError, call: str) -> Any:
        code = exc.response.get("Error", {}).get("Code", "")
        if code == "ResourceNotFoundException":
            raise StreamNotFoundError(
                f"{call}: stream {self.task.stream!r} or its shard {self.task.shard_id} "
                f"does not exist in region {self.opts.region}",
                stream=self.task.stream,
                shard_id=self.task.shard_id,
            ) from exc
        raise KinesisReadError(
            f"{call} failed on stream {self.task.stream!r} shard {self.task.shard_id} "
            f"at {self.progress.position.text()}: {code or exc}",
            stream=self.task.stream,
            shard_id=self.task.shard_id,
            sequence_number=self.progress.position.sequence,
        ) from exc

    def run(self) -> Iterator[pa.RecordBatch]:
        task = self.task
        progress = self.progress
        if self.stop is not None and self.stop == task.start:
            progress.done = True
            return
        deadline = time.monotonic() + self.opts.max_fetch_time_ms / 1000.0
        interval = self.opts.fetch_interval_ms / 1000.0
        iterator = self._iterator_at(task.start)
        if iterator is None:
            progress.position = Position.shard_end()
            progress.caught_up = progress.done = True
            return
        last_call = 0.0
        while iterator is not None and not progress.done:
            wait = last_call + interval - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            last_call = time.monotonic()
            try:
                page = self._get_page(iterator)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") == "ExpiredIteratorException":
                    log.info(
                        "shard %s: iterator expired; re-acquiring at %s",
                        task.shard_id,
                        progress.position.text(),
                    )
                    iterator = self._iterator_at(progress.position)
                    if iterator is None:
                        progress.position = Position.shard_end()
                        progress.caught_up = progress.done = True
                    continue
                self._raise_for(exc, "GetRecords")
            behind = page.millis_behind_latest
            progress.millis_behind_latest = behind
            lo, hi = self._consume(page)
            log.debug(
                "shard %s batch %d: %d records, %d rows, %s ms behind",
                task.shard_id,
                task.batch,
                len(page),
                hi - lo,
                behind,
            )
            if hi > lo:
                yield page.to_batch(lo, hi, task.stream, task.shard_id)
            if progress.done:
                break
            iterator = page.next_shard_iterator
            if iterator is None:
                progress.position = Position.shard_end()
                progress.caught_up = True
                progress.done = True
                break
            if self.stop is not None:
                if not len(page) and behind == 0:
                    raise KinesisReadError(
                        f"replay of batch {task.batch} on shard {task.shard_id} reached the "
                        f"end of the shard's data before the recorded end "
                        f"{self.stop.text()}; the records in between are gone",
                        stream=task.stream,
                        shard_id=task.shard_id,
                        sequence_number=self.stop.sequence,
                    )
                continue
            if behind == 0 and len(page) < self.opts.get_records_limit:
                progress.caught_up = True
                break
            if time.monotonic() >= deadline:
                break

    def _get_page(self, iterator: str) -> RecordsPage:
        """One GetRecords call, decoded by the configured decoder."""
        limit = self.opts.get_records_limit
        if self.opts.decoder is Decoder.FAST:
            return self._retrying(
                "GetRecords",
                lambda: get_records_page(
                    self.client, iterator, limit, deaggregate_kpl=self.opts.deaggregate
                ),
            )
        resp = self._retrying(
            "GetRecords", lambda: self.client.get_records(ShardIterator=iterator, Limit=limit)
        )
        return page_from_response(resp, deaggregate_kpl=self.opts.deaggregate)

    def _consume(self, page: RecordsPage) -> tuple[int, int]:
        """The units ``lo`` .. ``hi - 1`` of ``page`` to emit, and the progress after them.

        Honours, in this order per user record, the skip mark (units of a split aggregate
        already consumed), the stop mark (a replay's recorded end) and the record cap.
        Units are in (sequence, sub) order, so the skip mark cuts a prefix and the stop
        mark and the cap cut a suffix: only the records at the cuts are looked at, not
        every unit. ``tests/test_consume.py`` checks this against the unit-by-unit loop.
        """
        progress = self.progress
        count = len(page)
        seqs = page.sequence_numbers
        starts = page.unit_starts
        # Records past the stop mark's sequence number are never looked at; reaching one
        # ends the read.
        record_end = count
        if self.stop_mark is not None:
            stop_seq = self.stop_mark[0]
            record_end = bisect_right(seqs, stop_seq, key=int)
            if record_end < count:
                progress.done = True
        if self.until_ms is not None:
            after = first_arrival_after(page, self.until_ms, record_end)
            if after < record_end:
                record_end = after
                progress.done = progress.caught_up = progress.reached_bound = True
        # Skip mark: whole records up to its sequence number, then up to its sub.
        lo = 0
        if self.skip is not None:
            skip_seq, skip_sub = self.skip
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
        if self.stop_mark is not None and record_end > 0:
            stop_seq, stop_sub = self.stop_mark
            last = record_end - 1
            if stop_sub is not None and int(seqs[last]) == stop_seq:
                # Units from here on are past the mark; skipped ones never reach it.
                cut = max(lo, starts[last] + stop_sub + 1)
                if cut < hi:
                    hi = cut
                    progress.done = True
        capped = False
        if self.max_records is not None and hi - lo >= self.max_records - progress.records:
            cap = lo + (self.max_records - progress.records)
            progress.done = capped = True
            if cap < hi:
                hi = cap
                progress.caught_up = progress.reached_bound = False
            elif not progress.reached_bound:
                # The cap ended exactly at the shard's last record: say so, or the next
                # batch is planned only to find nothing.
                progress.caught_up = (
                    hi == page.unit_count
                    and page.millis_behind_latest == 0
                    and page.next_shard_iterator is not None
                    and count < self.opts.get_records_limit
                )
        if hi > lo:
            unit = hi - 1
            record = page.record_of(unit)
            end_of_record = unit == starts[record + 1] - 1
            sub = None if end_of_record else unit - starts[record]
            progress.records += hi - lo
            progress.position = Position.after(seqs[record], sub)
        if record_end > 0 and hi == starts[record_end] and not capped:
            # Every record before record_end is consumed, including trailing ones that
            # hold no unit (a KPL aggregate of no user records): the position must pass
            # them, or each probe finds them again and plans an empty batch, forever.
            progress.position = Position.after(seqs[record_end - 1])
        if self.stop_mark is not None and progress.position == self.stop:
            progress.done = True
        return lo, hi


def first_arrival_after(page: RecordsPage, until_ms: int, count: int) -> int:
    """Index of the first of the page's first ``count`` records that arrived after
    ``until_ms`` (whole epoch milliseconds, inclusive), or ``count`` if none did."""
    if count == 0:
        return 0
    later = pc.greater(page.arrival_us.slice(0, count), until_ms * 1000 + 999)
    index = pc.index(later, True).as_py()
    return count if index < 0 else int(index)


def read_shard(
    opts: KinesisOptions, store: CheckpointStore, task: ShardTask
) -> Generator[pa.RecordBatch, None, None]:
    """Rows of ``task``'s shard for its batch; records the end on first success."""
    recorded = store.get(task.stream, task.query, task.batch, task.shard_id)
    if recorded is not None:
        log.info(
            "batch %d shard %s: replaying %s .. %s",
            task.batch,
            task.shard_id,
            task.start.text(),
            recorded.position.text(),
        )
        yield from _ShardRead(opts, task, stop=recorded.position).run()
        return

    read = _ShardRead(opts, task, stop=None)
    yield from read.run()
    progress = read.progress
    end = ShardEnd(
        position=progress.position,
        records=progress.records,
        millis_behind_latest=progress.millis_behind_latest,
        caught_up=progress.caught_up,
        reached_bound_ms=task.until_ms if progress.reached_bound else None,
    )
    if not store.put_if_absent(task.stream, task.query, task.batch, task.shard_id, end):
        raise CheckpointConflictError(
            f"batch {task.batch} shard {task.shard_id}: another attempt recorded its end "
            "first; failing this attempt so that Spark retries it as a replay of that range",
            stream=task.stream,
            shard_id=task.shard_id,
        )
    log.info(
        "batch %d shard %s: read %d records to %s (%s ms behind)",
        task.batch,
        task.shard_id,
        progress.records,
        progress.position.text(),
        progress.millis_behind_latest,
    )
