"""(h) Shards per core at full rate, within the quotas: how many shards, each written at its
full rate, one core of a cluster keeps up with.

The Kinesis test server (``tests/emulators/kinesis_server.py``) with AWS' read quotas on
(5 GetRecords calls/s and 2 MiB/s per shard, iterator expiry) appends 1 KiB records to
each of N shards by itself (its feeder: no producer process) at ``FEED_BYTES_PER_S`` a
shard, counted as the quotas count them (data and partition key), each call answered after
``CALL_MS`` as AWS from an EC2 host. The query reads from LATEST with the default options
(pacing on: ``fetchIntervalMs`` 200 ms) on local[2] into the noop sink at a 1 s trigger.

A step at N runs ``WARM_UP_S``, then watches ``WINDOW_S``: the shards' lag
(``maxMsBehindLatest`` of each batch's progress, what a user watches) and the rows read.
N keeps up when the lag of the window's last ``ENDS_S`` is no more than ``LAG_GROWTH_MS``
above that of its first ``ENDS_S``, and the window's rows are at least ``ROWS_SHARE`` of what
the feeder appended in it. N doubles from ``FIRST_N`` while it keeps up, then two steps
each halfway between the last N that kept up and the first that did not: a few steps, not
an exhaustive search. At the smallest N that fell behind, a profile of one task's read
(``read_profile``) and a step with ``shardsPerTask=GROUPED`` show where the time goes and
what grouping shards in tasks gives (at a larger N the server, on the same cores, takes
most of a core and would be what the step measures).

Spark's ceiling for a Python streaming source, fed the same way, gives the reference N: a
``DataSourceStreamReader`` whose offset is the rows due by now at the same rate per
partition, one partition per shard, whose tasks yield a pre-built Arrow batch of 1 KiB
rows in our schema (no I/O, no decoding). Its lag is how far the rows its batch ended at
lie behind the rows due when the batch ended.

The figure is N divided by the cores the query had (2). Next to it: the most GetRecords
calls of one shard in any second (never above 5), the server's CPU share (if it holds a
core, the server is what limits N on this 2-core machine) and the Spark processes' own CPU,
which gives the figure per core of Spark time, next to the ceiling's.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pyarrow as pa
from pyspark.sql.datasource import DataSource, DataSourceStreamReader, InputPartition
from pyspark.sql.streaming.datasource import ReadLimit

from kinesis_source.schema import ARROW_SCHEMA, SCHEMA_DDL
from tests.emulators.kinesis_rules import MIB, Rules
from tests.emulators.kinesis_server import KinesisServer, StreamSpec, kinesis_server

from . import procs
from .common import REGION, descendants_cpu_seconds, figure, spark_session

RECORD_BYTES = 1024
# The feeder's key, "feed-<n % 1000>", is 8 bytes on average: the quotas count it too.
KEY_BYTES = 8
# A shard's full rate: AWS' write quota, 1,000 records/s and 1 MiB/s a shard, met here by
# the records/s (1,000 KiB/s of data). Not the read quota, 2 MiB/s: no shard is written
# faster than 1 MiB/s, and a feed at the read quota leaves a reader no headroom (after a
# call that returned B bytes Kinesis refuses the shard's calls for B / 2 MiB/s, so a reader
# can at best hold its lag, never win it back). BENCH_H_RECORDS_PER_S changes it.
RECORDS_PER_S = int(os.environ.get("BENCH_H_RECORDS_PER_S", "1000"))
FEED_BYTES_PER_S = RECORDS_PER_S * RECORD_BYTES
CALL_MS = 20
TRIGGER = "1 second"
CORES = 2
FIRST_N = 8
# Steps halfway between the last N that kept up and the first that did not.
HALVINGS = 2
# shardsPerTask of the step that shows what grouping shards in tasks gives.
GROUPED = 8
MAX_N = 128
WARM_UP_S = float(os.environ.get("BENCH_H_WARM_UP_S", "15"))
WINDOW_S = float(os.environ.get("BENCH_H_WINDOW_S", "60"))
ENDS_S = WINDOW_S / 4
LAG_GROWTH_MS = 2_000
ROWS_SHARE = 0.95
# Records older than this are trimmed and their bytes let go by the server: at 2 MiB/s a
# shard, the feed of a minute would hold gigabytes. A reader this far behind has lost.
RETENTION_S = 45
CEILING_SHARE = 0.80
SHARDS_PER_CORE = 25


@dataclass(frozen=True)
class Step:
    shards: int
    kept_up: bool
    lag_start_ms: float
    lag_end_ms: float
    rows_share: float
    calls_per_shard_1s: int | None
    server_cores: float | None
    spark_cores: float | None
    # Medians over the window's batches: seconds a batch took, rows a read took from its
    # shard, shards a batch read (the connector leaves out a shard whose read quota is spent).
    batch_s: float | None = None
    shard_rows: float | None = None
    reads: float | None = None

    def line(self) -> str:
        calls = "" if self.calls_per_shard_1s is None else f", <= {self.calls_per_shard_1s} calls/s"
        server = "" if self.server_cores is None else f", server {self.server_cores:.2f} cores"
        spark = "" if self.spark_cores is None else f", Spark {self.spark_cores:.2f} cores"
        verdict = "keeps up" if self.kept_up else "falls behind"
        return (
            f"    N={self.shards:<4} {verdict:<13} lag {self.lag_start_ms:,.0f} -> "
            f"{self.lag_end_ms:,.0f} ms, rows {self.rows_share:.0%} of the feed"
            f"{calls}{server}{spark}{self._batches()}"
        )

    def _batches(self) -> str:
        if self.batch_s is None or self.shard_rows is None:
            return ""
        return (
            f", batches {self.batch_s:.1f} s reading {self.reads or 0:.0f} shards of "
            f"{self.shard_rows:,.0f} rows"
        )


def judged(
    samples: Sequence[tuple[float, float]], rows: int, due: float
) -> tuple[bool, float, float, float]:
    """(kept up, lag at the start, lag at the end, rows share) of a window's (seconds into
    the window, lag ms) samples and its rows read against the rows due."""
    first = [lag for t, lag in samples if t <= ENDS_S] or [float("inf")]
    last = [lag for t, lag in samples if t >= WINDOW_S - ENDS_S] or [float("inf")]
    start, end = statistics.median(first), statistics.median(last)
    share = rows / due if due else 0.0
    return end <= start + LAG_GROWTH_MS and share >= ROWS_SHARE, start, end, share


def _end_ms(progress: dict[str, Any]) -> float:
    """When a batch ended (epoch ms): its trigger's start plus its duration."""
    started = datetime.fromisoformat(progress["timestamp"].replace("Z", "+00:00"))
    return started.timestamp() * 1000 + progress["durationMs"].get("triggerExecution", 0)


def watch(
    query: Any,
    lag_of: Callable[[dict[str, Any]], float | None],
    server: KinesisServer | None,
    shards: int,
    exclude: Sequence[int],
) -> Step:
    """Warm up, then watch the query for WINDOW_S; the step's verdict and figures.

    The warm-up counts from the first batch that read rows: before it, Spark starts the
    Python workers and the reads make their clients, seconds on a busy machine, and the
    backlog of that start is caught up within the warm-up."""
    deadline = None
    while deadline is None or time.monotonic() < deadline:
        if query.exception() is not None:
            raise RuntimeError(f"(h) query failed: {query.exception()}")
        if deadline is None and any(p["numInputRows"] for p in query.recentProgress):
            deadline = time.monotonic() + WARM_UP_S
        time.sleep(0.5)
    seen = {p["batchId"] for p in query.recentProgress}
    if server is not None:
        server.reset_stats()
    spark_cpu = descendants_cpu_seconds(exclude=exclude)
    server_cpu = None if server is None else procs.cpu_seconds(server.pid)
    started = time.time()
    samples: list[tuple[float, float]] = []
    rows = 0
    batch_ms: list[float] = []
    batch_rows: list[float] = []
    batch_reads: list[int] = []
    while time.time() - started < WINDOW_S:
        time.sleep(0.5)
        if query.exception() is not None:
            raise RuntimeError(f"(h) query failed: {query.exception()}")
        for p in query.recentProgress:
            if p["batchId"] in seen:
                continue
            seen.add(p["batchId"])
            rows += p["numInputRows"]
            if p["numInputRows"]:
                reads = reads_of(p, shards)
                batch_ms.append(p["durationMs"].get("triggerExecution", 0))
                batch_rows.append(p["numInputRows"] / reads)
                batch_reads.append(reads)
            lag = lag_of(p)
            if lag is not None:
                samples.append((_end_ms(p) / 1000 - started, lag))
    elapsed = time.time() - started
    due = RECORDS_PER_S * shards * elapsed
    kept_up, lag_start, lag_end, share = judged(samples, rows, due)
    calls = None
    if server is not None:
        calls = int(server.stats()["get_records_max_per_shard_1s"])
    spark_cores = None
    now_spark = descendants_cpu_seconds(exclude=exclude)
    if spark_cpu is not None and now_spark is not None:
        spark_cores = (now_spark - spark_cpu) / elapsed
    server_cores = None
    now_server = None if server is None else procs.cpu_seconds(server.pid)
    if server_cpu is not None and now_server is not None:
        server_cores = (now_server - server_cpu) / elapsed
    batch_s = statistics.median(batch_ms) / 1000 if batch_ms else None
    shard_rows = statistics.median(batch_rows) if batch_rows else None
    reads = statistics.median(batch_reads) if batch_reads else None
    return Step(
        shards,
        kept_up,
        lag_start,
        lag_end,
        share,
        calls,
        server_cores,
        spark_cores,
        batch_s,
        shard_rows,
        reads,
    )


def reads_of(progress: dict[str, Any], shards: int) -> int:
    """The shards a connector's batch read (planned with a limit other than 0); ``shards``
    for another source."""
    end = progress["sources"][0].get("endOffset")
    data = json.loads(end) if isinstance(end, str) else end
    streams = (data or {}).get("streams")
    if not streams:
        return shards
    entries = [e for stream in streams.values() for e in stream["shards"].values()]
    return max(1, sum(1 for e in entries if e.get("limit") != 0))


def connector_lag(progress: dict[str, Any]) -> float | None:
    report = progress["sources"][0].get("latestOffset")
    if not report:
        return None
    value = (json.loads(report) or {}).get("maxMsBehindLatest")
    return None if value is None else float(value)


def connector_step(spark: Any, shards: int, **extra: str) -> Step:
    rules = Rules(
        feed_record_bytes=RECORD_BYTES,
        feed_bytes_per_s=FEED_BYTES_PER_S,
        retention_s=RETENTION_S,
    )
    with (
        kinesis_server({"h": StreamSpec(shards=shards)}, latency_ms=CALL_MS, rules=rules) as server,
        tempfile.TemporaryDirectory() as tmp,
    ):
        reader = spark.readStream.format("kinesis").options(
            streamName="h",
            region=REGION,
            endpointUrl=server.endpoint,
            checkpointStore=os.path.join(tmp, "store"),
            initialPosition="latest",
            **extra,
        )
        query = (
            reader.load()
            .writeStream.format("noop")
            .option("checkpointLocation", os.path.join(tmp, "ckpt"))
            .trigger(processingTime=TRIGGER)
            .start()
        )
        try:
            return watch(query, connector_lag, server, shards, exclude=[server.pid])
        finally:
            query.stop()


# --------------------------------------------------------------------------------------
# Spark's ceiling, paced: rows due at the feed's rate, no I/O, no decoding.


class PacedPartition(InputPartition):
    def __init__(self, index: int, rows: int) -> None:
        super().__init__(index)
        self.rows = rows


_ROWS: list[pa.RecordBatch] = []


def feed_batch(rows: int = 2_048) -> pa.RecordBatch:
    """``rows`` rows of 1 KiB records in our schema, made once per Python worker."""
    if not _ROWS:
        n = rows
        _ROWS.append(
            pa.RecordBatch.from_arrays(
                [
                    pa.array([b"x" * RECORD_BYTES] * n, pa.binary()),
                    pa.array(["h"] * n, pa.string()),
                    pa.array(["shardId-000000000000"] * n, pa.string()),
                    pa.array([f"feed-{i % 1000}" for i in range(n)], pa.string()),
                    pa.array([str(10**55 + i) for i in range(n)], pa.string()),
                    pa.array([0] * n, pa.int64()),
                    pa.array([None] * n, pa.string()),
                    pa.array(
                        [1_795_000_000_000_000 + i for i in range(n)], pa.timestamp("us", tz="UTC")
                    ),
                ],
                schema=ARROW_SCHEMA,
            )
        )
    return _ROWS[0]


class PacedCeilingReader(DataSourceStreamReader):
    """Offsets count the rows due per partition since ``t0`` at ``rate`` a second."""

    def __init__(self, options: dict[str, str]) -> None:
        self.partitions_count = int(options["partitions"])
        self.rate = float(options["rate"])
        self.t0 = float(options["t0"])

    def _due(self) -> int:
        return int((time.time() - self.t0) * self.rate)

    def initialOffset(self) -> dict[str, Any]:
        return {"rows": self._due()}

    def latestOffset(self, start: dict[str, Any], limit: ReadLimit) -> dict[str, Any]:
        return {"rows": self._due()}

    def partitions(self, start: dict[str, Any], end: dict[str, Any]) -> Sequence[InputPartition]:
        rows = int(end["rows"]) - int(start["rows"])
        if rows <= 0:
            return []
        return [PacedPartition(i, rows) for i in range(self.partitions_count)]

    def read(self, partition: InputPartition) -> Iterator[pa.RecordBatch]:
        assert isinstance(partition, PacedPartition)
        batch = feed_batch()
        left = partition.rows
        while left > 0:
            take = min(left, batch.num_rows)
            yield batch if take == batch.num_rows else batch.slice(0, take)
            left -= take

    def commit(self, end: dict[str, Any]) -> None:
        pass


class PacedCeilingSource(DataSource):
    @classmethod
    def name(cls) -> str:
        return "kinesis_paced_ceiling"

    def schema(self) -> str:
        return SCHEMA_DDL

    def streamReader(self, schema: Any) -> DataSourceStreamReader:
        return PacedCeilingReader(self.options)


def ceiling_step(spark: Any, shards: int) -> Step:
    t0 = time.time()

    def lag(progress: dict[str, Any]) -> float | None:
        end = progress["sources"][0].get("endOffset")
        if not end:
            return None
        rows = json.loads(end)["rows"] if isinstance(end, str) else end["rows"]
        return max(0.0, _end_ms(progress) - (t0 + rows / RECORDS_PER_S) * 1000)

    with tempfile.TemporaryDirectory() as tmp:
        query = (
            spark.readStream.format("kinesis_paced_ceiling")
            .options(partitions=str(shards), rate=str(RECORDS_PER_S), t0=repr(t0))
            .load()
            .writeStream.format("noop")
            .option("checkpointLocation", os.path.join(tmp, "ckpt"))
            .trigger(processingTime=TRIGGER)
            .start()
        )
        try:
            return watch(query, lag, None, shards, exclude=[])
        finally:
            query.stop()


def read_profile(behind: Step) -> str:
    """Where a task's time goes at the smallest N that fell behind: one shard's read of a
    batch's rows (the median of that step), through the executors' read path in this
    process, against the same server; wall time and this process' CPU time."""
    from kinesis_source.source.executor.shard_reader import read_shard
    from kinesis_source.source.options import parse_options
    from kinesis_source.source.positions import Position
    from kinesis_source.source.tasks import ShardTask
    from kinesis_source.stores import open_store

    rows = int(behind.shard_rows or 0)
    rules = Rules(
        feed_record_bytes=RECORD_BYTES, feed_bytes_per_s=FEED_BYTES_PER_S, retention_s=RETENTION_S
    )
    with (
        kinesis_server({"h": StreamSpec(shards=3)}, latency_ms=CALL_MS, rules=rules) as server,
        tempfile.TemporaryDirectory() as tmp,
    ):
        opts = parse_options(
            {
                "streamName": "h",
                "region": REGION,
                "endpointUrl": server.endpoint,
                "checkpointStore": os.path.join(tmp, "store"),
            }
        )
        store = open_store(opts)
        # The feeder appends RECORDS_PER_S a second: the backlog of one batch.
        time.sleep(rows / RECORDS_PER_S)
        walls, cpus, read = [], [], 0
        # A shard each: a second read of a shard would be refused by its read quota. The
        # first builds the client and warms the path.
        for n in range(3):
            task = ShardTask(0, "h", "q", f"shardId-{n:012d}", Position.trim_horizon())
            wall, cpu = time.perf_counter(), time.process_time()
            read = sum(b.num_rows for b in read_shard(opts, store, task))
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
    wall_ms, cpu_ms = min(walls[1:]) * 1000, min(cpus[1:]) * 1000
    reads = behind.reads or behind.shards
    slot_s = reads * wall_ms / 1000 / CORES
    return (
        f"  profile at N={behind.shards}: a read of one shard's batch ({read:,} rows, "
        f"{rows:,} wanted) takes {wall_ms:.0f} ms, of which {cpu_ms:.0f} ms CPU and the rest "
        f"waiting on the server's answers; {reads:.0f} such tasks on {CORES} slots hold "
        f"each slot {slot_s:.1f} s of a {behind.batch_s or 0:.1f} s batch (Spark's per-task "
        f"cost and its taking of the rows are the rest)"
    )


def search(
    step_at: Callable[[int], Step], label: str, first: int = FIRST_N
) -> tuple[int, list[Step]]:
    """The largest N that kept up: doubling from ``first``, then two steps halfway back."""
    steps: list[Step] = []

    def step(n: int) -> bool:
        taken = step_at(n)
        print(f"  {label}\n{taken.line()}", flush=True)
        steps.append(taken)
        return taken.kept_up

    best, n = 0, first
    while step(n):
        best = n
        if n >= MAX_N:
            return best, steps
        n = min(n * 2, MAX_N)
    low, high = best, n
    for _ in range(HALVINGS):
        middle = (low + high) // 2
        if middle in (low, high) or middle <= 0:
            break
        if step(middle):
            low = middle
        else:
            high = middle
    return low, steps


def run(repeat: int) -> None:
    print(
        f"(h) shards per core at full rate: {RECORD_BYTES}-byte records at "
        f"{RECORDS_PER_S:,} records/s a shard ({FEED_BYTES_PER_S / MIB:.2f} MiB/s) appended by "
        f"the Kinesis test server with AWS' read quotas, {CALL_MS} ms a call; local[{CORES}], "
        f"noop sink, {TRIGGER} trigger, default options; {WARM_UP_S:.0f} s warm-up, "
        f"{WINDOW_S:.0f} s watched per step"
    )
    spark = spark_session()
    spark.dataSource.register(PacedCeilingSource)
    ours, our_steps = search(lambda n: connector_step(spark, n), "connector")
    # The ceiling starts where the connector stopped keeping up: below, it kept up in every run.
    first = max(FIRST_N, ours)
    ceiling, ceiling_steps = search(lambda n: ceiling_step(spark, n), "Spark's ceiling", first)
    top = next((s for s in reversed(our_steps) if s.shards == ours), None)
    print(f"  largest N kept up: connector {ours}, Spark's ceiling {ceiling}")
    share = ours / ceiling if ceiling else 0.0
    # The search stops at MAX_N: a ceiling that kept up there may go further.
    at_least = ">= " if ceiling == MAX_N else ""
    figure(
        "h",
        "shards per core at 1,000 records/s of 1 KiB each, within the quotas (vs Spark's ceiling)",
        f"{ours / CORES:g} ({ours} on {CORES} cores; ceiling {at_least}{ceiling} on {CORES} "
        f"cores: {'<= ' if at_least else ''}{share:.0%})",
        f">= {CEILING_SHARE:.0%} of the ceiling's N",
        share >= CEILING_SHARE,
    )
    figure(
        "h",
        "shards per core at full rate (MiB/s per core)",
        f"{ours / CORES:g} ({ours / CORES * FEED_BYTES_PER_S / MIB:.1f} MiB/s)",
        f">= {SHARDS_PER_CORE}",
        ours / CORES >= SHARDS_PER_CORE,
    )
    ceiling_top = next((s for s in reversed(ceiling_steps) if s.shards == ceiling), None)
    if top is not None and top.spark_cores and ceiling_top is not None and ceiling_top.spark_cores:
        ours_per, theirs_per = ours / top.spark_cores, ceiling / ceiling_top.spark_cores
        figure(
            "h",
            "shards per core of Spark time (Spark's JVM and Python workers' CPU), vs the ceiling's",
            f"{ours_per:.1f} (N={ours}, {top.spark_cores:.2f} cores) vs {theirs_per:.1f} "
            f"(N={ceiling}, {ceiling_top.spark_cores:.2f} cores): {ours_per / theirs_per:.0%}",
            f">= {CEILING_SHARE:.0%}",
            ours_per / theirs_per >= CEILING_SHARE,
        )
    behind = min(
        (s for s in our_steps if not s.kept_up and s.shard_rows),
        key=lambda s: s.shards,
        default=None,
    )
    if behind is not None and behind.shard_rows is not None:
        print(read_profile(behind))
        # A task reads its shards concurrently: the round trips of one no longer hold a slot.
        grouped = connector_step(spark, behind.shards, shardsPerTask=str(GROUPED))
        print(f"  connector, shardsPerTask={GROUPED}\n{grouped.line()}", flush=True)
        figure(
            "h",
            f"the smallest N the defaults fell behind at, with shardsPerTask={GROUPED}",
            f"N={behind.shards}: {'keeps up' if grouped.kept_up else 'falls behind'} "
            f"(lag {grouped.lag_start_ms:,.0f} -> {grouped.lag_end_ms:,.0f} ms, rows "
            f"{grouped.rows_share:.0%} of the feed)",
        )
    if top is not None:
        per_spark_core = f"{ours / top.spark_cores:.1f}" if top.spark_cores else "n/a"
        figure(
            "h",
            f"at N={ours}: GetRecords calls/s per shard (most), server's CPU, "
            "shards per core of Spark time",
            f"{top.calls_per_shard_1s}; server {top.server_cores or 0:.2f} cores; {per_spark_core}",
            "<= 5 calls/s",
            top.calls_per_shard_1s is not None and top.calls_per_shard_1s <= 5,
        )
