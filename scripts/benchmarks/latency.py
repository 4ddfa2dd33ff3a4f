"""(e) put-to-row latency with a processingTime trigger: a producer puts a record every
50 ms holding its put time, the foreachBatch sink notes when each row arrives."""

from __future__ import annotations

import os
import tempfile
import threading
import time
from typing import Any

from .common import E2E_SHARDS, figure, kinesis, moto_kinesis, new_stream, source, spark_session

LATENCY_PUT_INTERVAL_S = 0.05
LATENCY_RUN_S = 20.0
LATENCY_TRIGGER = "1 second"


def put_to_row_latencies(
    spark: Any, endpoint: str, stream: str, tmp: str, **extra: str
) -> list[float]:
    """Seconds from put to row of a put every LATENCY_PUT_INTERVAL_S for LATENCY_RUN_S, read
    by a query at a LATENCY_TRIGGER trigger with the source options ``extra``; sorted."""
    latencies: list[float] = []
    client = kinesis(endpoint)
    warmed_up = threading.Event()

    def sink(df: Any, batch_id: int) -> None:
        rows = df.select("data").collect()
        now = time.time()
        for row in rows:
            text = bytes(row["data"]).decode()
            if text == "warm-up":
                warmed_up.set()
            else:
                latencies.append(now - float(text))

    query = (
        source(spark, endpoint, stream, os.path.join(tmp, "store"), **extra)
        .writeStream.foreachBatch(sink)
        .option("checkpointLocation", os.path.join(tmp, "ckpt"))
        .trigger(processingTime=LATENCY_TRIGGER)
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
        if not warmed_up.wait(120):
            raise RuntimeError("the warm-up record was not read within 120 s")
        thread = threading.Thread(target=produce, daemon=True)
        thread.start()
        time.sleep(LATENCY_RUN_S)
        stop.set()
        thread.join()
        time.sleep(3)  # the last puts' rows
    finally:
        query.stop()
    return sorted(latencies)


def percentiles(latencies: list[float]) -> tuple[float, float, float]:
    """p50, p95 and max of sorted ``latencies``."""
    return (
        latencies[len(latencies) // 2],
        latencies[int(len(latencies) * 0.95)],
        latencies[-1],
    )


def run(repeat: int) -> None:
    print(
        f"(e) put-to-row latency, {LATENCY_TRIGGER} trigger, a put every "
        f"{LATENCY_PUT_INTERVAL_S * 1000:.0f} ms for {LATENCY_RUN_S:.0f} s, moto (subprocess)"
    )
    spark = spark_session()
    with moto_kinesis() as endpoint, tempfile.TemporaryDirectory() as tmp:
        stream = new_stream(kinesis(endpoint), E2E_SHARDS)
        latencies = put_to_row_latencies(spark, endpoint, stream, tmp)
    spark.stop()
    p50, p95, top = percentiles(latencies)
    print(f"  {len(latencies):,} rows: p50 {p50:.2f} s, p95 {p95:.2f} s, max {top:.2f} s")
    print(f"  latency p50 {p50:.2f} s (target < 2 s), p95 {p95:.2f} s")
    figure(
        "e",
        f"put-to-row latency, {LATENCY_TRIGGER} trigger",
        f"p50 {p50:.2f} s, p95 {p95:.2f} s",
        "p50 < 2 s",
        p50 < 2,
    )
