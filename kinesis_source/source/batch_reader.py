"""The class Spark calls for ``spark.read.format("kinesis")``: ``partitions()`` plans on the
driver, ``read()`` runs on executors (docs/design.md section 19).

``partitions()`` lists every shard of each stream (closed ones too, ``driver/discovery``),
reads a KCL lease table if the start is one (``driver/kcl_leases``), and asks
``driver/batch_plan`` which shards to read from where to where. Each task carries its
shard's whole range: the start, the arrival bound (the time of planning, or
``endingTimestamp``) and the ``endingPosition`` JSON's end. Spark plans a DataFrame's read
once and keeps its partitions for every action on it and every task attempt, so they all
read the same rows (docs/design.md section 6).

``read()`` hands a task's shards to ``executor/multi_shard`` with no checkpoint store: the
stream's shard read, decoding, KPL deaggregation and pacing, under
``StopRules.for_batch``, recording nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence

import pyarrow as pa
from pyspark.sql.datasource import DataSourceReader, InputPartition

from kinesis_source.aws.clients import kinesis_client
from kinesis_source.aws.glue import SchemaVersion
from kinesis_source.aws.retry import policy_of
from kinesis_source.logs import configure
from kinesis_source.source.batch_options import BatchRead
from kinesis_source.source.driver.batch_plan import (
    arrival_bound,
    check_start_time,
    plan_ranges,
    stream_starts,
)
from kinesis_source.source.driver.discovery import list_shards
from kinesis_source.source.driver.kcl_leases import leases_for
from kinesis_source.source.executor.multi_shard import read_shards
from kinesis_source.source.options import InitialPosition
from kinesis_source.source.tasks import ShardPartition, ShardTask

log = logging.getLogger(__name__)


class KinesisBatchReader(DataSourceReader):
    """A bounded read of every stream of the options. Holds the options only: it is
    pickled to the executors, which build their clients where they read."""

    def __init__(
        self,
        read: BatchRead,
        registry_reader: SchemaVersion | None = None,
        arrow_schema: pa.Schema | None = None,
    ) -> None:
        self.opts = read.opts
        self.end = read.end
        # schemaRegistry=glue: the reader schema found at load(), and the Arrow schema of
        # the rows, as for the stream reader.
        self.registry_reader = registry_reader
        self.arrow_schema = arrow_schema

    def partitions(self) -> Sequence[InputPartition]:
        opts = self.opts
        configure(opts.log_level)  # the Python worker Spark starts to plan the read
        # What the read returns is fixed here: records that arrive later are never in it.
        plan_ms = int(time.time() * 1000)
        until_ms = arrival_bound(plan_ms, self.end.timestamp_ms)
        if opts.initial_position is InitialPosition.AT_TIMESTAMP:
            check_start_time(opts.initial_timestamp_ms, until_ms)
        names = [ref.name for ref in opts.streams]
        leases = leases_for(opts, names)
        client, policy = kinesis_client(opts), policy_of(opts)
        tasks: list[ShardTask] = []
        for ref in opts.streams:
            listing = list_shards(client, ref, opts.region, policy)
            starts = stream_starts(opts, ref.name, listing, leases.get(ref.name))
            ranges = plan_ranges(ref.name, listing, starts, self.end.shard_ends.get(ref.name, {}))
            info = {shard.shard_id: shard for shard in listing}
            tasks.extend(
                ShardTask(
                    batch=0,
                    stream=ref.name,
                    query="",
                    shard_id=shard.shard_id,
                    start=shard.start,
                    until_ms=until_ms,
                    batch_read=True,
                    end=shard.end,
                    # A KPL aggregate's user records outside a split child's hash keys are
                    # copies resent to their own shard: dropped, as the stream drops them.
                    shard_range=info[shard.shard_id].resent_copies_range,
                )
                for shard in ranges
            )
        log.info(
            "streams %s: batch read of %d shards, records that arrived by %d (epoch ms)",
            ",".join(names),
            len(tasks),
            until_ms,
        )
        size = opts.shards_per_task
        return [ShardPartition(tasks[i : i + size]) for i in range(0, len(tasks), size)]

    def read(self, partition: InputPartition) -> Iterator[pa.RecordBatch]:
        if not isinstance(partition, ShardPartition):
            # No shard holds records of the range: Spark runs one partition of its own.
            return iter(())
        configure(self.opts.log_level)  # an executor's Python worker
        batches = read_shards(self.opts, None, partition.tasks)
        if self.registry_reader is None or self.arrow_schema is None:
            return batches
        # Imported here: fastavro is for the executors, not the planner.
        from kinesis_source.source.executor.registry_decode import decode_batches

        return decode_batches(self.opts, self.registry_reader, self.arrow_schema, batches)
