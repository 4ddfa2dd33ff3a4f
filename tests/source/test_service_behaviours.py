"""Reads that always move forward on a Kinesis that behaves like AWS (issue 22 item 5).

The Kinesis test server (tests/emulators/kinesis_server.py) serves what moto and
kinesis-local do not: empty stretches walked a slice per call with MillisBehindLatest > 0,
a closed shard's end in a later empty call, throttling at 5 GetRecords calls/s per shard.
Each test here failed on the reader before issue 22 (see the docstrings).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.emulators.kinesis_server import KinesisServer
from tests.helpers import (
    REGION,
    BatchCollector,
    assert_shard_order,
    source_options,
    start_query,
)
from tests.source.test_reshard import (
    assert_every_record_once_and_counters_increase,
    assert_parents_read_before_children,
)

Start = Callable[..., KinesisServer]
# Sixteen keys, each with an explicit hash key in the middle of its sixteenth of the key
# space: a 2-shard stream puts keys 0-7 on shard 0 and 8-15 on shard 1; splitting shard 0
# at its middle gives keys 0-3 and 4-7 a child each.
KEYS = {f"key-{i:02d}": str(i * 2**128 // 16 + 2**123) for i in range(16)}


def client_of(server: KinesisServer) -> Any:
    return boto3.client("kinesis", region_name=REGION, endpoint_url=server.endpoint)


class Producer:
    """Writes ``key#counter#tag`` records with PutRecords, each key to its own hash key."""

    def __init__(self, client: Any, stream: str) -> None:
        self.client = client
        self.stream = stream
        self.counters = dict.fromkeys(KEYS, 0)
        self.written: list[tuple[str, int]] = []

    def produce(self, per_key: int, tag: str = "") -> None:
        entries = []
        for _ in range(per_key):
            for key, hash_key in KEYS.items():
                self.counters[key] += 1
                self.written.append((key, self.counters[key]))
                data = f"{key}#{self.counters[key]}#{tag}".encode()
                entries.append({"Data": data, "PartitionKey": key, "ExplicitHashKey": hash_key})
        for i in range(0, len(entries), 500):
            resp = self.client.put_records(StreamName=self.stream, Records=entries[i : i + 500])
            assert resp["FailedRecordCount"] == 0


def split_then_merged(client: Any, stream: str, per_key: int) -> Producer:
    """Two shards; records; shard 0 split at its middle; records; its two children merged;
    records (the shape of the issue's repro, smaller)."""
    client.create_stream(StreamName=stream, ShardCount=2)
    producer = Producer(client, stream)
    producer.produce(per_key, "roots")
    client.split_shard(
        StreamName=stream, ShardToSplit="shardId-000000000000", NewStartingHashKey=str(2**126)
    )
    producer.produce(per_key, "split")
    client.merge_shards(
        StreamName=stream,
        ShardToMerge="shardId-000000000002",
        AdjacentShardToMerge="shardId-000000000003",
    )
    producer.produce(per_key, "merged")
    return producer


def options_for(server: KinesisServer, stream: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    # fetchIntervalMs at its default: the server throttles a sixth call in a second.
    return source_options(
        server.endpoint, stream, str(tmp_path / "store"), fetchIntervalMs="200", **extra
    )


def shards_read(sink: BatchCollector) -> set[str]:
    return {r["shardId"] for rows in sink.batches.values() for r in rows}


@pytest.mark.parametrize("run", range(10))
def test_available_now_reads_a_split_then_merged_stream_whole_in_one_run(
    spark: Any, kinesis_server: KinesisServer, stream_name: str, tmp_path: Path, run: int
) -> None:
    """Item 2: every record that arrived before the run, all five shards, in one run.
    Before issue 22 the merged grandchild's records were left for the next run."""
    client = client_of(kinesis_server)
    producer = split_then_merged(client, stream_name, per_key=2)
    sink = BatchCollector()
    options = options_for(kinesis_server, stream_name, tmp_path)
    query = start_query(spark, options, str(tmp_path / "ckpt"), sink, trigger="availableNow")
    assert query.awaitTermination(120), "AvailableNow did not stop"
    assert query.exception() is None
    assert_every_record_once_and_counters_increase(sink.batches, producer.written)
    assert_parents_read_before_children(
        sink.batches, client.list_shards(StreamName=stream_name)["Shards"]
    )
    assert len(shards_read(sink)) == 5


@pytest.mark.parametrize("run", range(10))
def test_process_all_available_returns_only_once_a_split_then_merged_stream_is_read(
    spark: Any, kinesis_server: KinesisServer, stream_name: str, tmp_path: Path, run: int
) -> None:
    """Item 2 for processingTime triggers: processAllAvailable() returns when latestOffset
    reports no new data, which must not happen while a readable shard may hold records."""
    client = client_of(kinesis_server)
    producer = split_then_merged(client, stream_name, per_key=2)
    sink = BatchCollector()
    options = options_for(kinesis_server, stream_name, tmp_path)
    query = start_query(spark, options, str(tmp_path / "ckpt"), sink, trigger="100 milliseconds")
    try:
        query.processAllAvailable()
        rows_then = {b: list(rows) for b, rows in sink.batches.items()}
    finally:
        query.stop()
    assert_every_record_once_and_counters_increase(rows_then, producer.written)
    assert_parents_read_before_children(
        rows_then, client.list_shards(StreamName=stream_name)["Shards"]
    )


@pytest.mark.parametrize("end_shape", ["separate", "with_records"])
def test_both_end_shapes_of_a_closed_shard_lead_to_its_children_in_the_next_batch(
    spark: Any, kinesis_server: KinesisServer, stream_name: str, tmp_path: Path, end_shape: str
) -> None:
    """Item 3: the split parent's last records come with a NextShardIterator and its end in
    a later empty call ("separate"), or with its last records ("with_records"). Either way
    the read reaches SHARD_END in the batch that takes its last records, and the children
    are read in the very next batch: no empty batch, no later probe. Before issue 22 the
    "separate" shape cost a batch that read nothing."""
    client = client_of(kinesis_server)
    client.create_stream(StreamName=stream_name, ShardCount=1)
    kinesis_server.configure_stream(stream_name, end_shape=end_shape)
    producer = Producer(client, stream_name)
    producer.produce(2, "parent")
    client.split_shard(
        StreamName=stream_name, ShardToSplit="shardId-000000000000", NewStartingHashKey=str(2**127)
    )
    producer.produce(2, "children")
    sink = BatchCollector()
    options = options_for(kinesis_server, stream_name, tmp_path)
    query = start_query(spark, options, str(tmp_path / "ckpt"), sink, trigger="availableNow")
    assert query.awaitTermination(120), "AvailableNow did not stop"
    assert query.exception() is None
    assert_every_record_once_and_counters_increase(sink.batches, producer.written)
    parent_batches = {
        b for b, rows in sink.batches.items() for r in rows if r["shardId"].endswith("0")
    }
    child_batches = {
        b for b, rows in sink.batches.items() for r in rows if not r["shardId"].endswith("0")
    }
    assert child_batches and min(child_batches) == max(parent_batches) + 1, sorted(
        (b, len(rows)) for b, rows in sink.batches.items()
    )


def test_available_now_crosses_an_hour_of_empty_history_and_stops(
    spark: Any, kinesis_server_with: Start, stream_name: str, tmp_path: Path
) -> None:
    """Item 1: TRIM_HORIZON walks an hour of empty storage, a minute a call (60 calls, at 5
    calls/s 12 s per shard), before the records; a batch reads for 2 s at most. Every batch
    must go on where the last one stopped. Before issue 22 each batch started from
    TRIM_HORIZON again: 0 records, and the run never stopped."""
    server = kinesis_server_with(empty_history_s=3600, walk_slice_s=60)
    client = client_of(server)
    client.create_stream(StreamName=stream_name, ShardCount=2)
    producer = Producer(client, stream_name)
    producer.produce(10, "late")
    sink = BatchCollector()
    options = options_for(server, stream_name, tmp_path, maxFetchTimeMs="2000")
    query = start_query(spark, options, str(tmp_path / "ckpt"), sink, trigger="availableNow")
    stopped = query.awaitTermination(90)
    if not stopped:
        query.stop()
    assert stopped, f"AvailableNow did not stop; {len(sink.rows())} rows read"
    assert query.exception() is None
    assert_every_record_once_and_counters_increase(sink.batches, producer.written)
    assert_shard_order(sink.rows())


def test_process_all_available_waits_for_shards_read_just_before_to_be_probed_again(
    spark: Any, kinesis_server: KinesisServer, stream_name: str, tmp_path: Path
) -> None:
    """Item 2: a trigger that comes within fetchIntervalMs of a shard's last call may not
    probe it yet; it must not say "no new data" on that account. Records put between
    two processAllAvailable() calls are all read by the second. Before issue 22 a round
    returned with none of its records when the trigger followed the last read closely."""
    client = client_of(kinesis_server)
    client.create_stream(StreamName=stream_name, ShardCount=2)
    producer = Producer(client, stream_name)
    sink = BatchCollector()
    options = options_for(kinesis_server, stream_name, tmp_path)
    query = start_query(spark, options, str(tmp_path / "ckpt"), sink, trigger="50 milliseconds")
    try:
        for round_ in range(4):
            producer.produce(1, f"round{round_}")
            query.processAllAvailable()
            seen = {b: list(rows) for b, rows in sink.batches.items()}
            assert_every_record_once_and_counters_increase(seen, producer.written)
    finally:
        query.stop()
