"""(c) end to end through Spark (local[2], noop sink, Trigger.AvailableNow) vs a plain
single-process boto3 GetRecords loop over the same records on the same server."""

from __future__ import annotations

import random
import time
from typing import Any

from aws_kinesis_agg.deaggregator import iter_deaggregate_records

from .common import (
    E2E_SHARDS,
    PAGE_RECORDS,
    RECORD_BYTES,
    figure,
    kinesis,
    kpl_aggregates,
    moto_kinesis,
    new_stream,
    put_all,
    spark_available_now,
    spark_session,
)

E2E_PLAIN_RECORDS = 200_000
E2E_KPL_USER_RECORDS = 400_000


def boto3_loop(client: Any, stream: str, *, deaggregate: bool) -> int:
    """The plain consumer: each shard from TRIM_HORIZON until caught up, one process."""
    rows = 0
    for shard in client.list_shards(StreamName=stream)["Shards"]:
        iterator = client.get_shard_iterator(
            StreamName=stream, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while iterator:
            resp = client.get_records(ShardIterator=iterator, Limit=PAGE_RECORDS)
            records = resp["Records"]
            if deaggregate:
                rows += sum(1 for _ in iter_deaggregate_records(records, data_format="Boto3"))
            else:
                rows += sum(1 for r in records if r["Data"] is not None)
            iterator = resp.get("NextShardIterator")
            if resp.get("MillisBehindLatest") == 0 and len(records) < PAGE_RECORDS:
                break
    return rows


def run(repeat: int) -> None:
    runs = max(1, min(repeat, 3))
    print(
        f"(c) end to end, {E2E_SHARDS} shards on moto (subprocess, 127.0.0.1): Spark local[2] "
        f"noop sink, AvailableNow vs a boto3 GetRecords loop; best of {runs} wall-clock runs"
    )
    rng = random.Random(3)
    spark = spark_session()
    with moto_kinesis() as endpoint:
        client = kinesis(endpoint)
        cases = [
            ("plain", f"{E2E_PLAIN_RECORDS:,} plain {RECORD_BYTES}-byte records", False),
            ("kpl", f"{E2E_KPL_USER_RECORDS:,} KPL user records of {RECORD_BYTES} bytes", True),
        ]
        for kind, label, aggregated in cases:
            stream = new_stream(client, E2E_SHARDS)
            if aggregated:
                blobs = kpl_aggregates(rng, E2E_KPL_USER_RECORDS)
                rows = E2E_KPL_USER_RECORDS
            else:
                blobs = [rng.randbytes(RECORD_BYTES) for _ in range(E2E_PLAIN_RECORDS)]
                rows = E2E_PLAIN_RECORDS
            put_all(client, stream, blobs, rng)
            print(f"  {label} ({len(blobs):,} Kinesis records)")
            loop_times = []
            for _ in range(runs):
                start = time.perf_counter()
                got = boto3_loop(client, stream, deaggregate=aggregated)
                loop_times.append(time.perf_counter() - start)
                assert got == rows, (got, rows)
            spark_available_now(spark, endpoint, stream)  # warm-up: JVM, Python workers
            spark_times = []
            for _ in range(runs):
                elapsed, got = spark_available_now(spark, endpoint, stream)
                spark_times.append(elapsed)
                assert got == rows, (got, rows)
            loop_s, spark_s = min(loop_times), min(spark_times)
            print(f"    boto3 loop, one process     {loop_s:6.2f} s {rows / loop_s:>10,.0f} rows/s")
            print(
                f"    Spark, query start to stop  {spark_s:6.2f} s {rows / spark_s:>10,.0f} rows/s"
            )
            ratio = loop_s / spark_s
            # The target is for plain records; the KPL line shows where the query's
            # fixed start and stop cost dominates (the loop finishes in about 2 s).
            target = "target >= 1.0x" if kind == "plain" else "no target"
            print(f"    ratio Spark / boto3 loop ({kind}): {ratio:.2f}x ({target})")
            figure(
                "c",
                f"end to end on moto, {label}: Spark vs a boto3 loop",
                f"{spark_s:.2f} s vs {loop_s:.2f} s: {ratio:.2f}x",
                ">= 1.0x" if kind == "plain" else "",
                ratio >= 1.0 if kind == "plain" else None,
            )
    spark.stop()
