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

import pyarrow as pa

from kinesis_source import limits
from kinesis_source.errors import CheckpointConflictError
from kinesis_source.records.records_page import RecordsPage
from kinesis_source.source.executor.efo import EventStreamTransport
from kinesis_source.source.executor.get_records import GetRecordsTransport
from kinesis_source.source.executor.stop_rules import Progress, StopRules
from kinesis_source.source.options import KinesisOptions
from kinesis_source.source.positions import Position, ShardEnd
from kinesis_source.source.tasks import ShardTask
from kinesis_source.stores import CheckpointStore

log = logging.getLogger(__name__)


class _ShardRead:
    """One pass over a shard from ``task.start``; ``stop`` set means replay up to it.

    Pages come from the transport; the stop rules say which rows of each to emit and when
    to stop; ``progress`` is what ``read_shard`` records as the shard's end.
    """

    def __init__(self, opts: KinesisOptions, task: ShardTask, stop: Position | None) -> None:
        self.task = task
        self.rules = StopRules.for_read(
            task.start,
            stop,
            task_max_records=task.max_records,
            max_records_per_shard=opts.max_records_per_shard,
            until_ms=task.until_ms,
            max_fetch_ms=opts.max_fetch_time_ms,
            # Applies to GetRecords pages only (an EFO read may fall back to them).
            page_limit=opts.get_records_limit,
        )
        self.transport: GetRecordsTransport | EventStreamTransport
        if task.consumer_arn is None:
            self.transport = GetRecordsTransport(
                opts, task.stream, task.shard_id, not_before_ms=task.not_before_ms
            )
        else:
            self.transport = EventStreamTransport(
                opts, task.stream, task.shard_id, task.consumer_arn, batch=task.batch
            )
        self.progress = Progress(position=task.start)

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
        return self._rules_for_page().consume(page, self.progress)

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
                lo, hi = self._consume(page)
                log.debug(
                    "shard %s batch %d: %d records, %d rows, %s ms behind",
                    task.shard_id,
                    task.batch,
                    len(page),
                    hi - lo,
                    page.millis_behind_latest,
                )
                if self._rules_for_page().reads_on_after(page, progress):
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
                if stop:
                    return
        finally:
            pages.close()
        if self.transport.shard_gone:
            progress.shard_ended()


def record_end(
    store: CheckpointStore, task: ShardTask, progress: Progress, *, efo_fallback: bool = False
) -> None:
    """Put-if-absent of where the read of ``task`` ended; losing the race fails the task."""
    end = ShardEnd(
        position=progress.position,
        records=progress.records,
        millis_behind_latest=progress.millis_behind_latest,
        caught_up=progress.caught_up,
        reached_bound_ms=task.until_ms if progress.reached_bound else None,
        efo_fallback=efo_fallback,
    )
    if not store.put_if_absent(task.stream, task.query, task.batch, task.shard_id, end):
        raise CheckpointConflictError(
            f"batch {task.batch} shard {task.shard_id}: another attempt recorded its end "
            "first; failing this attempt so that Spark retries it as a replay of that range",
            stream=task.stream,
            shard_id=task.shard_id,
        )


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
    record_end(store, task, progress, efo_fallback=read.efo_fallback)
    log.info(
        "batch %d shard %s: read %d records to %s (%s ms behind)",
        task.batch,
        task.shard_id,
        progress.records,
        progress.position.text(),
        progress.millis_behind_latest,
    )
