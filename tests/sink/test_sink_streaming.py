"""Streaming into Kinesis: source -> sink -> source, and a query that fails midway and
restarts (at least once: the failed batch is written again, nothing else is).

kinesis-local over HTTP; the failure is a PutRecords entry rejected by the fault proxy."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from kinesis_source.sink.shard_map import hash_key_of
from kinesis_source.source.options import parse_options
from kinesis_source.source.stream_reader import KinesisStreamReader
from tests.fault_proxy import FaultProxy
from tests.helpers import (
    REGION,
    aggregate,
    create_stream,
    put,
    read_stream,
    shard_of,
    source_options,
    wait_for,
)

pytestmark = pytest.mark.spark


def start_pipeline(
    spark: Any, source: dict[str, str], sink: dict[str, str], checkpoint: Path, *, once: bool
) -> Any:
    """readStream kinesis -> writeStream kinesis, no foreachBatch."""
    writer = (
        spark.readStream.format("kinesis")
        .options(**source)
        .load()
        .select("data", "partitionKey", "explicitHashKey")
        .writeStream.format("kinesis")
        .options(**sink)
        .option("checkpointLocation", str(checkpoint))
    )
    if once:
        return writer.trigger(availableNow=True).start()
    return writer.trigger(processingTime="100 milliseconds").start()


def read_with_source(endpoint: str, stream: str, store: Path) -> list[dict[str, Any]]:
    """Every row of ``stream`` as our source reads it (one planned batch, no Spark)."""
    reader = KinesisStreamReader(
        parse_options(
            {k.lower(): v for k, v in source_options(endpoint, stream, str(store)).items()}
        )
    )
    start = reader.initialOffset()
    end = reader.latestOffset(start, reader.getDefaultReadLimit())
    batches = [b for p in reader.partitions(start, end) for b in reader.read(p)]
    rows: list[dict[str, Any]] = pa.Table.from_batches(batches).to_pylist() if batches else []
    return rows


@pytest.mark.lowest  # pyspark 4.2: the sink on the oldest Spark supported
def test_source_to_sink_to_source_keeps_data_keys_and_hash_keys(
    spark: Any, kinesis_local: Any, kinesis_local_endpoint: str, stream_name: str, tmp_path: Path
) -> None:
    upstream, downstream = f"{stream_name}-in", f"{stream_name}-out"
    create_stream(kinesis_local, upstream, 2)
    create_stream(kinesis_local, downstream, 3)
    top = 2**128 - 1
    users = [(f"user-{i}", b"agg %d" % i, str(top // 9 * i)) for i in range(9)]
    users += [(f"user-{i}", b"agg no hash key %d" % i) for i in range(5)]  # type: ignore[misc]
    plain = [(f"plain-{i}", b"plain %d" % i) for i in range(12)]
    put(
        kinesis_local,
        upstream,
        [("outer-1", aggregate(users[:9])), ("outer-2", aggregate(users[9:]))],
    )
    put(kinesis_local, upstream, plain)
    sink = {
        "streamName": downstream,
        "region": REGION,
        "endpointUrl": kinesis_local_endpoint,
        "aggregate": "true",
    }
    source = source_options(kinesis_local_endpoint, upstream, str(tmp_path / "store-in"))
    start_pipeline(spark, source, sink, tmp_path / "cp", once=True).awaitTermination(120)

    rows = read_with_source(kinesis_local_endpoint, downstream, tmp_path / "store-out")
    wanted = {(u[0], u[1]): (u[2] if len(u) > 2 else None) for u in [*users, *plain]}
    assert Counter((r["partitionKey"], r["data"]) for r in rows) == Counter(list(wanted))
    for row in rows:
        hash_key = wanted[(row["partitionKey"], row["data"])]
        assert row["shardId"] == shard_of(
            kinesis_local, downstream, hash_key_of(row["partitionKey"], hash_key)
        )
        if row["subSequenceNumber"] > 0 or row["explicitHashKey"] is not None:
            assert row["explicitHashKey"] == hash_key
    # Written as aggregates: several user records share one Kinesis record.
    assert len({(r["shardId"], r["sequenceNumber"]) for r in rows}) < len(rows)


def test_a_query_failing_midway_rewrites_exactly_its_failed_batch_on_restart(
    spark: Any, kinesis_local: Any, kinesis_local_endpoint: str, stream_name: str, tmp_path: Path
) -> None:
    upstream, downstream = f"{stream_name}-in", f"{stream_name}-out"
    create_stream(kinesis_local, upstream, 1)
    create_stream(kinesis_local, downstream, 1)
    proxy = FaultProxy(kinesis_local_endpoint)
    sink = {
        "streamName": downstream,
        "region": REGION,
        "endpointUrl": proxy.start(),
        "maxRetries": "0",
        "maxInFlightRequests": "1",
    }
    source = source_options(kinesis_local_endpoint, upstream, str(tmp_path / "store"))
    first = [(f"k{i % 3}", b"first %d" % i) for i in range(10)]
    second = [(f"k{i % 3}", b"second %d" % i) for i in range(10)]
    try:
        put(kinesis_local, upstream, first)
        query = start_pipeline(spark, source, sink, tmp_path / "cp", once=False)
        query.processAllAvailable()
        query.stop()

        # The next batch holds `second`; its one call gets entry 3 throttled, no retry left.
        put(kinesis_local, upstream, second)
        proxy.fail_entries(1, lambda entries: [3])
        query = start_pipeline(spark, source, sink, tmp_path / "cp", once=False)
        wait_for(lambda: not query.isActive, timeout_s=120, what="the query to fail")
        assert "1 records still failed after 0 retries" in str(query.exception())

        query = start_pipeline(spark, source, sink, tmp_path / "cp", once=False)
        query.processAllAvailable()
        query.stop()
    finally:
        proxy.stop()

    written = Counter(
        (r["partitionKey"], r["data"]) for r in read_stream(kinesis_local, downstream)
    )
    failed_batch_written_once = Counter(second[:3] + second[4:])
    assert written == Counter(first) + Counter(second) + failed_batch_written_once
    duplicates = {record for record, count in written.items() if count > 1}
    assert duplicates == set(failed_batch_written_once)
