"""Shard discovery on the driver, without Spark: the stream reader driven by hand against
kinesis-mock, its ListShards calls counted."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql.streaming.datasource import ReadAllAvailable

from kinesis_source.aws.clients import kinesis_client
from kinesis_source.aws.retry import policy_of
from kinesis_source.source.driver.discovery import list_shards
from kinesis_source.source.options import KinesisOptions, parse_options
from kinesis_source.source.stream_reader import KinesisStreamReader
from kinesis_source.streams import StreamRef
from tests.helpers import REGION, create_stream, put, source_options, wait_active


class CallCounter:
    """Counts one Kinesis operation on the process's cached client for ``opts``."""

    def __init__(self, opts: KinesisOptions, operation: str) -> None:
        self.events = kinesis_client(opts).meta.events
        self.event = f"before-call.kinesis.{operation}"
        self.calls = 0
        self.events.register(self.event, self._count)

    def _count(self, **_: Any) -> None:
        self.calls += 1

    def close(self) -> None:
        self.events.unregister(self.event, self._count)


@pytest.fixture
def counted() -> Iterator[list[CallCounter]]:
    counters: list[CallCounter] = []
    yield counters
    for counter in counters:
        counter.close()


def trigger(reader: KinesisStreamReader, start: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """One trigger as Spark runs it: plan, and if there is a batch, read all its partitions."""
    end = reader.latestOffset(start, ReadAllAvailable())
    if end == start:
        return start, 0
    rows = 0
    for partition in reader.partitions(start, end):
        rows += sum(batch.num_rows for batch in reader.read(partition))
    reader.commit(end)
    return end, rows


def triggers_counting_listings(
    endpoint: str, stream: str, store: str, counted: list[CallCounter], n: int, **extra: str
) -> tuple[dict[str, Any], int, CallCounter]:
    """A fresh query's first ``n`` triggers: (offset after them, rows read, ListShards calls)."""
    opts = parse_options(
        source_options(endpoint, stream, store, shardDiscoveryIntervalMs="600000", **extra)
    )
    reader = KinesisStreamReader(opts)
    offset = reader.initialOffset()
    list_calls = CallCounter(opts, "ListShards")
    counted.append(list_calls)
    read = 0
    for _ in range(n):
        offset, rows = trigger(reader, offset)
        read += rows
    return offset, read, list_calls


def split_first_shard(client: Any, stream: str) -> None:
    shard = client.list_shards(StreamName=stream)["Shards"][0]
    low = int(shard["HashKeyRange"]["StartingHashKey"])
    high = int(shard["HashKeyRange"]["EndingHashKey"])
    client.split_shard(
        StreamName=stream, ShardToSplit=shard["ShardId"], NewStartingHashKey=str((low + high) // 2)
    )
    wait_active(client, stream)


def test_an_idle_stream_after_a_split_is_listed_once_not_on_every_trigger(
    kinesis_local: Any,
    kinesis_local_endpoint: str,
    stream_name: str,
    tmp_path: Path,
    counted: list[CallCounter],
) -> None:
    create_stream(kinesis_local, stream_name, 1)
    put(kinesis_local, stream_name, [(f"k{i}", b"x") for i in range(3)])
    split_first_shard(kinesis_local, stream_name)  # the children stay empty
    offset, read, list_calls = triggers_counting_listings(
        kinesis_local_endpoint, stream_name, str(tmp_path / "store"), counted, 8
    )
    assert read == 3
    assert sorted(offset["streams"][stream_name]["shards"]) == [
        "shardId-000000000001",
        "shardId-000000000002",
    ]
    # Once, when the parent was read to its end; not again on each idle trigger after it.
    assert list_calls.calls == 1


def test_list_shards_follows_next_token(
    kinesis_local: Any,
    kinesis_local_endpoint: str,
    stream_name: str,
    tmp_path: Path,
    counted: list[CallCounter],
) -> None:
    create_stream(kinesis_local, stream_name, 3)
    split_first_shard(kinesis_local, stream_name)
    opts = parse_options(source_options(kinesis_local_endpoint, stream_name, str(tmp_path)))
    client = kinesis_client(opts)
    list_calls = CallCounter(opts, "ListShards")
    counted.append(list_calls)

    def two_per_page(params: dict[str, Any], **_: Any) -> None:
        params["MaxResults"] = 2

    client.meta.events.register("provide-client-params.kinesis.ListShards", two_per_page)
    try:
        shards = list_shards(client, StreamRef(stream_name), REGION, policy_of(opts))
    finally:
        client.meta.events.unregister("provide-client-params.kinesis.ListShards", two_per_page)
    assert sorted(s.shard_id for s in shards) == [f"shardId-00000000000{i}" for i in range(5)]
    assert list_calls.calls == 3
    children = [s for s in shards if s.parents]
    assert [s.parents for s in children] == [("shardId-000000000000",)] * 2


def test_a_merge_parent_waiting_for_its_co_parent_does_not_list_on_every_trigger(
    kinesis_local: Any,
    kinesis_local_endpoint: str,
    stream_name: str,
    tmp_path: Path,
    counted: list[CallCounter],
) -> None:
    low_shard, high_shard = create_stream(kinesis_local, stream_name, 2)
    # One record in the low shard, six in the high one: read one per batch, the high shard
    # takes six batches while the low one waits, finished, for the merged child.
    for i, hash_key in enumerate(["0"] + [str(2**128 - 1)] * 6):
        kinesis_local.put_record(
            StreamName=stream_name, PartitionKey=f"k{i}", ExplicitHashKey=hash_key, Data=b"x"
        )
    kinesis_local.merge_shards(
        StreamName=stream_name, ShardToMerge=low_shard, AdjacentShardToMerge=high_shard
    )
    wait_active(kinesis_local, stream_name)
    offset, read, list_calls = triggers_counting_listings(
        kinesis_local_endpoint,
        stream_name,
        str(tmp_path / "store"),
        counted,
        12,
        maxRecordsPerShard="1",
    )
    assert read == 7
    assert sorted(offset["streams"][stream_name]["shards"]) == ["shardId-000000000002"]
    assert list_calls.calls == 2  # when each parent was read to its end
