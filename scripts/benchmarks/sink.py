"""(f) the sink: ``df.write.format("kinesis")`` vs a single-process boto3 PutRecords loop."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

from aws_kinesis_agg.aggregator import RecordAggregator

from kinesis_source import limits

from .common import (
    E2E_SHARDS,
    RECORD_BYTES,
    REGION,
    figure,
    kinesis,
    moto_kinesis,
    new_stream,
    spark_session,
)

SINK_RECORDS = 40_000
SINK_KEYS = 1_000
# Aggregation puts a few records where plain puts 40,000: more user records, so that the
# figure is not only a Spark job's fixed start cost.
SINK_AGG_RECORDS = 400_000
# preserveOrder with few keys: a call holds at most one record per key.
SINK_FEW_KEYS = 10
SINK_FEW_KEYS_RECORDS = 4_000


def boto3_put_loop(
    client: Any, stream: str, rows: list[tuple[bytes, str]], aggregate: bool
) -> None:
    """The plain producer: PutRecords of 500 records (or of aws_kinesis_agg aggregates)."""
    entries: list[dict[str, Any]] = []
    size = 0

    def flush() -> None:
        nonlocal size
        if entries:
            resp = client.put_records(StreamName=stream, Records=entries)
            assert not resp.get("FailedRecordCount"), resp
            entries.clear()
            size = 0

    def add(data: bytes, key: str, hash_key: str | None = None) -> None:
        nonlocal size
        if size + len(data) + len(key) > limits.PUT_RECORDS_MAX_BYTES:
            flush()
        entry: dict[str, Any] = {"Data": data, "PartitionKey": key}
        if hash_key is not None:
            entry["ExplicitHashKey"] = hash_key
        entries.append(entry)
        size += len(data) + len(key)
        if len(entries) == limits.PUT_RECORDS_MAX_RECORDS:
            flush()

    if not aggregate:
        for data, key in rows:
            add(data, key)
    else:
        aggregator = RecordAggregator()
        for data, key in rows:
            full = aggregator.add_user_record(key, data)
            if full is not None:
                agg_key, agg_hash_key, agg_data = full.get_contents()
                add(agg_data, agg_key, agg_hash_key)
        last = aggregator.clear_and_get()
        if last is not None:
            agg_key, agg_hash_key, agg_data = last.get_contents()
            add(agg_data, agg_key, agg_hash_key)
    flush()


def run(repeat: int) -> None:
    runs = max(1, min(repeat, 2))
    print(
        f"(f) sink, records of {RECORD_BYTES} bytes, "
        f"{E2E_SHARDS} shards on moto (subprocess, 127.0.0.1): Spark local[2] batch write vs "
        f"a boto3 PutRecords loop; best of {runs} wall-clock runs"
    )
    rng = random.Random(6)

    def make_rows(n: int, keys: int) -> list[tuple[bytes, str]]:
        return [(rng.randbytes(RECORD_BYTES), f"key-{i % keys}") for i in range(n)]

    spark = spark_session()
    datasets = {
        "plain": make_rows(SINK_RECORDS, SINK_KEYS),
        "aggregated": make_rows(SINK_AGG_RECORDS, SINK_KEYS),
        "few keys": make_rows(SINK_FEW_KEYS_RECORDS, SINK_FEW_KEYS),
    }
    frames = {
        name: spark.createDataFrame(rows, "data binary, partitionKey string").repartition(2).cache()
        for name, rows in datasets.items()
    }
    for name, frame in frames.items():
        assert frame.count() == len(datasets[name])
    with moto_kinesis() as endpoint:
        client = kinesis(endpoint)

        # Each timed write goes to a fresh stream: the emulator's cost grows with a stream.
        def spark_write(name: str, **extra: str) -> float:
            options = {
                "streamName": new_stream(client, E2E_SHARDS),
                "region": REGION,
                "endpointUrl": endpoint,
                **extra,
            }
            start = time.perf_counter()
            frames[name].write.format("kinesis").options(**options).mode("append").save()
            return time.perf_counter() - start

        def best(fn: Callable[[], float]) -> float:
            return min(fn() for _ in range(runs))

        def loop(name: str) -> float:
            stream = new_stream(client, E2E_SHARDS)
            start = time.perf_counter()
            boto3_put_loop(client, stream, datasets[name], name == "aggregated")
            return time.perf_counter() - start

        # Warm-up: JVM, Python workers, clients.
        spark.createDataFrame(
            datasets["plain"][:1000], "data binary, partitionKey string"
        ).write.format("kinesis").options(
            streamName=new_stream(client, E2E_SHARDS), region=REGION, endpointUrl=endpoint
        ).mode("append").save()
        for name in ("plain", "aggregated"):
            n = len(datasets[name])
            loop_s = best(lambda: loop(name))  # noqa: B023
            spark_s = best(lambda: spark_write(name, aggregate=str(name == "aggregated").lower()))  # noqa: B023
            print(f"  {name}, {n:,} records")
            print(f"    boto3 loop, one process   {loop_s:6.2f} s {n / loop_s:>10,.0f} records/s")
            print(f"    Spark batch write         {spark_s:6.2f} s {n / spark_s:>10,.0f} records/s")
            print(f"    ratio Spark / boto3 loop ({name}): {loop_s / spark_s:.2f}x")
            figure(
                "f",
                f"sink, {name} {n:,} records: Spark vs a boto3 PutRecords loop",
                f"{loop_s / spark_s:.2f}x",
            )
        for name, keys in (("plain", SINK_KEYS), ("few keys", SINK_FEW_KEYS)):
            n = len(datasets[name])
            default_s = best(lambda: spark_write(name))  # noqa: B023
            ordered_s = best(lambda: spark_write(name, preserveOrder="true"))  # noqa: B023
            print(
                f"  preserveOrder, {n:,} records over {keys:,} keys: default {default_s:.2f} s, "
                f"preserveOrder=true {ordered_s:.2f} s; throughput ratio "
                f"{default_s / ordered_s:.2f}x"
            )
    for frame in frames.values():
        frame.unpersist()
    spark.stop()
