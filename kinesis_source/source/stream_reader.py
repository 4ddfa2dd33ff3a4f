"""The class Spark calls: planning on the driver, ``read()`` on executors (docs/design.md
section 2).

Its planning methods (``initialOffset``, ``latestOffset``, ``partitions``, ``commit``) run
in the driver's streaming source runner and hand the decisions to ``driver/``: per-stream
planning in ``stream_planner`` (shard discovery in ``discovery``, probes in ``probing``,
data loss in ``loss_check``, the pure steps in ``planning`` and ``admission``), where
streams start in ``stream_start`` (a KCL lease table in ``kcl_leases``), progress in
``lag``. Its ``read()`` runs on executors and hands each task's shards to
``executor/multi_shard``.

A query reads every stream of ``streamName``/``streamARN``. The list may change between
runs of one checkpoint: a stream added starts at ``initialPosition``, a stream removed is
dropped from the next offset with one warning.

The reader is pickled once at query start and the copy runs ``read()`` on executors, so it
holds only the options and plain values; clients and the store are built where used.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import pyarrow as pa
from pyspark.sql.datasource import DataSourceStreamReader, InputPartition
from pyspark.sql.streaming.datasource import (
    ReadAllAvailable,
    ReadLimit,
    ReadMaxBytes,
    ReadMaxRows,
    SupportsTriggerAvailableNow,
)

from kinesis_source.aws.glue import SchemaVersion
from kinesis_source.errors import CheckpointStoreError
from kinesis_source.logs import configure
from kinesis_source.source.driver.consumers import registry_for, resolve_consumer
from kinesis_source.source.driver.kcl_leases import leases_for
from kinesis_source.source.driver.lag import lag_report
from kinesis_source.source.driver.lineage import readable_shards
from kinesis_source.source.driver.pacing import launch_order
from kinesis_source.source.driver.planning import StreamStep, next_offset
from kinesis_source.source.driver.stop_signal import stop_on_sigterm
from kinesis_source.source.driver.stream_planner import StreamPlanner
from kinesis_source.source.driver.stream_start import changed_streams
from kinesis_source.source.options import ConsumerMode, KinesisOptions
from kinesis_source.source.positions import QueryOffset, ShardEnd, StreamOffset
from kinesis_source.source.shard_range import ShardRange
from kinesis_source.source.tasks import ShardPartition, ShardTask
from kinesis_source.stores import CheckpointStore, open_store
from kinesis_source.stores.base import PURGE_ALL

log = logging.getLogger(__name__)


def budgets(
    limit: ReadLimit | None, max_records: int | None, max_bytes: int | None
) -> tuple[int | None, int | None]:
    """The row and byte budgets of a batch under ``limit``; None for no budget.

    Spark passes ``ReadAllAvailable`` for Trigger.Once even when a per-trigger limit is set:
    then neither applies (the per-shard caps, ``maxRecordsPerShard`` and ``maxFetchTimeMs``,
    still hold). The Python API carries one limit: ``getDefaultReadLimit`` sends the row
    budget when both are set, and the byte budget then comes from ``max_bytes`` (the
    option), as the row budget comes from ``max_records`` under a ``ReadMaxBytes``. The
    planning below takes plain numbers, so it needs no Spark.
    """
    if isinstance(limit, ReadMaxRows):
        return max(0, int(limit.max_rows)), max_bytes
    if isinstance(limit, ReadMaxBytes):
        return max_records, max(0, int(limit.max_bytes))
    return None, None


class KinesisStreamReader(DataSourceStreamReader, SupportsTriggerAvailableNow):
    def __init__(
        self,
        opts: KinesisOptions,
        registry_reader: SchemaVersion | None = None,
        arrow_schema: pa.Schema | None = None,
    ) -> None:
        # The driver's streaming source runner: a process of its own, logging unset.
        configure(opts.log_level)
        self.opts = opts
        # schemaRegistry=glue: the reader schema resolved at load(), and the rows' Arrow
        # schema; both travel to read() in the pickled reader, so tasks never ask Glue
        # for the reader schema.
        self.registry_reader = registry_reader
        self.arrow_schema = arrow_schema
        # Trigger.AvailableNow's arrival-time bound (epoch ms), set by prepare on the driver.
        self._until_ms: int | None = None
        # The last finished batch's per-stream, per-shard figures, for reportLatestOffset.
        self._lag: dict[str, Any] | None = None
        # Streams of an older offset no longer in the options, warned about once.
        self._dropped: set[str] = set()
        # Of those, the ones whose store entries the next commit purges (retried until done).
        self._to_purge: set[str] = set()
        # Fail on the driver, before any task runs, if a stream or the store is unusable.
        self._planners = {ref.name: StreamPlanner(opts, ref.name) for ref in opts.streams}
        # consumerMode=efo: each stream's consumer ARN, resolved once the query's id is known
        # (the default consumer name derives from it). Plain strings: they travel in every
        # ShardTask.
        self._consumer_arns: dict[str, str] = {}
        self._store().check()
        if opts.deregister_consumer_on_stop:
            # So that Spark's end of this process reaches stop() (stop_signal.py says why).
            stop_on_sigterm()

    def _store(self) -> CheckpointStore:
        return open_store(self.opts)

    def _names(self) -> str:
        return ",".join(self._planners)

    def _start(self, streams: Sequence[str], now_ms: int) -> dict[str, StreamOffset]:
        """Where ``streams`` start: at the query's first batch, or when added to the list."""
        if not streams:
            return {}
        leases = leases_for(self.opts, list(self._planners))
        return {name: self._planners[name].initial(now_ms, leases.get(name)) for name in streams}

    def _consumer_for(self, query: str, stream: str) -> str | None:
        """The enhanced fan-out consumer to read ``stream`` with (registered if missing), or
        None when polling."""
        if self.opts.consumer_mode is not ConsumerMode.EFO:
            return None
        if stream not in self._consumer_arns:
            self._consumer_arns[stream] = resolve_consumer(
                self.opts, query, self.opts.stream_ref(stream)
            )
        return self._consumer_arns[stream]

    def _not_before_ms(self, stream: str, shard_id: str) -> int | None:
        """When a read of the shard may start (pacing); None for a stream no longer read,
        whose replay after a restart has no calls of this run to keep apart from."""
        planner = self._planners.get(stream)
        return None if planner is None else planner.not_before_ms(shard_id)

    def _closed(self, stream: str, shard_id: str) -> bool:
        """The stream's last listing showed the shard closed: its read goes on to its end."""
        planner = self._planners.get(stream)
        return planner is not None and planner.is_closed(shard_id)

    def _shard_range(self, stream: str, shard_id: str) -> ShardRange | None:
        """The shard's ranges from the stream's listings (None: a stream no longer read)."""
        planner = self._planners.get(stream)
        return None if planner is None else planner.discovery.ranges.get(shard_id)

    # -- DataSourceStreamReader ----------------------------------------------------------

    def initialOffset(self) -> dict[str, Any]:
        # No consumer here: Spark calls this on a restart too, and then uses the offset log's
        # query id, not this offset's; latestOffset and partitions resolve the consumers.
        # LATEST is resolved once, here, so that a replay or restart does not move it.
        now_ms = int(time.time() * 1000)
        offset = QueryOffset(
            batch=0, query=uuid.uuid4().hex, streams=self._start(list(self._planners), now_ms)
        )
        log.info("streams %s: initial offset %s", self._names(), offset.to_json())
        return offset.to_json()

    def getDefaultReadLimit(self) -> ReadLimit:
        if self.opts.max_records_per_trigger is not None:
            return ReadMaxRows(self.opts.max_records_per_trigger)
        if self.opts.max_bytes_per_trigger is not None:
            return ReadMaxBytes(self.opts.max_bytes_per_trigger)
        return ReadAllAvailable()

    def prepareForTriggerAvailableNow(self) -> None:
        # Records that arrived by now are what "available now" means. Kinesis stamps arrival
        # on its own clock: a driver clock off by d moves the bound by d.
        self._until_ms = int(time.time() * 1000)
        log.info(
            "streams %s: Trigger.AvailableNow reads records that arrived by %d (epoch ms)",
            self._names(),
            self._until_ms,
        )

    def reportLatestOffset(self) -> dict[str, Any] | None:
        return self._lag

    def latestOffset(self, start: dict[str, Any], limit: ReadLimit) -> dict[str, Any]:
        current = QueryOffset.from_json(start)
        added, removed = changed_streams(current.streams, list(self._planners))
        for name in removed:
            if name not in self._dropped:
                self._dropped.add(name)
                self._to_purge.add(name)
                log.warning(
                    "stream %r is in the checkpoint but no longer in the options "
                    "streamName/streamARN: it is not read any more (its positions are dropped "
                    "from the next offset)",
                    name,
                )
        store = self._store()
        kept = [name for name in current.streams if name in self._planners]
        for name in kept:
            self._consumer_for(current.query, name)
        ends: dict[str, dict[str, ShardEnd]] = {
            name: store.get_batch(name, current.query, current.batch) for name in kept
        }
        if any(ends.values()) and (self._lag is None or self._lag["batch"] != current.batch):
            # Once per finished batch, not on every idle trigger after it.
            self._lag = lag_report(current.batch, ends)
            log.info("streams %s: batch %d read %s", self._names(), current.batch, self._lag)
        budget, byte_budget = budgets(
            limit, self.opts.max_records_per_trigger, self.opts.max_bytes_per_trigger
        )
        if budget == 0 or byte_budget == 0:
            return start
        until_ms = self._until_ms
        steps = {
            name: self._planners[name].step(
                current.batch, current.streams[name], ends[name], until_ms
            )
            for name in kept
        }
        for name, first in self._start(added, int(time.time() * 1000)).items():
            # A stream new to the list: its shards are tracked in a batch of their own and
            # probed from the next trigger on, like shards found by discovery.
            log.info("stream %r added to the query: starting at %s", name, first.to_json())
            readable = readable_shards(first.shards)
            steps[name] = StreamStep(
                StreamOffset(since_ms=first.since_ms), first.shards, readable, set()
            )
        nxt = next_offset(
            current, steps, budget, self.opts.max_records_per_shard, until_ms, byte_budget
        )
        if nxt is None:
            return start
        log.info(
            "streams %s: planned batch %d over %d of %d shards (row budget %s, byte budget %s)",
            self._names(),
            nxt.batch,
            sum(len(s.planned_shards()) for s in nxt.streams.values()),
            sum(len(step.readable) for step in steps.values()),
            budget,
            byte_budget,
        )
        return nxt.to_json()

    def partitions(self, start: dict[str, Any], end: dict[str, Any]) -> Sequence[InputPartition]:
        if start == end:
            return []
        offset = QueryOffset.from_json(end)
        tasks = [
            ShardTask(
                batch=offset.batch,
                stream=name,
                query=offset.query,
                shard_id=sid,
                start=stream.shards[sid],
                max_records=stream.limits.get(sid),
                max_bytes=stream.byte_limits.get(sid),
                until_ms=offset.until_ms,
                consumer_arn=self._consumer_for(offset.query, name),
                not_before_ms=self._not_before_ms(name, sid),
                closed=self._closed(name, sid),
                shard_range=self._shard_range(name, sid),
            )
            for name, stream in sorted(offset.streams.items())
            for sid in stream.planned_shards()
        ]
        tasks = [tasks[i] for i in launch_order([t.not_before_ms for t in tasks])]
        size = self.opts.shards_per_task
        return [ShardPartition(tasks[i : i + size]) for i in range(0, len(tasks), size)]

    def read(self, partition: InputPartition) -> Iterator[pa.RecordBatch]:
        assert isinstance(partition, ShardPartition)
        configure(self.opts.log_level)  # an executor's Python worker
        # Imported here: the planner, a fresh process at each query's start, never reads,
        # and the read path's modules cost it about 0.1 s before the first batch.
        from kinesis_source.source.executor.multi_shard import read_shards

        batches = read_shards(self.opts, self._store(), partition.tasks)
        if self.registry_reader is None or self.arrow_schema is None:
            return batches
        # Imported here: fastavro is for the executors, not the planner's start.
        from kinesis_source.source.executor.registry_decode import decode_batches

        return decode_batches(self.opts, self.registry_reader, self.arrow_schema, batches)

    def commit(self, end: dict[str, Any]) -> None:
        offset = QueryOffset.from_json(end)
        # Keep batch end-1 too: latestOffset(end) still reads batch `end.batch`'s entries,
        # and a replay of the last committed batch may still happen after a restart. A
        # stream removed from the options goes whole once `end` no longer holds it.
        purges = [(name, offset.batch - 1) for name in offset.streams]
        removed = sorted(self._to_purge - set(offset.streams))
        purges += [(name, PURGE_ALL) for name in removed]
        store = self._store()
        for name, before in purges:
            try:
                store.purge_before(name, offset.query, before)
            except CheckpointStoreError as exc:
                # Housekeeping never fails the query: old entries stay until the next
                # commit purges them (every purge takes all older batches).
                log.warning("%s; purging again at the next commit", exc)
                continue
            self._to_purge.discard(name)

    def stop(self) -> None:
        # Called when the query stops, fails or its session stops (stop_signal.py), never
        # after a crash of the driver: deregistration is a convenience, never needed for
        # correctness.
        if self.opts.deregister_consumer_on_stop:
            for name, arn in sorted(self._consumer_arns.items()):
                registry_for(self.opts, self.opts.stream_ref(name)).deregister(arn)
            self._consumer_arns.clear()
