"""Aggregation across a reshard, on kinesis-local (which reshards like AWS).

A task's shard map goes stale when the stream splits between two of its windows: the
aggregates built from it land on one child, holding user records whose hash keys belong
to the other. The KCL drops such records, so the sink sends them again to their own shard.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pyarrow as pa

from kinesis_source import limits
from kinesis_source.sink.columns import ColumnLayout
from kinesis_source.sink.options import parse_sink_options
from kinesis_source.sink.shard_map import hash_key_of
from kinesis_source.sink.task import SinkPlan, write_partition
from tests.helpers import (
    REGION,
    BatchCollector,
    create_stream,
    read_stream,
    run_until_idle,
    source_options,
    start_query,
    wait_active,
    wait_for,
)

SCHEMA = pa.schema([("data", pa.binary()), ("partitionKey", pa.string())])


def _write_across_a_split(
    kinesis_local: Any, endpoint: str, stream: str
) -> tuple[list[tuple[bytes, str]], Any]:
    """The sink writes two windows of aggregates to a one-shard stream split between them:
    the rows, and the sink's stats."""
    (parent,) = create_stream(kinesis_local, stream, 1)
    window = limits.SINK_AGGREGATE_WINDOW_RECORDS_PER_LANE  # one lane: one window of rows
    rows = [(b"r%d" % i, f"key-{i % 97}") for i in range(2 * window)]

    def batches() -> Iterator[pa.RecordBatch]:
        yield pa.RecordBatch.from_pylist(
            [{"data": d, "partitionKey": k} for d, k in rows[:window]], schema=SCHEMA
        )
        # Asked for the second window while the first one is sent (the task makes the
        # next window meanwhile): once the first one is written, split the stream.
        wait_for(
            lambda: len(read_stream(kinesis_local, stream)) == window,
            what="the first window to be written",
        )
        kinesis_local.split_shard(
            StreamName=stream, ShardToSplit=parent, NewStartingHashKey=str(2**127)
        )
        wait_active(kinesis_local, stream)
        yield pa.RecordBatch.from_pylist(
            [{"data": d, "partitionKey": k} for d, k in rows[window:]], schema=SCHEMA
        )

    options = parse_sink_options(
        {
            "streamName": stream,
            "region": REGION,
            "endpointUrl": endpoint,
            "aggregate": "true",
            "maxInFlightRequests": "1",
            "maxRecordBytes": "20000",
        }
    )
    plan = SinkPlan(options, ColumnLayout("data", False, "partitionKey", None))
    return rows, write_partition(plan, batches(), 0)


def test_records_of_a_stale_aggregate_are_sent_again_to_their_own_shard(
    kinesis_local: Any, kinesis_local_endpoint: str, stream_name: str
) -> None:
    rows, stats = _write_across_a_split(kinesis_local, kinesis_local_endpoint, stream_name)
    window = len(rows) // 2
    ranges = {
        s["ShardId"]: (
            int(s["HashKeyRange"]["StartingHashKey"]),
            int(s["HashKeyRange"]["EndingHashKey"]),
        )
        for s in kinesis_local.list_shards(StreamName=stream_name)["Shards"]
    }
    assert len(ranges) == 3
    found = read_stream(kinesis_local, stream_name)
    in_own_shard = set()
    for record in found:
        low, high = ranges[record["shardId"]]
        if low <= hash_key_of(record["partitionKey"], None) <= high:
            in_own_shard.add((record["data"], record["partitionKey"]))
    # What a KCL consumer keeps (records in their shard's range): every row.
    assert in_own_shard == set(rows)
    # The second window's misplaced records were written twice; nothing else was.
    copies = len(found) - len(rows)
    assert 0 < copies < window
    assert stats.records == len(found)


def test_the_source_reads_each_row_of_a_resent_aggregate_once(
    spark: Any, kinesis_local: Any, kinesis_local_endpoint: str, stream_name: str, tmp_path: Any
) -> None:
    """The copy of a user record left on the child that does not own its key is not read
    (the source drops aggregate user records outside the shard's hash-key range, as the
    KCL does): the stream read whole gives every row exactly once, each from the shard
    that owns its key."""
    rows, _ = _write_across_a_split(kinesis_local, kinesis_local_endpoint, stream_name)
    assert len(read_stream(kinesis_local, stream_name)) > len(rows)  # copies were written
    options = source_options(kinesis_local_endpoint, stream_name, str(tmp_path / "store"))
    sink = BatchCollector()
    run_until_idle(start_query(spark, options, str(tmp_path / "ckpt"), sink))
    got = sink.rows()
    assert sorted((bytes(r["data"]), r["partitionKey"]) for r in got) == sorted(rows)
    ranges = {
        s["ShardId"]: (
            int(s["HashKeyRange"]["StartingHashKey"]),
            int(s["HashKeyRange"]["EndingHashKey"]),
        )
        for s in kinesis_local.list_shards(StreamName=stream_name)["Shards"]
    }
    for row in got:
        low, high = ranges[row["shardId"]]
        assert low <= hash_key_of(row["partitionKey"], None) <= high
    # A batch read (spark.read) of the same stream drops the copies the same way.
    batch = spark.read.format("kinesis").options(**options).load()
    assert sorted((bytes(r.data), r.partitionKey) for r in batch.collect()) == sorted(rows)
