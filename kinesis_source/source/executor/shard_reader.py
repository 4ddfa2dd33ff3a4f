"""Executor side: read one shard for one batch and record where the read ended.

``read_shard`` is the whole of docs/design.md section 2's ``read(p)``:

1. If the store has an end for ``(batch, shard)``, this is a replay: read from the start
   position up to and including that end, ignoring every limit.
2. Otherwise read until caught up, the shard ends, or a cap is hit; after the last row was
   handed to Spark, record the end with put-if-absent. Losing that race raises, so Spark
   retries the task, which then takes branch 1.

The read itself is three parts: the transport brings pages (``get_records``), the stop
rules decide which rows of each page to emit and when to stop (``stop_rules``, pure), and
``record_end`` writes the outcome to the store. Another transport only replaces the first.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Generator, Iterator
from dataclasses import replace
from typing import NamedTuple

import pyarrow as pa

from kinesis_source import limits
from kinesis_source.errors import CheckpointConflictError
from kinesis_source.records.hash_range import keep_in_range
from kinesis_source.records.records_page import RecordsPage
from kinesis_source.source.executor import kept_iterators
from kinesis_source.source.executor.efo import EventStreamTransport
from kinesis_source.source.executor.get_records import GetRecordsTransport
from kinesis_source.source.executor.replay_check import (
    check_replay_start,
    first_to_record,
    moved_to_continuation,
)
from kinesis_source.source.executor.stop_rules import Progress, StopRules
from kinesis_source.source.options import KinesisOptions
from kinesis_source.source.positions import Position, ShardEnd
from kinesis_source.source.shard_range import ShardRange
from kinesis_source.source.tasks import ShardTask
from kinesis_source.stores import CheckpointStore

log = logging.getLogger(__name__)


class _LastPage(NamedTuple):
    """What of a read's last page says whether its NextShardIterator reads on from where the
    read stopped (``kept_iterators.reads_on_from``): its fields, not the page, whose data a
    read must not hold on to."""

    iterator: str | None
    received_ms: int | None
    last_sequence: str | None
    before: Position  # where the read was before the page
    millis_behind_latest: int | None


class _ShardRead:
    """One pass over a shard from ``task.start``; ``stop`` set means replay up to it.

    Pages come from the transport; the stop rules say which rows of each to emit and when
    to stop; ``progress`` is what ``read_shard`` records as the shard's end.
    """

    def __init__(
        self,
        opts: KinesisOptions,
        task: ShardTask,
        stop: Position | None,
        recorded: ShardEnd | None = None,
    ) -> None:
        self.task = task
        self.opts = opts
        # A replay's recorded end; the first record met (fresh read) or checked (replay);
        # whether the read stands at an enhanced fan-out continuation (not a record).
        self.recorded = recorded
        self.first_sequence: str | None = None
        self.first_seen = False
        self.end_at_continuation = False
        self.warned_out_of_range = False
        self.rules = StopRules.for_read(
            task.start,
            stop,
            task_max_records=task.max_records,
            task_max_bytes=task.max_bytes,
            max_records_per_shard=opts.max_records_per_shard,
            until_ms=task.until_ms,
            max_fetch_ms=opts.max_fetch_time_ms,
            # Applies to GetRecords pages only (an EFO read may fall back to them).
            page_limit=opts.get_records_limit,
            closed=task.closed,
        )
        if task.batch_read:
            assert task.until_ms is not None
            self.rules = StopRules.for_batch(
                task.start, task.end, until_ms=task.until_ms, page_limit=opts.get_records_limit
            )
        if recorded is not None and recorded.end_at_continuation:
            self.rules = replace(self.rules, stop_at_continuation=True)
        self.transport: GetRecordsTransport | EventStreamTransport
        # A fresh GetRecords read of a streaming batch starts from, and leaves, a kept
        # iterator.
        self.kept_key: kept_iterators.Key | None = None
        if stop is None and not task.batch_read and task.consumer_arn is None:
            self.kept_key = (task.stream, task.query, task.shard_id)
        self.last_page: _LastPage | None = None
        if task.consumer_arn is None:
            self.transport = GetRecordsTransport(
                opts,
                task.stream,
                task.shard_id,
                not_before_ms=task.not_before_ms,
                kept_key=self.kept_key,
            )
        else:
            self.transport = EventStreamTransport(
                opts, task.stream, task.shard_id, task.consumer_arn, batch=task.batch
            )
        self.progress = Progress(position=task.start)

    def quota_wait_ms(self) -> int:
        """What the read's last page asks of the shard's next call (GetRecords reads)."""
        if isinstance(self.transport, GetRecordsTransport):
            return self.transport.quota_wait_ms()
        return 0

    @property
    def efo_fallback(self) -> bool:
        """The read took its records by GetRecords instead of its refused subscription."""
        return isinstance(self.transport, EventStreamTransport) and self.transport.fell_back

    def _pages(self) -> Generator[RecordsPage, None, None]:
        task, progress = self.task, self.progress
        # The last call of a capped read asks for no more than the cap leaves.
        return self.transport.pages(
            task.start, lambda: progress.position, lambda: self.rules.units_left(progress)
        )

    def _rules_for_page(self) -> StopRules:
        return self.rules.with_page_limit(self.transport.last_limit)

    def _consume(self, page: RecordsPage) -> tuple[int, int]:
        before = self.progress.position
        lo_hi = self._rules_for_page().consume(page, self.progress)
        if self.progress.position != before:
            self.end_at_continuation = moved_to_continuation(page, self.progress.position)
        return lo_hi

    def _leave_out_of_range(self, page: RecordsPage, shard_range: ShardRange) -> None:
        """Aggregates' user records outside the shard's hash-key range are not emitted (a
        copy re-sent after a reshard is read on its own shard); said once per read, as an
        aggregator that ignores shards (aws_kinesis_agg) loses records this way."""
        dropped = keep_in_range(page, shard_range.low_hash_key, shard_range.high_hash_key)
        if dropped and not self.warned_out_of_range:
            self.warned_out_of_range = True
            log.warning(
                "batch %d shard %s: left out %d KPL user records whose hash keys lie outside "
                "the shard's range (as the KCL does: after a reshard the producer sends them "
                "again to their own shard)",
                self.task.batch,
                self.task.shard_id,
                dropped,
            )

    def _see_first(self, page: RecordsPage) -> None:
        """Note the first record a fresh read meets; a replay checks its own against it
        (``replay_check``), at its first record or at the tip if it meets none."""
        task = self.task
        if self.first_seen or task.start.sequence is not None:
            return
        if not len(page) and (self.recorded is None or page.millis_behind_latest != 0):
            return
        self.first_seen = True
        first = first_to_record(task.start, page)
        if self.recorded is None:
            self.first_sequence = first
            return
        lost = check_replay_start(
            self.recorded,
            first,
            stream=task.stream,
            shard_id=task.shard_id,
            batch=task.batch,
            start=task.start,
            fail_on_data_loss=self.opts.fail_on_data_loss,
        )
        if lost and first is None:
            # failOnDataLoss=false, and nothing left to replay.
            self.progress.done = True

    def run(self) -> Iterator[pa.RecordBatch]:
        task, progress = self.task, self.progress
        if self.rules.nothing_to_read():
            progress.done = True
            return
        started = time.monotonic()
        pages = self._pages()
        try:
            for page in pages:
                progress.millis_behind_latest = page.millis_behind_latest
                self._see_first(page)
                shard_range = task.shard_range
                if shard_range is not None and not shard_range.all_hash_keys:
                    self._leave_out_of_range(page, shard_range)
                before = progress.position
                lo, hi = self._consume(page)
                if self.kept_key is not None:
                    self.last_page = _LastPage(
                        page.next_shard_iterator,
                        page.received_ms,
                        page.sequence_numbers[-1] if len(page) else None,
                        before,
                        page.millis_behind_latest,
                    )
                log.debug(
                    "shard %s batch %d: %d records, %d rows, %s ms behind",
                    task.shard_id,
                    task.batch,
                    len(page),
                    hi - lo,
                    page.millis_behind_latest,
                )
                # A page that spent the shard's read quota for longer than fetchIntervalMs
                # ends a fresh read: waiting it out would keep a task slot asleep while
                # other shards' tasks wait for one, and the next batch goes on from here
                # once the quota allows (quotaWaitMs in the end the read records).
                held = self.rules.stop is None and self.quota_wait_ms() > 0
                if not held and self._rules_for_page().reads_on_after(page, progress):
                    self.transport.read_ahead(page, self.rules.units_left(progress))
                if hi > lo:
                    yield from page.to_batches(
                        lo, hi, task.stream, task.shard_id, limits.ARROW_BATCH_MAX_BYTES
                    )
                elapsed = time.monotonic() - started
                stop = self._rules_for_page().stops_after(
                    page,
                    progress,
                    elapsed,
                    stream=task.stream,
                    shard_id=task.shard_id,
                    batch=task.batch,
                )
                # Let the page go before the next one is taken: a large page is never held
                # with the next (read_ahead starts the next call only after a small one).
                del page
                if held and not stop and not task.batch_read:
                    progress.done = stop = True
                if stop:
                    return
        finally:
            pages.close()
        if self.transport.shard_gone:
            progress.shard_ended()

    def keep_iterator(self) -> None:
        """Leave the last page's NextShardIterator for the shard's next batch in this
        worker, if it reads on from exactly where the read stopped (GetRecords reads)."""
        last = self.last_page
        if self.kept_key is None or last is None:
            return
        end = self.progress.position
        if last.iterator is None or last.received_ms is None:
            return
        if not kept_iterators.reads_on_from(
            end, last.last_sequence, last.before, last.millis_behind_latest
        ):
            return
        kept = kept_iterators.KeptIterator(end.text(), last.iterator, last.received_ms)
        kept_iterators.keep(self.kept_key, kept, int(time.time() * 1000))


def record_end(
    store: CheckpointStore,
    task: ShardTask,
    progress: Progress,
    *,
    efo_fallback: bool = False,
    first_sequence: str | None = None,
    end_at_continuation: bool = False,
    quota_wait_ms: int = 0,
) -> None:
    """Put-if-absent of where the read of ``task`` ended; losing the race fails the task."""
    end = ShardEnd(
        position=progress.position,
        records=progress.records,
        millis_behind_latest=progress.millis_behind_latest,
        caught_up=progress.caught_up,
        reached_bound_ms=task.until_ms if progress.reached_bound else None,
        efo_fallback=efo_fallback,
        first_sequence=first_sequence,
        end_at_continuation=end_at_continuation and not progress.position.is_shard_end,
        quota_wait_ms=quota_wait_ms,
    )
    if not store.put_if_absent(task.stream, task.query, task.batch, task.shard_id, end):
        raise CheckpointConflictError(
            f"batch {task.batch} shard {task.shard_id}: another attempt recorded its end "
            "first; failing this attempt so that Spark retries it as a replay of that range",
            stream=task.stream,
            shard_id=task.shard_id,
        )


def read_shard(
    opts: KinesisOptions, store: CheckpointStore | None, task: ShardTask
) -> Generator[pa.RecordBatch, None, None]:
    """Rows of ``task``'s shard for its batch; records the end on first success (a batch
    read, whose range is fixed in its task, has no store and records nothing)."""
    if task.batch_read:
        yield from _ShardRead(opts, task, stop=None).run()
        return
    assert store is not None
    recorded = store.get(task.stream, task.query, task.batch, task.shard_id)
    if recorded is not None:
        log.info(
            "batch %d shard %s: replaying %s .. %s",
            task.batch,
            task.shard_id,
            task.start.text(),
            recorded.position.text(),
        )
        yield from _ShardRead(opts, task, stop=recorded.position, recorded=recorded).run()
        return

    read = _ShardRead(opts, task, stop=None)
    yield from read.run()
    progress = read.progress
    record_end(
        store,
        task,
        progress,
        efo_fallback=read.efo_fallback,
        first_sequence=read.first_sequence,
        end_at_continuation=read.end_at_continuation,
        quota_wait_ms=read.quota_wait_ms(),
    )
    # Only once the end is recorded: a read that lost the race is replayed, not continued.
    read.keep_iterator()
    log.info(
        "batch %d shard %s: read %d records to %s (%s ms behind)",
        task.batch,
        task.shard_id,
        progress.records,
        progress.position.text(),
        progress.millis_behind_latest,
    )
