"""(c) end to end through Spark against Spark's own ceiling, on the bench's in-memory server.

Three readers of the same records, served by ``kinesis_server`` (pre-built GetRecords pages,
in a subprocess on 127.0.0.1, so the emulator is not the bottleneck):

1. Spark's ceiling for a Python streaming source here: ``CeilingDataSource``, a trivial
   ``DataSourceStreamReader`` whose tasks yield, from a memory-mapped Arrow file, the Arrow
   batch our reader makes of the server's first page (our schema: 10,000 rows for plain
   records, as our reader hands them on; for KPL one batch of the page's 83,028 user
   records, where our reader hands on 1 MiB of data at a time), with the same
   partitions (one per shard), the same micro-batches and the same rows, into the same noop
   sink with Trigger.AvailableNow. Whatever it costs is Spark's: planning, scheduling, Arrow
   to the JVM, the sink.
2. The connector: ``spark.readStream.format("kinesis")``, the same query; and
   ``spark.read.format("kinesis")`` over the same records (a batch read, ``count()``).
3. A single-process boto3 GetRecords loop over every shard (with aws_kinesis_agg's
   deaggregator for KPL records).

Every figure is wall-clock seconds, best of a few runs, from ``start()`` to termination for
Spark (its fixed start and stop cost is included: it is part of what a user waits for).
Neither the connector nor the loop paces its calls here (``fetchIntervalMs=0``): the figure
is the cost of a record, and the most GetRecords calls of one shard in any second is
printed next to it (AWS allows 5, and 2 MiB/s, per shard; paced, both would wait on AWS).
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from aws_kinesis_agg.deaggregator import iter_deaggregate_records
from pyspark.sql.datasource import (
    DataSource,
    DataSourceStreamReader,
    InputPartition,
)
from pyspark.sql.streaming.datasource import ReadLimit, SupportsTriggerAvailableNow

from kinesis_source.schema import ARROW_SCHEMA, SCHEMA_DDL
from tests.emulators.kinesis_server import KinesisServer, StreamInfo, StreamSpec, kinesis_server

from .common import (
    BENCH_SERVER_RULES,
    E2E_SHARDS,
    PAGE_RECORDS,
    RECORD_BYTES,
    available_now,
    batch_read,
    descendants_cpu_seconds,
    figure,
    kinesis,
    source,
    spark_session,
)

E2E_PLAIN_RECORDS_PER_SHARD = 750_000
E2E_KPL_USER_RECORDS_PER_SHARD = 750_000
# botocore's parser makes the plain loop slow (about 60,000 records/s here): it is timed over
# this many rows and its time scaled to all of them.
LOOP_SAMPLE_ROWS = 300_000
# The JVM connectors' default maxFetchRecordsPerShard (ours too, until this release): with it,
# a KPL backlog takes many micro-batches (each Spark's fixed cost); printed next to ours.
JVM_CONNECTORS_CAP = 100_000
CEILING_SHARE = 0.75  # issue 26; 0.60 before
LOOP_MULTIPLE = 5.0
KPL_LOOP_MULTIPLE = 1.0


# --------------------------------------------------------------------------------------
# Spark's ceiling: a source that does no work of its own.


class CeilingPartition(InputPartition):
    def __init__(self, index: int, rows: int) -> None:
        super().__init__(index)
        self.rows = rows


_BATCHES: dict[str, pa.RecordBatch] = {}


def _batch(path: str) -> pa.RecordBatch:
    """The Arrow batch in ``path``, memory-mapped once per Python worker."""
    batch = _BATCHES.get(path)
    if batch is None:
        with pa.memory_map(path) as source:
            batch = pa.ipc.open_file(source).get_batch(0)
        _BATCHES[path] = batch
    return batch


class CeilingStreamReader(DataSourceStreamReader, SupportsTriggerAvailableNow):
    """``batches`` micro-batches of ``partitions`` tasks, each yielding ``rows`` rows made of
    the file's batch (repeated, the last one sliced): no I/O, no decoding."""

    def __init__(self, options: dict[str, str]) -> None:
        self.path = options["path"]
        self.partitions_count = int(options["partitions"])
        self.rows = int(options["rows"])
        self.batches = int(options["batches"])

    def initialOffset(self) -> dict[str, Any]:
        return {"batch": 0}

    def prepareForTriggerAvailableNow(self) -> None:
        pass

    def latestOffset(self, start: dict[str, Any], limit: ReadLimit) -> dict[str, Any]:
        return {"batch": min(int(start["batch"]) + 1, self.batches)}

    def partitions(self, start: dict[str, Any], end: dict[str, Any]) -> Sequence[InputPartition]:
        if start == end:
            return []
        batch = int(end["batch"])
        share = self.rows // self.batches
        rows = share if batch < self.batches else self.rows - share * (self.batches - 1)
        return [CeilingPartition(i, rows) for i in range(self.partitions_count)]

    def read(self, partition: InputPartition) -> Iterator[pa.RecordBatch]:
        assert isinstance(partition, CeilingPartition)
        batch = _batch(self.path)
        left = partition.rows
        while left > 0:
            take = min(left, batch.num_rows)
            yield batch if take == batch.num_rows else batch.slice(0, take)
            left -= take

    def commit(self, end: dict[str, Any]) -> None:
        pass


class CeilingDataSource(DataSource):
    @classmethod
    def name(cls) -> str:
        return "kinesis_ceiling"

    def schema(self) -> str:
        return SCHEMA_DDL

    def streamReader(self, schema: Any) -> DataSourceStreamReader:
        return CeilingStreamReader(dict(self.options))


def first_batch(server: KinesisServer, stream: str) -> pa.RecordBatch:
    """Our reader's Arrow batch for the first page of the stream's first shard."""
    from kinesis_source.records.fast_decode import get_records_page, install_raw_get_records

    client = kinesis(server.endpoint)
    install_raw_get_records(client)
    shard = server.streams[stream].shard_ids[0]
    iterator = client.get_shard_iterator(
        StreamName=stream, ShardId=shard, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    page = get_records_page(client, iterator, PAGE_RECORDS, deaggregate_kpl=True)
    batch = page.to_batch(0, page.unit_count, stream, shard)
    assert batch.schema.equals(ARROW_SCHEMA), batch.schema
    return batch


# --------------------------------------------------------------------------------------
# The three readers.


def boto3_loop(client: Any, stream: str, *, deaggregate: bool, max_rows: int) -> int:
    """The plain consumer: each shard from TRIM_HORIZON until caught up, one process; it
    stops after the page that brings it ``max_rows`` rows, spread evenly over the shards."""
    shards = client.list_shards(StreamName=stream)["Shards"]
    rows = 0
    for shard in shards:
        shard_rows = 0
        iterator = client.get_shard_iterator(
            StreamName=stream, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while iterator and shard_rows < max_rows // len(shards):
            resp = client.get_records(ShardIterator=iterator, Limit=PAGE_RECORDS)
            records = resp["Records"]
            if deaggregate:
                shard_rows += sum(1 for _ in iter_deaggregate_records(records, data_format="Boto3"))
            else:
                shard_rows += sum(1 for r in records if r["Data"] is not None)
            iterator = resp.get("NextShardIterator")
            if resp.get("MillisBehindLatest") == 0 and len(records) < PAGE_RECORDS:
                break
        rows += shard_rows
    return rows


@dataclass(frozen=True)
class Timing:
    wall_s: float
    cpu_s: float | None  # Spark's JVM and Python workers, or the loop's process
    batches: int


def best(runs: int, fn: Callable[[], tuple[float, int, int]], rows: int, server: int) -> Timing:
    """Best wall and CPU seconds of ``runs`` runs of ``fn`` (after one warm-up), each checked
    to read ``rows`` rows, and the micro-batches of the last run."""
    fn()
    walls, cpus, batches = [], [], 0
    for _ in range(runs):
        before = descendants_cpu_seconds(exclude={server})
        elapsed, got, batches = fn()
        after = descendants_cpu_seconds(exclude={server})
        assert got == rows, (got, rows)
        walls.append(elapsed)
        if before is not None and after is not None:
            cpus.append(after - before)
    return Timing(min(walls), min(cpus) if cpus else None, batches)


def batches(timing: Timing) -> str:
    return f"{timing.batches} micro-batch{'' if timing.batches == 1 else 'es'}"


def cpu_of(timing: Timing) -> str:
    return "?" if timing.cpu_s is None else f"{timing.cpu_s:.2f} s"


def write_arrow(path: str, batch: pa.RecordBatch) -> None:
    with pa.OSFile(path, "wb") as sink, pa.ipc.new_file(sink, batch.schema) as writer:
        writer.write_batch(batch)


def label_of(info: StreamInfo, aggregated: bool) -> str:
    rows = info.user_records
    if aggregated:
        aggregates = info.records_per_shard * len(info.shard_ids)
        return f"{rows:,} KPL user records of {RECORD_BYTES} bytes ({aggregates:,} aggregates)"
    return f"{rows:,} plain {RECORD_BYTES}-byte records"


def measure(spark: Any, server: KinesisServer, stream: str, runs: int, tmp: str) -> None:
    """The three readers on ``stream``; prints them and adds the figures."""
    aggregated = stream == "kpl"
    info = server.streams[stream]
    rows, shards = info.user_records, len(info.shard_ids)
    label = label_of(info, aggregated)
    print(f"  {label}, {shards} shards")

    # The loop has no fixed cost to amortise: its rate over a sample is its rate over all.
    sample = min(rows, LOOP_SAMPLE_ROWS)
    client = kinesis(server.endpoint)
    server.reset_stats()
    start, cpu = time.perf_counter(), time.process_time()
    got = boto3_loop(client, stream, deaggregate=aggregated, max_rows=sample)
    scale = rows / got
    loop = Timing((time.perf_counter() - start) * scale, (time.process_time() - cpu) * scale, 0)
    assert got >= sample, (got, sample)
    loop_calls = server.stats()["get_records_max_per_shard_1s"]

    def connector(**extra: str) -> Callable[[], tuple[float, int, int]]:
        def query() -> tuple[float, int, int]:
            return available_now(
                spark,
                lambda d: source(spark, server.endpoint, stream, os.path.join(d, "store"), **extra),
            )

        return query

    server.reset_stats()
    ours = best(runs, connector(), rows, server.pid)
    ours_calls = server.stats()["get_records_max_per_shard_1s"]
    # KPL: a cap of 100,000 user records (about one 10 MiB page) per shard and batch splits
    # the read into many micro-batches; what they cost is printed next to ours.
    capped = None
    if aggregated:
        capped = best(runs, connector(maxRecordsPerShard=str(JVM_CONNECTORS_CAP)), rows, server.pid)

    path = os.path.join(tmp, f"{stream}.arrow")
    batch = first_batch(server, stream)
    write_arrow(path, batch)
    options = {
        "path": path,
        "partitions": str(shards),
        "rows": str(rows // shards),
        "batches": str(ours.batches),
    }

    def ceiling_query() -> tuple[float, int, int]:
        return available_now(
            spark, lambda _: spark.readStream.format("kinesis_ceiling").options(**options).load()
        )

    ceiling = best(runs, ceiling_query, rows, server.pid)

    def line(what: str, timing: Timing, note: str) -> None:
        cpu = "" if timing.cpu_s is None else f"{timing.cpu_s:6.2f} s CPU"
        rate = rows / timing.wall_s
        print(f"    {what:<24} {timing.wall_s:6.2f} s {rate:>10,.0f} rows/s {cpu}  {note}")

    line("Spark's ceiling", ceiling, f"{batch.num_rows:,}-row Arrow batches")
    line("connector", ours, f"{batches(ours)}, max {ours_calls} GetRecords/s/shard")
    server.reset_stats()
    batch_timing = best(runs, lambda: batch_read(spark, server.endpoint, stream), rows, server.pid)
    batch_calls = server.stats()["get_records_max_per_shard_1s"]
    line("spark.read, batch", batch_timing, f"one job, max {batch_calls} GetRecords/s/shard")
    figure(
        "c",
        f"batch read, {label}: spark.read vs Trigger.AvailableNow",
        f"{rows / batch_timing.wall_s:,.0f} vs {rows / ours.wall_s:,.0f} rows/s: "
        f"{ours.wall_s / batch_timing.wall_s:.2f}x (CPU {cpu_of(batch_timing)} vs {cpu_of(ours)})",
        ">= 1.00x",
        batch_timing.wall_s <= ours.wall_s,
    )
    if capped is not None:
        line(f"maxRecordsPerShard={JVM_CONNECTORS_CAP:,}", capped, batches(capped))
    sampled = f"timed over {got:,} rows, " if got < rows else ""
    line("boto3 loop, one process", loop, f"{sampled}max {loop_calls} GetRecords/s/shard")
    share, multiple = ceiling.wall_s / ours.wall_s, loop.wall_s / ours.wall_s
    ours_cpu = cpu_of(ours)
    figure(
        "c",
        f"end to end, {label}: connector vs Spark's ceiling",
        f"{rows / ours.wall_s:,.0f} vs {rows / ceiling.wall_s:,.0f} rows/s: {share:.0%} "
        f"(CPU {ours_cpu} vs {cpu_of(ceiling)})",
        f">= {CEILING_SHARE:.0%}",
        share >= CEILING_SHARE,
    )
    if not aggregated:
        figure(
            "c",
            f"end to end, {label}: connector vs a boto3 loop",
            f"{ours.wall_s:.2f} s vs {loop.wall_s:.2f} s: {multiple:.2f}x "
            f"(CPU {ours_cpu} vs {cpu_of(loop)})",
            f">= {LOOP_MULTIPLE:.0f}x",
            multiple >= LOOP_MULTIPLE,
        )
        return
    figure(
        "c",
        f"end to end, {label}: connector vs a boto3 + aws_kinesis_agg loop",
        f"{ours.wall_s:.2f} s vs {loop.wall_s:.2f} s: {multiple:.2f}x "
        f"(CPU {ours_cpu} vs {cpu_of(loop)})",
        f">= {KPL_LOOP_MULTIPLE:.1f}x",
        multiple >= KPL_LOOP_MULTIPLE,
    )
    if capped is not None:
        figure(
            "c",
            f"the same with maxRecordsPerShard={JVM_CONNECTORS_CAP:,}, the JVM connectors' "
            f"default ({batches(capped)}, not {ours.batches})",
            f"{capped.wall_s:.2f} s: {loop.wall_s / capped.wall_s:.2f}x (CPU {cpu_of(capped)})",
        )


def run(repeat: int) -> None:
    runs = max(1, min(repeat, 3))
    print(
        f"(c) end to end on the bench's in-memory Kinesis server (subprocess, 127.0.0.1), "
        "Spark local[2], noop sink, AvailableNow: Spark's ceiling (a source yielding our "
        "Arrow batches from memory) vs the connector vs a single-process boto3 GetRecords "
        f"loop; Spark: best of {runs} wall-clock runs after a warm-up, the loop: one run; "
        "CPU: Spark's JVM and Python workers, or the loop's process (the server excluded)"
    )
    spark = spark_session()
    spark.dataSource.register(CeilingDataSource)
    streams = {
        "plain": StreamSpec(shards=E2E_SHARDS, records_per_shard=E2E_PLAIN_RECORDS_PER_SHARD),
        "kpl": StreamSpec(
            shards=E2E_SHARDS, records_per_shard=E2E_KPL_USER_RECORDS_PER_SHARD, kind="kpl"
        ),
    }
    with (
        kinesis_server(streams, rules=BENCH_SERVER_RULES) as server,
        tempfile.TemporaryDirectory() as tmp,
    ):
        for stream in streams:
            measure(spark, server, stream, runs, tmp)
    spark.stop()
