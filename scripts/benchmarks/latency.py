"""(e) put-to-row latency with a 100 ms processingTime trigger: a producer puts a record every
50 ms holding its put time, the foreachBatch sink notes when each row arrives.

Against the bench's in-memory Kinesis server (``kinesis_server``, a subprocess on 127.0.0.1,
taking the puts live) with ``LATENCY_CALL_MS`` added to every call, as AWS seen from an EC2
host. Next to the latency: the most GetRecords calls any one shard got in any 1-second
window, as the server counted them (Kinesis allows 5, shared by every consumer), with the
default ``fetchIntervalMs`` (200 ms) pacing the driver's probes and the reads together.

``put_to_row_latencies`` is shared with (g), which runs it at a 1 s trigger."""

from __future__ import annotations

import os
import tempfile
import threading
import time
from collections.abc import Mapping
from typing import Any

from tests.emulators.kinesis_server import StreamSpec, kinesis_server

from .common import BENCH_SERVER_RULES, E2E_SHARDS, figure, kinesis, source, spark_session
from .latency_breakdown import Arrival, breakdown

LATENCY_PUT_INTERVAL_S = 0.05
LATENCY_RUN_S = 20.0
LATENCY_TRIGGER = "100 milliseconds"
LATENCY_CALL_MS = 20
LATENCY_TARGET_S = 0.2
STREAM = "latency"


def put_to_row_latencies(
    spark: Any,
    endpoint: str,
    stream: str,
    tmp: str,
    trigger: str,
    progress: list[dict[str, Any]] | None = None,
    rows: list[Arrival] | None = None,
    sink_options: Mapping[str, str] | None = None,
    foreach: bool = False,
    **extra: str,
) -> list[float]:
    """Seconds from put to row of a put every LATENCY_PUT_INTERVAL_S for LATENCY_RUN_S, read
    by a query at a ``trigger`` trigger with the source options ``extra``; sorted. The
    query's progress reports go to ``progress`` if given, each row's times to ``rows``;
    ``sink_options`` are options of the query (Spark's own, such as async progress
    tracking). With ``foreach`` the rows go to Spark's row-wise ``foreach`` sink instead of
    ``foreachBatch`` (asynchronous progress tracking accepts the one, not the other)."""
    latencies: list[float] = []
    client = kinesis(endpoint)
    warmed_up = threading.Event()

    def note(text: str, now: float, shard_id: str, arrival_ms: int) -> None:
        if text == "warm-up":
            warmed_up.set()
        else:
            latencies.append(now - float(text))
            if rows is not None:
                rows.append(Arrival(float(text), now, shard_id, arrival_ms))

    def sink(df: Any, batch_id: int) -> None:
        got = df.collect()
        now = time.time()
        for row in got:
            note(bytes(row["data"]).decode(), now, row["shardId"], row["arrival"])

    df = source(spark, endpoint, stream, os.path.join(tmp, "store"), **extra).selectExpr(
        "data", "shardId", "unix_millis(approximateArrivalTimestamp) AS arrival"
    )
    noted = os.path.join(tmp, "rows.csv")
    if foreach:
        # Spark's row-wise foreach sink, in the executors' Python workers (which share this
        # machine's clock): a line per row. Nested, so that it is pickled by value.
        def row_note(row: Any) -> None:
            now = time.time()
            text = bytes(row["data"]).decode()
            with open(noted, "a", encoding="utf-8") as out:
                out.write(f"{text},{now},{row['shardId']},{row['arrival']}\n")

        writer = df.writeStream.foreach(row_note)
    else:
        writer = df.writeStream.foreachBatch(sink)
    query = (
        writer.option("checkpointLocation", os.path.join(tmp, "ckpt"))
        .options(**dict(sink_options or {}))
        .trigger(processingTime=trigger)
        .start()
    )
    stop = threading.Event()

    def produce() -> None:
        producer = kinesis(endpoint)
        i = 0
        while not stop.is_set():
            producer.put_record(
                StreamName=stream, PartitionKey=f"k{i}", Data=f"{time.time():.6f}".encode()
            )
            i += 1
            stop.wait(LATENCY_PUT_INTERVAL_S)

    try:
        # A first batch starts the executors' Python workers: not part of the latency.
        client.put_record(StreamName=stream, PartitionKey="w", Data=b"warm-up")
        deadline = time.monotonic() + 120
        while foreach and not warmed_up.is_set() and time.monotonic() < deadline:
            _read_notes(noted, note)
            time.sleep(0.1)
        if not warmed_up.wait(max(0.0, deadline - time.monotonic())):
            raise RuntimeError("the warm-up record was not read within 120 s")
        thread = threading.Thread(target=produce, daemon=True)
        thread.start()
        time.sleep(LATENCY_RUN_S)
        stop.set()
        thread.join()
        time.sleep(3)  # the last puts' rows
        if foreach:
            del latencies[:]
            if rows is not None:
                del rows[:]
            _read_notes(noted, note)
        if progress is not None:
            progress.extend(query.recentProgress)
    finally:
        query.stop()
    return sorted(latencies)


def _read_notes(path: str, note: Any) -> None:
    try:
        with open(path, encoding="utf-8") as notes:
            lines = notes.read().splitlines()
    except FileNotFoundError:
        return
    for line in lines:
        text, now, shard_id, arrival = line.split(",")
        note(text, float(now), shard_id, int(arrival))


def percentiles(latencies: list[float]) -> tuple[float, float, float]:
    """p50, p95 and max of sorted ``latencies``."""
    return (
        latencies[len(latencies) // 2],
        latencies[int(len(latencies) * 0.95)],
        latencies[-1],
    )


def measure(
    label: str,
    conf: Mapping[str, str] | None = None,
    sink_options: Mapping[str, str] | None = None,
    foreach: bool = False,
) -> tuple[float, float, float, int, float]:
    """One run of (e) with Spark settings ``conf`` and query options ``sink_options``:
    prints where a batch's and a row's time goes; (p50, p95, max, most GetRecords calls of a
    shard in any second, calls/s per shard on average)."""
    spark = spark_session(dict(conf or {}))
    progress: list[dict[str, Any]] = []
    spec = {STREAM: StreamSpec(shards=E2E_SHARDS)}
    with (
        kinesis_server(spec, latency_ms=LATENCY_CALL_MS, rules=BENCH_SERVER_RULES) as server,
        tempfile.TemporaryDirectory() as tmp,
    ):
        server.trace()
        rows: list[Arrival] = []
        # The default fetchIntervalMs: probes and reads paced to Kinesis' 5 calls/s per shard.
        latencies = put_to_row_latencies(
            spark,
            server.endpoint,
            STREAM,
            tmp,
            LATENCY_TRIGGER,
            progress,
            rows,
            sink_options,
            foreach,
            fetchIntervalMs="200",
        )
        stats = server.stats()
    spark.stop()
    batches = [p for p in progress if p["numInputRows"]]
    # Where a batch's time goes, as Spark reports it: planning (latestOffset) is ours alone,
    # addBatch holds the tasks' reads and the sink.
    steps = sorted({step for p in batches for step in p["durationMs"]})
    medians = {
        step: sorted(p["durationMs"].get(step, 0) for p in batches)[len(batches) // 2]
        for step in steps
    }
    print(f"  {label}:")
    print(
        f"    {len(batches)} batches with rows, median ms: "
        + ", ".join(f"{step} {ms}" for step, ms in sorted(medians.items(), key=lambda i: -i[1]))
    )
    parts = breakdown(rows, stats["trace"], batches)
    print(
        "    median ms: "
        + ", ".join(f"{what} {ms:.0f}" for what, ms in parts.items() if ms is not None)
    )
    per_shard = int(stats["get_records_max_per_shard_1s"])
    calls_per_s = stats["get_records_calls"] / (LATENCY_RUN_S + 3) / E2E_SHARDS
    p50, p95, top = percentiles(latencies)
    print(f"    {len(latencies):,} rows: p50 {p50:.3f} s, p95 {p95:.3f} s, max {top:.3f} s")
    print(
        f"    GetRecords: {calls_per_s:.1f} calls/s per shard on average, at most {per_shard} "
        f"on one shard in any 1 s; GetShardIterator: {stats['calls'].get('GetShardIterator', 0)}"
        " calls in all"
    )
    return p50, p95, top, per_shard, calls_per_s


def run(repeat: int) -> None:
    print(
        f"(e) put-to-row latency, {LATENCY_TRIGGER} trigger, a put every "
        f"{LATENCY_PUT_INTERVAL_S * 1000:.0f} ms for {LATENCY_RUN_S:.0f} s over {E2E_SHARDS} "
        f"shards, bench Kinesis server (subprocess), {LATENCY_CALL_MS} ms per call"
    )
    p50, p95, _, per_shard, calls_per_s = measure("Spark's defaults")
    figure(
        "e",
        f"put-to-row latency, {LATENCY_TRIGGER} trigger, {LATENCY_CALL_MS} ms per call",
        f"p50 {p50:.3f} s, p95 {p95:.3f} s; at most {per_shard} GetRecords calls/s per shard "
        f"({calls_per_s:.1f} on average)",
        f"p50 < {LATENCY_TARGET_S:.1f} s, <= 5 calls/s per shard",
        p50 < LATENCY_TARGET_S and per_shard <= 5,
    )
