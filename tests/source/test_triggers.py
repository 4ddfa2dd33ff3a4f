"""Admission control, Trigger.AvailableNow, idle triggers, lag and shardsPerTask end to end:
real Spark, moto's Kinesis over HTTP on 127.0.0.1 (shardsPerTask on the Kinesis test
server). No timing assertions: speed lives in scripts/bench.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pyspark.errors import StreamingQueryException

from tests.emulators.kinesis_server import KinesisServer
from tests.helpers import (
    BatchCollector,
    FailOnceCollector,
    create_stream,
    expected_keys,
    put,
    record_keys,
    run_until_idle,
    source_options,
    start_query,
    wait_for,
)

# Explicit hash keys at the two ends of the key space: the first and last shard of a
# stream whose shards split the space evenly.
LOW_HASH_KEY = "1"
HIGH_HASH_KEY = str(2**128 - 2)


def put_evenly(client: Any, stream: str, per_shard: int, tag: str) -> list[dict[str, Any]]:
    """``per_shard`` records to each end of the hash-key space, alternating."""
    out = []
    for i in range(per_shard):
        for hash_key in (LOW_HASH_KEY, HIGH_HASH_KEY):
            data = f"{tag}-{hash_key[:3]}-{i}".encode()
            resp = client.put_record(
                StreamName=stream, PartitionKey="k", ExplicitHashKey=hash_key, Data=data
            )
            out.append({"shardId": resp["ShardId"], "sequenceNumber": resp["SequenceNumber"]})
            out[-1]["data"] = data
    return out


def test_max_records_per_trigger_bounds_every_batch_to_its_budget(
    spark: Any, kinesis: Any, moto_endpoint: str, stream_name: str, tmp_path: Path
) -> None:
    create_stream(kinesis, stream_name, 2)
    puts = put_evenly(kinesis, stream_name, 20, "r")
    assert len({p["shardId"] for p in puts}) == 2
    sink = BatchCollector()
    options = source_options(
        moto_endpoint, stream_name, str(tmp_path / "store"), maxRecordsPerTrigger="10"
    )
    run_until_idle(start_query(spark, options, str(tmp_path / "ckpt"), sink))
    # 10 rows a batch, 5 from each shard; the last batch ends exactly at both shards' ends,
    # so no empty batch follows.
    assert [len(sink.batches[b]) for b in sorted(sink.batches)] == [10, 10, 10, 10]
    assert record_keys(sink.rows()) == expected_keys(puts)


def put_sized(client: Any, stream: str, per_shard: int, size: int) -> list[dict[str, Any]]:
    """``per_shard`` records of exactly ``size`` bytes to each end of the hash-key space."""
    out = []
    for i in range(per_shard):
        for hash_key in (LOW_HASH_KEY, HIGH_HASH_KEY):
            data = f"{hash_key[:3]}-{i}-".encode().ljust(size, b".")
            resp = client.put_record(
                StreamName=stream, PartitionKey="k", ExplicitHashKey=hash_key, Data=data
            )
            out.append({"shardId": resp["ShardId"], "sequenceNumber": resp["SequenceNumber"]})
            out[-1]["data"] = data
    return out


def batch_sizes(sink: BatchCollector) -> list[tuple[int, int]]:
    """(rows, bytes of record data) of each batch that read rows, in batch order."""
    return [
        (len(rows), sum(len(r["data"]) for r in rows))
        for _, rows in sorted(sink.batches.items())
        if rows
    ]


def test_max_bytes_per_trigger_bounds_every_batch_and_a_replay_reads_the_same(
    spark: Any, kinesis: Any, moto_endpoint: str, stream_name: str, tmp_path: Path
) -> None:
    create_stream(kinesis, stream_name, 2)
    puts = put_sized(kinesis, stream_name, 20, 100)
    assert len({p["shardId"] for p in puts}) == 2
    sink = FailOnceCollector()
    options = source_options(
        moto_endpoint, stream_name, str(tmp_path / "store"), maxBytesPerTrigger="1000"
    )
    checkpoint = str(tmp_path / "ckpt")
    query = start_query(spark, options, checkpoint, sink)
    with pytest.raises(StreamingQueryException, match="injected sink failure"):
        query.processAllAvailable()
    query.stop()
    # 500 bytes a shard: five 100-byte records from each.
    (failed,) = sink.failed.values()
    assert len(failed) == 10
    run_until_idle(start_query(spark, options, checkpoint, sink))
    # The replay, planned from the offset log, read the same records.
    assert sink.replayed == sink.failed
    assert batch_sizes(sink) == [(10, 1000)] * 4
    assert record_keys(sink.rows()) == expected_keys(puts)


@pytest.mark.parametrize(("max_records", "rows_per_batch"), [("6", 6), ("30", 10)])
def test_with_both_per_trigger_limits_the_tighter_wins(
    spark: Any,
    kinesis: Any,
    moto_endpoint: str,
    stream_name: str,
    tmp_path: Path,
    max_records: str,
    rows_per_batch: int,
) -> None:
    create_stream(kinesis, stream_name, 2)
    puts = put_sized(kinesis, stream_name, 15, 100)
    sink = BatchCollector()
    options = source_options(
        moto_endpoint,
        stream_name,
        str(tmp_path / "store"),
        maxRecordsPerTrigger=max_records,
        maxBytesPerTrigger="1000",
    )
    run_until_idle(start_query(spark, options, str(tmp_path / "ckpt"), sink))
    sizes = batch_sizes(sink)
    assert sizes[:-1] == [(rows_per_batch, rows_per_batch * 100)] * (len(sizes) - 1)
    assert 0 < sizes[-1][0] <= rows_per_batch
    assert record_keys(sink.rows()) == expected_keys(puts)


def test_available_now_reads_exactly_what_existed_and_stops_also_after_a_restart(
    spark: Any, kinesis: Any, moto_endpoint: str, stream_name: str, tmp_path: Path
) -> None:
    create_stream(kinesis, stream_name, 2)
    before = put_evenly(kinesis, stream_name, 12, "before")
    later: list[dict[str, Any]] = []
    sink = BatchCollector()

    def sink_putting_while_running(df: Any, batch_id: int) -> None:
        # The first batch runs after prepareForTriggerAvailableNow: these arrive too late.
        if not later:
            later.extend(put_evenly(kinesis, stream_name, 3, "later"))
        sink(df, batch_id)

    options = source_options(
        moto_endpoint, stream_name, str(tmp_path / "store"), maxRecordsPerTrigger="5"
    )
    checkpoint = str(tmp_path / "ckpt")
    query = start_query(
        spark, options, checkpoint, sink_putting_while_running, trigger="availableNow"
    )
    assert query.awaitTermination(120), "AvailableNow did not stop by itself"
    assert query.exception() is None
    assert len(sink.batches) >= 5  # 24 rows at 5 a batch
    assert all(len(rows) <= 5 for rows in sink.batches.values())
    assert record_keys(sink.rows()) == expected_keys(before)

    # A restart is another AvailableNow run: it reads what arrived since, and stops.
    first_run = len(sink.batches)
    query = start_query(spark, options, checkpoint, sink, trigger="availableNow")
    assert query.awaitTermination(120), "AvailableNow did not stop after a restart"
    assert len(sink.batches) > first_run
    assert record_keys(sink.rows()) == expected_keys(before + later)


def test_available_now_reads_a_split_parent_then_its_children_and_stops(
    spark: Any, kinesis_local: Any, kinesis_local_endpoint: str, stream_name: str, tmp_path: Path
) -> None:
    # kinesis-mock: AWS-like resharding and arrival timestamps (moto is wrong after a split).
    client = kinesis_local
    (parent,) = create_stream(client, stream_name, 1)
    before_split = put(client, stream_name, ((f"k{i}", f"parent-{i}".encode()) for i in range(6)))
    client.split_shard(StreamName=stream_name, ShardToSplit=parent, NewStartingHashKey=str(2**127))

    def active() -> bool:
        desc = client.describe_stream_summary(StreamName=stream_name)
        return bool(desc["StreamDescriptionSummary"]["StreamStatus"] == "ACTIVE")

    wait_for(active, what="the split to finish")
    after_split = put(client, stream_name, ((f"k{i}", f"child-{i}".encode()) for i in range(6)))
    assert parent not in {p["shardId"] for p in after_split}
    later: list[dict[str, Any]] = []
    sink = BatchCollector()

    def sink_putting_while_running(df: Any, batch_id: int) -> None:
        if not later:
            later.extend(put(client, stream_name, [("k0", b"too-late"), ("k1", b"too-late")]))
        sink(df, batch_id)

    options = source_options(
        kinesis_local_endpoint, stream_name, str(tmp_path / "store"), maxRecordsPerTrigger="4"
    )
    query = start_query(
        spark, options, str(tmp_path / "ckpt"), sink_putting_while_running, trigger="availableNow"
    )
    assert query.awaitTermination(120), "AvailableNow did not stop across the split"
    assert query.exception() is None
    assert record_keys(sink.rows()) == expected_keys(before_split + after_split)
    batch_of = {bytes(r["data"]): b for b, rows in sink.batches.items() for r in rows}
    assert max(batch_of[p["data"]] for p in before_split) < min(
        batch_of[p["data"]] for p in after_split
    )


def test_an_idle_stream_runs_no_batch_for_ten_triggers_and_shows_its_lag(
    spark: Any, kinesis: Any, moto_endpoint: str, stream_name: str, tmp_path: Path
) -> None:
    create_stream(kinesis, stream_name, 2)
    puts = put_evenly(kinesis, stream_name, 4, "r")
    sink = BatchCollector()
    options = source_options(moto_endpoint, stream_name, str(tmp_path / "store"))
    # Report progress for triggers that ran no batch too, so that they can be counted.
    spark.conf.set("spark.sql.streaming.noDataProgressEventInterval", "0")
    query = start_query(spark, options, str(tmp_path / "ckpt"), sink, trigger="100 milliseconds")
    try:
        wait_for(
            lambda: sum(p["numInputRows"] for p in query.recentProgress) == len(puts),
            what="the records to be read and reported",
        )
        batches = len(sink.batches)
        seen = len(query.recentProgress)
        wait_for(lambda: len(query.recentProgress) >= seen + 10, what="ten more triggers")
        progress = query.recentProgress
        assert len(sink.batches) == batches
        assert all(p["numInputRows"] == 0 for p in progress[seen:])
        # Lag per shard of the last batch that read, in the progress of later triggers.
        lag = json.loads(progress[-1]["sources"][0]["latestOffset"])
    finally:
        query.stop()
        spark.conf.unset("spark.sql.streaming.noDataProgressEventInterval")
    assert lag["recordsRead"] == len(puts)
    assert lag["streams"][stream_name]["recordsRead"] == len(puts)
    shards = lag["streams"][stream_name]["shards"]
    assert sorted(shards) == sorted({p["shardId"] for p in puts})
    for shard in shards.values():
        assert shard["recordsRead"] == 4
        assert shard["millisBehindLatest"] == 0


def test_three_shards_per_task_read_the_same_rows_as_one(
    spark: Any,
    kinesis_server_client: Any,
    kinesis_server: KinesisServer,
    stream_name: str,
    tmp_path: Path,
) -> None:
    # On the Kinesis test server: three shards' reads in one task share no quota, each is
    # throttled on its own (test_efo_read.py runs shardsPerTask on kinesis-local).
    kinesis = kinesis_server_client
    create_stream(kinesis, stream_name, 4)
    for i in range(80):
        kinesis.put_record(StreamName=stream_name, PartitionKey=f"key-{i}", Data=f"r{i}".encode())
    rows = {}
    for per_task in ("1", "3"):
        sink = BatchCollector()
        options = source_options(
            kinesis_server.endpoint,
            stream_name,
            str(tmp_path / f"store-{per_task}"),
            shardsPerTask=per_task,
            maxRecordsPerShard="7",
        )
        run_until_idle(start_query(spark, options, str(tmp_path / f"ckpt-{per_task}"), sink))
        rows[per_task] = record_keys(sink.rows())
    assert len(rows["1"]) == 80
    assert rows["3"] == rows["1"]
