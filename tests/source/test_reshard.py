"""Resharding end to end on kinesis-mock: parents before children, per-key order kept.

kinesis-mock (npm kinesis-local) reshards like AWS: a split or merge closes its parents,
whose reads end with a null NextShardIterator, and ListShards shows the children with
ParentShardId / AdjacentParentShardId. Its reshard durations are 10 ms here (conftest.py).
The reshards while a query runs are on the Kinesis test server instead
(tests/emulators/kinesis_server.py), which also throttles and ends closed shards in a
later call.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from tests.emulators.kinesis_server import KinesisServer
from tests.helpers import (
    BatchCollector,
    create_stream,
    put,
    run_until_idle,
    source_options,
    start_query,
    wait_active,
    wait_for,
)

KEYS = [f"key-{i:02d}" for i in range(12)]


class Producer:
    """Writes ``key#counter`` records; each key's counter goes up by one per record."""

    def __init__(self, client: Any, stream: str) -> None:
        self.client = client
        self.stream = stream
        self.counters = dict.fromkeys(KEYS, 0)
        self.written: list[tuple[str, int]] = []

    def produce(self, per_key: int, tag: str = "") -> None:
        items = []
        for _ in range(per_key):
            for key in KEYS:
                self.counters[key] += 1
                self.written.append((key, self.counters[key]))
                items.append((key, f"{key}#{self.counters[key]}#{tag}".encode()))
        put(self.client, self.stream, items)


def open_shards(client: Any, stream: str) -> list[dict[str, Any]]:
    """The stream's open shards, in hash-key order."""
    shards = client.list_shards(StreamName=stream)["Shards"]
    live = [s for s in shards if "EndingSequenceNumber" not in s["SequenceNumberRange"]]
    return sorted(live, key=lambda s: int(s["HashKeyRange"]["StartingHashKey"]))


def split_in_half(client: Any, stream: str, shard: Mapping[str, Any]) -> None:
    low = int(shard["HashKeyRange"]["StartingHashKey"])
    high = int(shard["HashKeyRange"]["EndingHashKey"])
    client.split_shard(
        StreamName=stream, ShardToSplit=shard["ShardId"], NewStartingHashKey=str((low + high) // 2)
    )
    wait_active(client, stream)


def merge_first_adjacent_pair(client: Any, stream: str) -> None:
    first, second = open_shards(client, stream)[:2]
    assert int(first["HashKeyRange"]["EndingHashKey"]) + 1 == int(
        second["HashKeyRange"]["StartingHashKey"]
    )
    client.merge_shards(
        StreamName=stream, ShardToMerge=first["ShardId"], AdjacentShardToMerge=second["ShardId"]
    )
    wait_active(client, stream)


def split_and_merged_stream(client: Any, stream: str, per_key: int, tag: str = "") -> Producer:
    """Two shards; records; split the first; records; merge its children; records."""
    create_stream(client, stream, 2)
    producer = Producer(client, stream)
    producer.produce(per_key, tag)
    split_in_half(client, stream, open_shards(client, stream)[0])
    producer.produce(per_key, tag)
    merge_first_adjacent_pair(client, stream)
    producer.produce(per_key, tag)  # into the merged shard and the untouched root
    return producer


def parse(row: Mapping[str, Any]) -> tuple[str, int]:
    key, counter, _ = bytes(row["data"]).decode().split("#")
    assert key == row["partitionKey"]
    return key, int(counter)


def rows_in_read_order(batches: Mapping[int, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Rows by (batch, sequence number): a key lives on one shard of any one batch."""
    return [
        row
        for batch in sorted(batches)
        for row in sorted(batches[batch], key=lambda r: int(r["sequenceNumber"]))
    ]


def assert_every_record_once_and_counters_increase(
    batches: Mapping[int, list[dict[str, Any]]], written: Iterable[tuple[str, int]]
) -> None:
    seen = [parse(row) for row in rows_in_read_order(batches)]
    assert sorted(seen) == sorted(written), "records lost or duplicated"
    last: dict[str, int] = {}
    for key, counter in seen:
        assert counter > last.get(key, 0), f"{key}: counter {counter} after {last.get(key)}"
        last[key] = counter


def assert_parents_read_before_children(
    batches: Mapping[int, list[dict[str, Any]]], listing: Iterable[Mapping[str, Any]]
) -> None:
    """Every batch with rows of a shard comes after every batch with rows of its ancestors."""
    parents = {
        s["ShardId"]: [s[k] for k in ("ParentShardId", "AdjacentParentShardId") if s.get(k)]
        for s in listing
    }
    spans: dict[str, tuple[int, int]] = {}
    for batch, rows in batches.items():
        for sid in {r["shardId"] for r in rows}:
            low, high = spans.get(sid, (batch, batch))
            spans[sid] = (min(low, batch), max(high, batch))

    def ancestors(sid: str) -> set[str]:
        found: set[str] = set()
        stack = list(parents.get(sid, []))
        while stack:
            parent = stack.pop()
            if parent not in found:
                found.add(parent)
                stack.extend(parents.get(parent, []))
        return found

    for sid, (first, _) in spans.items():
        for ancestor in ancestors(sid) & spans.keys():
            assert spans[ancestor][1] < first, f"{sid} read in batch {first} with {ancestor}"


def collected(sink: BatchCollector) -> int:
    return sum(len(rows) for rows in list(sink.batches.values()))


def test_split_merge_and_update_shard_count_while_running_keep_per_key_order(
    spark: Any,
    kinesis_server_client: Any,
    kinesis_server: KinesisServer,
    stream_name: str,
    tmp_path: Path,
) -> None:
    # On the Kinesis test server: closed parents end in a later empty call, reads are
    # throttled (test_multi_stream.py splits a stream while running on kinesis-local).
    client = kinesis_server_client
    create_stream(client, stream_name, 2)
    producer = Producer(client, stream_name)
    sink = BatchCollector()
    # At most 6 records per shard per batch: each reshard leaves its parents a backlog that
    # takes a few batches, while the children already receive records.
    options = source_options(
        kinesis_server.endpoint,
        stream_name,
        str(tmp_path / "store"),
        shardDiscoveryIntervalMs="200",
        maxRecordsPerShard="6",
    )
    query = start_query(spark, options, str(tmp_path / "ckpt"), sink, trigger="100 milliseconds")
    try:
        producer.produce(3)
        split_in_half(client, stream_name, open_shards(client, stream_name)[0])
        producer.produce(3)
        merge_first_adjacent_pair(client, stream_name)  # the split's two children
        producer.produce(3)
        client.update_shard_count(
            StreamName=stream_name, TargetShardCount=4, ScalingType="UNIFORM_SCALING"
        )
        wait_active(client, stream_name)
        producer.produce(3)
        wait_for(lambda: collected(sink) >= len(producer.written), 240, "every record")
        query.processAllAvailable()
    finally:
        query.stop()
    listing = client.list_shards(StreamName=stream_name)["Shards"]
    assert len(listing) > 6, "the stream was not resharded three times"
    assert_every_record_once_and_counters_increase(sink.batches, producer.written)
    assert_parents_read_before_children(sink.batches, listing)


def test_fresh_trim_horizon_query_reads_retained_parents_before_their_children(
    spark: Any,
    kinesis_local: Any,
    kinesis_local_endpoint: str,
    stream_name: str,
    tmp_path: Path,
) -> None:
    client = kinesis_local
    producer = split_and_merged_stream(client, stream_name, per_key=2)
    sink = BatchCollector()
    options = source_options(kinesis_local_endpoint, stream_name, str(tmp_path / "store"))
    run_until_idle(start_query(spark, options, str(tmp_path / "ckpt"), sink))
    listing = client.list_shards(StreamName=stream_name)["Shards"]
    assert_every_record_once_and_counters_increase(sink.batches, producer.written)
    assert_parents_read_before_children(sink.batches, listing)
    shards_read = {r["shardId"] for rows in sink.batches.values() for r in rows}
    assert len(shards_read) == 5  # two roots, two split children, the merged shard


@pytest.mark.parametrize("initial_position", ["latest", "at_timestamp"])
def test_timestamp_start_on_a_resharded_stream_skips_closed_parents_and_older_records(
    spark: Any,
    kinesis_local: Any,
    kinesis_local_endpoint: str,
    stream_name: str,
    tmp_path: Path,
    initial_position: str,
) -> None:
    client = kinesis_local
    producer = split_and_merged_stream(client, stream_name, per_key=1, tag="before")
    time.sleep(0.05)  # arrival timestamps have millisecond resolution: separate the sets
    extra = {}
    if initial_position == "at_timestamp":
        extra["initialTimestamp"] = datetime.now(timezone.utc).isoformat()
        time.sleep(0.05)
        producer.produce(1, "after")
    sink = BatchCollector()
    options = source_options(
        kinesis_local_endpoint,
        stream_name,
        str(tmp_path / "store"),
        initialPosition=initial_position,
        shardDiscoveryIntervalMs="200",
        **extra,
    )
    query = start_query(spark, options, str(tmp_path / "ckpt"), sink, trigger="100 milliseconds")
    try:
        # The closed parents end in one empty read each, then their children are tracked.
        query.processAllAvailable()
        producer.produce(1, "after")
        query.processAllAvailable()
    finally:
        query.stop()
    rows = rows_in_read_order(sink.batches)
    assert {bytes(r["data"]).decode().rsplit("#", 1)[1] for r in rows} == {"after"}
    after = [w for w in producer.written if w[1] > 3]
    assert sorted(parse(r) for r in rows) == sorted(after)
