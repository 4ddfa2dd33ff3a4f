"""Driver side: the Spark face of planning micro-batches (DESIGN.md section 2).

Spark calls this reader; the decisions are elsewhere, each named: per-stream planning in
``stream_planner`` (shard discovery in ``discovery``, probes in ``probing``, data loss in
``data_loss``, the pure steps in ``planning`` and ``admission``), progress in ``lag``.

The reader is pickled once at query start and the copy runs ``read()`` on executors, so it
holds only the options and plain values; clients and the store are built where used.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from typing import Any

import pyarrow as pa
from pyspark.sql.datasource import DataSourceStreamReader, InputPartition
from pyspark.sql.streaming.datasource import (
    ReadAllAvailable,
    ReadLimit,
    ReadMaxRows,
    SupportsTriggerAvailableNow,
)

from kinesis_source.aws.consumers import registry_for, resolve_consumer
from kinesis_source.options import ConsumerMode, KinesisOptions
from kinesis_source.source.lag import lag_report
from kinesis_source.source.multi_shard import read_shards
from kinesis_source.source.positions import Offset
from kinesis_source.source.shard_reader import ShardTask
from kinesis_source.source.stream_planner import StreamPlanner
from kinesis_source.stores import CheckpointStore, open_store

log = logging.getLogger(__name__)


def max_rows(limit: ReadLimit | None) -> int | None:
    """The row budget of ``limit``, or None for no budget (``ReadAllAvailable`` and others).

    Spark passes ``ReadAllAvailable`` for Trigger.Once even when ``maxRecordsPerTrigger``
    is set; the per-shard caps (``maxRecordsPerShard``, ``maxFetchTimeMs``) still hold.
    The planning below takes the plain number, so it needs no Spark.
    """
    if isinstance(limit, ReadMaxRows):
        return max(0, int(limit.max_rows))
    return None


class ShardPartition(InputPartition):
    """One or more shards (``shardsPerTask``) of one batch, read by one task.

    Holds no credentials: those stay in the reader's options.
    """

    def __init__(self, tasks: Sequence[ShardTask]) -> None:
        super().__init__(",".join(t.shard_id for t in tasks))
        self.tasks = tuple(tasks)

    def __repr__(self) -> str:
        shards = ",".join(t.shard_id for t in self.tasks)
        return f"ShardPartition(batch={self.tasks[0].batch}, shards={shards})"


class KinesisStreamReader(DataSourceStreamReader, SupportsTriggerAvailableNow):
    def __init__(self, opts: KinesisOptions) -> None:
        self.opts = opts
        # Trigger.AvailableNow's arrival-time bound (epoch ms), set by prepare on the driver.
        self._until_ms: int | None = None
        # The last finished batch's per-shard figures, for reportLatestOffset.
        self._lag: dict[str, Any] | None = None
        # consumerMode=efo: the consumer's ARN, resolved once the query's id is known (its
        # default name derives from it). A plain string: it travels in every ShardTask.
        self._consumer_arn: str | None = None
        # Fail on the driver, before any task runs, if the stream or store is unusable.
        self._planner = StreamPlanner(opts, opts.stream_name)
        self._store().check()

    def _store(self) -> CheckpointStore:
        return open_store(self.opts)

    def _consumer_for(self, query: str) -> str | None:
        """The enhanced fan-out consumer to read with (registered if missing), or None
        when polling."""
        if self.opts.consumer_mode is not ConsumerMode.EFO:
            return None
        if self._consumer_arn is None:
            self._consumer_arn = resolve_consumer(self.opts, query)
        return self._consumer_arn

    # -- DataSourceStreamReader ----------------------------------------------------------

    def initialOffset(self) -> dict[str, Any]:
        # No consumer here: Spark calls this on a restart too, and then uses the offset log's
        # query id, not this offset's; latestOffset and partitions resolve the consumer.
        offset = self._planner.initial_offset()
        log.info("stream %s: initial offset %s", self.opts.stream_name, offset.to_json())
        return offset.to_json()

    def getDefaultReadLimit(self) -> ReadLimit:
        if self.opts.max_records_per_trigger is None:
            return ReadAllAvailable()
        return ReadMaxRows(self.opts.max_records_per_trigger)

    def prepareForTriggerAvailableNow(self) -> None:
        # Records that arrived by now are what "available now" means. Kinesis stamps arrival
        # on its own clock: a driver clock off by d moves the bound by d.
        self._until_ms = int(time.time() * 1000)
        log.info(
            "stream %s: Trigger.AvailableNow reads records that arrived by %d (epoch ms)",
            self.opts.stream_name,
            self._until_ms,
        )

    def reportLatestOffset(self) -> dict[str, Any] | None:
        return self._lag

    def latestOffset(self, start: dict[str, Any], limit: ReadLimit) -> dict[str, Any]:
        current = Offset.from_json(start)
        self._consumer_for(current.query)
        ends = self._store().get_batch(current.stream, current.query, current.batch)
        if ends and (self._lag is None or self._lag["batch"] != current.batch):
            # Once per finished batch, not on every idle trigger after it.
            self._lag = lag_report(current.batch, ends)
            log.info("stream %s: batch %d read %s", current.stream, current.batch, self._lag)
        nxt = self._planner.plan(current, ends, max_rows(limit), self._until_ms)
        return start if nxt is None else nxt.to_json()

    def partitions(self, start: dict[str, Any], end: dict[str, Any]) -> Sequence[InputPartition]:
        if start == end:
            return []
        offset = Offset.from_json(end)
        consumer_arn = self._consumer_for(offset.query)
        tasks = [
            ShardTask(
                batch=offset.batch,
                stream=offset.stream,
                query=offset.query,
                shard_id=sid,
                start=offset.shards[sid],
                max_records=offset.limits.get(sid),
                until_ms=offset.until_ms,
                consumer_arn=consumer_arn,
            )
            for sid in offset.planned_shards()
        ]
        size = self.opts.shards_per_task
        return [ShardPartition(tasks[i : i + size]) for i in range(0, len(tasks), size)]

    def read(self, partition: InputPartition) -> Iterator[pa.RecordBatch]:
        assert isinstance(partition, ShardPartition)
        return read_shards(self.opts, self._store(), partition.tasks)

    def commit(self, end: dict[str, Any]) -> None:
        offset = Offset.from_json(end)
        # Keep batch end-1 too: latestOffset(end) still reads batch `end.batch`'s entries,
        # and a replay of the last committed batch may still happen after a restart.
        self._store().purge_before(offset.stream, offset.query, offset.batch - 1)

    def stop(self) -> None:
        # Spark may never call this (a crash, or a stop it skips): deregistration is a
        # convenience, never needed for correctness.
        arn = self._consumer_arn
        if self.opts.deregister_consumer_on_stop and arn is not None:
            registry_for(self.opts).deregister(arn)
            self._consumer_arn = None
