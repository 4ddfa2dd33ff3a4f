"""The Kinesis test server keeps each AWS rule it claims, seen through boto3.

Clients make one attempt per call (botocore's standard mode with ``total_max_attempts=1``)
so that a throttle reaches the test. Time moves only through the server's clock
(``freeze_clock``, ``advance_clock``); nothing sleeps.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.emulators.kinesis_server import KinesisServer
from tests.helpers import create_stream, put, read_stream, shard_of, wait_for

REGION = "us-east-1"
Start = Callable[..., KinesisServer]
KIB = 1024


def client(server: KinesisServer) -> Any:
    return boto3.client(
        "kinesis",
        region_name=REGION,
        endpoint_url=server.endpoint,
        config=Config(retries={"mode": "standard", "total_max_attempts": 1}),
    )


def error_code(call: Callable[[], Any]) -> tuple[str, int]:
    with pytest.raises(ClientError) as caught:
        call()
    error = caught.value.response
    return error["Error"]["Code"], error["ResponseMetadata"]["HTTPStatusCode"]


def trim_horizon(kinesis: Any, stream: str, shard: str = "shardId-000000000000") -> str:
    return str(
        kinesis.get_shard_iterator(
            StreamName=stream, ShardId=shard, ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
    )


def one_stream(server: KinesisServer, shards: int = 1, name: str = "s") -> Any:
    kinesis = client(server)
    kinesis.create_stream(StreamName=name, ShardCount=shards)
    return kinesis


# -- throttling ([Q], [GR], [GSI], [PR])


def test_a_sixth_get_records_in_one_second_is_throttled(kinesis_server_with: Start) -> None:
    server = kinesis_server_with()
    server.freeze_clock()
    kinesis = one_stream(server)
    iterator = trim_horizon(kinesis, "s")
    for _ in range(5):
        iterator = kinesis.get_records(ShardIterator=iterator)["NextShardIterator"]
    assert error_code(lambda: kinesis.get_records(ShardIterator=iterator)) == (
        "ProvisionedThroughputExceededException",
        400,
    )
    server.advance_clock(1)
    assert kinesis.get_records(ShardIterator=iterator)["Records"] == []
    stats = server.stats()
    assert stats["throttled"] == {"GetRecords": 1}
    assert stats["get_records_max_1s_by_shard"] == {"s/shardId-000000000000": 5}


def test_reads_beyond_2_mib_a_second_are_throttled(kinesis_server_with: Start) -> None:
    server = kinesis_server_with()
    server.freeze_clock()
    kinesis = one_stream(server)
    for _ in range(3):  # 2,700 KiB in all, 900 KiB a second: within the write quota
        kinesis.put_record(StreamName="s", PartitionKey="k", Data=bytes(900 * KIB - 1))
        server.advance_clock(1)
    page = kinesis.get_records(ShardIterator=trim_horizon(kinesis, "s"))
    assert len(page["Records"]) == 3
    # 2,700 KiB at 2 MiB/s keep the shard's reads out for 1.32 s.
    server.advance_clock(1.25)
    throttled = error_code(lambda: kinesis.get_records(ShardIterator=page["NextShardIterator"]))
    assert throttled == ("ProvisionedThroughputExceededException", 400)
    server.advance_clock(0.1)
    assert kinesis.get_records(ShardIterator=page["NextShardIterator"])["Records"] == []


def test_get_shard_iterator_beyond_five_a_second_is_throttled(kinesis_server_with: Start) -> None:
    server = kinesis_server_with()
    server.freeze_clock()
    kinesis = one_stream(server)
    for _ in range(5):
        trim_horizon(kinesis, "s")
    code = error_code(lambda: trim_horizon(kinesis, "s"))
    assert code == ("ProvisionedThroughputExceededException", 400)
    server.advance_clock(1)
    trim_horizon(kinesis, "s")


def test_writes_beyond_1000_records_a_second_fail_record_by_record(
    kinesis_server_with: Start,
) -> None:
    server = kinesis_server_with()
    server.freeze_clock()
    kinesis = one_stream(server)
    batch = [{"PartitionKey": f"k{i}", "Data": b"x"} for i in range(500)]
    for _ in range(2):
        assert kinesis.put_records(StreamName="s", Records=batch)["FailedRecordCount"] == 0
    over = kinesis.put_records(StreamName="s", Records=batch[:10])
    assert over["FailedRecordCount"] == 10
    assert {r["ErrorCode"] for r in over["Records"]} == {"ProvisionedThroughputExceededException"}
    single = error_code(lambda: kinesis.put_record(StreamName="s", PartitionKey="k", Data=b"x"))
    assert single == ("ProvisionedThroughputExceededException", 400)
    server.advance_clock(1)
    assert kinesis.put_records(StreamName="s", Records=batch[:10])["FailedRecordCount"] == 0


def test_writes_beyond_1_mib_a_second_are_throttled(kinesis_server_with: Start) -> None:
    server = kinesis_server_with()
    server.freeze_clock()
    kinesis = one_stream(server)
    kinesis.put_record(StreamName="s", PartitionKey="k", Data=bytes(600 * KIB))
    code = error_code(
        lambda: kinesis.put_record(StreamName="s", PartitionKey="k", Data=bytes(600 * KIB))
    )
    assert code == ("ProvisionedThroughputExceededException", 400)
    server.advance_clock(1)
    kinesis.put_record(StreamName="s", PartitionKey="k", Data=bytes(600 * KIB))


# -- pages ([GR])


def test_a_page_holds_at_most_10000_records(kinesis_server_with: Start) -> None:
    server = kinesis_server_with(write_records_per_s=None)
    kinesis = one_stream(server)
    for first in range(0, 10_001, 500):
        records = [{"PartitionKey": str(i), "Data": b"r"} for i in range(first, first + 500)]
        kinesis.put_records(StreamName="s", Records=records[: 10_001 - first])
    page = kinesis.get_records(ShardIterator=trim_horizon(kinesis, "s"))
    assert len(page["Records"]) == 10_000
    rest = kinesis.get_records(ShardIterator=page["NextShardIterator"])
    assert len(rest["Records"]) == 1


def test_a_page_holds_at_most_10_mib(kinesis_server_with: Start) -> None:
    server = kinesis_server_with(write_bytes_per_s=None)
    server.freeze_clock()
    kinesis = one_stream(server)
    for _ in range(11):  # 11 x 1,000,001 bytes: 10.5 MiB
        kinesis.put_record(StreamName="s", PartitionKey="k", Data=bytes(1_000_000))
    page = kinesis.get_records(ShardIterator=trim_horizon(kinesis, "s"))
    assert len(page["Records"]) == 10
    # [GR]: a call that returned 10 MiB keeps the shard's reads out for the next 5 seconds.
    code = error_code(lambda: kinesis.get_records(ShardIterator=page["NextShardIterator"]))
    assert code == ("ProvisionedThroughputExceededException", 400)
    server.advance_clock(5)
    assert len(kinesis.get_records(ShardIterator=page["NextShardIterator"])["Records"]) == 1


# -- iterators ([GSI])


def test_iterators_expire(kinesis_server_with: Start) -> None:
    server = kinesis_server_with(iterator_ttl_s=5)
    server.freeze_clock()
    kinesis = one_stream(server)
    iterator = trim_horizon(kinesis, "s")
    following = kinesis.get_records(ShardIterator=iterator)["NextShardIterator"]
    server.advance_clock(5)
    kinesis.get_records(ShardIterator=following)  # 5 s old: still valid
    server.advance_clock(1)
    assert error_code(lambda: kinesis.get_records(ShardIterator=following)) == (
        "ExpiredIteratorException",
        400,
    )
    assert kinesis.get_records(ShardIterator=trim_horizon(kinesis, "s"))["Records"] == []


def test_sequence_numbers_have_56_digits_and_belong_to_their_shard(
    kinesis_server: KinesisServer, stream_name: str
) -> None:
    kinesis = client(kinesis_server)
    create_stream(kinesis, stream_name, 2)
    puts = put(kinesis, stream_name, [(f"key-{i}", b"%d" % i) for i in range(20)])
    assert {len(p["sequenceNumber"]) for p in puts} == {56}
    by_shard: dict[str, list[int]] = {}
    for p in puts:
        by_shard.setdefault(p["shardId"], []).append(int(p["sequenceNumber"]))
    assert len(by_shard) == 2 and all(s == sorted(s) for s in by_shard.values())
    first = next(p for p in puts if p["shardId"] == "shardId-000000000000")
    after = kinesis.get_shard_iterator(
        StreamName=stream_name,
        ShardId="shardId-000000000000",
        ShardIteratorType="AFTER_SEQUENCE_NUMBER",
        StartingSequenceNumber=first["sequenceNumber"],
    )["ShardIterator"]
    records = kinesis.get_records(ShardIterator=after)["Records"]
    assert [int(r["SequenceNumber"]) for r in records] == by_shard["shardId-000000000000"][1:]
    other = next(p for p in puts if p["shardId"] == "shardId-000000000001")
    code = error_code(
        lambda: kinesis.get_shard_iterator(
            StreamName=stream_name,
            ShardId="shardId-000000000000",
            ShardIteratorType="AT_SEQUENCE_NUMBER",
            StartingSequenceNumber=other["sequenceNumber"],
        )
    )
    assert code == ("InvalidArgumentException", 400)


# -- empty stretches and MillisBehindLatest ([GR])


def test_trim_horizon_walks_an_hour_of_empty_history_before_the_records(
    kinesis_server_with: Start,
) -> None:
    server = kinesis_server_with(empty_history_s=3600, walk_slice_s=60)
    server.freeze_clock()
    kinesis = one_stream(server)
    kinesis.put_records(
        StreamName="s", Records=[{"PartitionKey": "k", "Data": b"%d" % i} for i in range(3)]
    )
    iterator, empty = trim_horizon(kinesis, "s"), 0
    behind: list[int] = []
    data: list[bytes] = []
    while not data:
        server.advance_clock(0.2)  # a reader at the quota's 5 calls/s
        page = kinesis.get_records(ShardIterator=iterator)
        data = [r["Data"] for r in page["Records"]]
        empty += not data
        behind.append(page["MillisBehindLatest"])
        iterator = page["NextShardIterator"]
    assert data == [b"0", b"1", b"2"]
    assert empty == 59  # one minute a call; the 60th reaches the records
    assert all(b > 0 for b in behind[:-1]) and behind == sorted(behind, reverse=True)
    server.advance_clock(0.2)
    tip = kinesis.get_records(ShardIterator=iterator)
    assert tip["Records"] == [] and tip["MillisBehindLatest"] == 0 and tip["NextShardIterator"]


def test_an_old_at_timestamp_iterator_walks_to_the_next_record(kinesis_server_with: Start) -> None:
    server = kinesis_server_with(walk_slice_s=60)
    server.freeze_clock()
    kinesis = one_stream(server)
    kinesis.put_record(StreamName="s", PartitionKey="k", Data=b"old")
    start_ms = server.advance_clock(1)
    now_ms = server.advance_clock(10 * 60)
    kinesis.put_record(StreamName="s", PartitionKey="k", Data=b"new")
    iterator = kinesis.get_shard_iterator(
        StreamName="s",
        ShardId="shardId-000000000000",
        ShardIteratorType="AT_TIMESTAMP",
        Timestamp=start_ms / 1000,
    )["ShardIterator"]
    behinds = []
    for _ in range(9):
        page = kinesis.get_records(ShardIterator=iterator)
        assert page["Records"] == []
        behinds.append(page["MillisBehindLatest"])
        iterator = page["NextShardIterator"]
        server.advance_clock(0.2)
    assert behinds[0] == now_ms - start_ms - 60_000
    assert all(b > 0 for b in behinds)
    page = kinesis.get_records(ShardIterator=iterator)
    assert [r["Data"] for r in page["Records"]] == [b"new"]


def test_millis_behind_latest_is_the_age_of_the_next_unread_record(
    kinesis_server_with: Start,
) -> None:
    server = kinesis_server_with()
    server.freeze_clock()
    kinesis = one_stream(server)
    kinesis.put_record(StreamName="s", PartitionKey="k", Data=b"a")
    server.advance_clock(30)
    kinesis.put_record(StreamName="s", PartitionKey="k", Data=b"b")
    server.advance_clock(10)
    first = kinesis.get_records(ShardIterator=trim_horizon(kinesis, "s"), Limit=1)
    assert [r["Data"] for r in first["Records"]] == [b"a"]
    assert first["MillisBehindLatest"] == 10_000
    second = kinesis.get_records(ShardIterator=first["NextShardIterator"])
    assert [r["Data"] for r in second["Records"]] == [b"b"]
    assert second["MillisBehindLatest"] == 0


# -- closed shards and resharding ([RS], [GR])


def split_in_two(kinesis: Any, stream: str, shard: str = "shardId-000000000000") -> list[str]:
    described = kinesis.list_shards(StreamName=stream)["Shards"]
    hash_range = next(s for s in described if s["ShardId"] == shard)["HashKeyRange"]
    low, high = int(hash_range["StartingHashKey"]), int(hash_range["EndingHashKey"])
    kinesis.split_shard(
        StreamName=stream, ShardToSplit=shard, NewStartingHashKey=str((low + high + 1) // 2)
    )
    after = kinesis.list_shards(StreamName=stream)["Shards"]
    return [s["ShardId"] for s in after if s.get("ParentShardId") == shard]


def test_a_closed_shard_ends_with_its_last_records(
    kinesis_server: KinesisServer, stream_name: str
) -> None:
    kinesis = client(kinesis_server)
    create_stream(kinesis, stream_name, 1)
    kinesis_server.configure_stream(stream_name, end_shape="with_records")
    put(kinesis, stream_name, [("k", b"1"), ("k", b"2")])
    children = split_in_two(kinesis, stream_name)
    page = kinesis.get_records(ShardIterator=trim_horizon(kinesis, stream_name))
    assert [r["Data"] for r in page["Records"]] == [b"1", b"2"]
    assert "NextShardIterator" not in page
    assert [c["ShardId"] for c in page["ChildShards"]] == children
    assert all(c["ParentShards"] == ["shardId-000000000000"] for c in page["ChildShards"])


def test_a_closed_shard_ends_in_a_later_empty_call(
    kinesis_server: KinesisServer, stream_name: str
) -> None:
    kinesis = client(kinesis_server)
    create_stream(kinesis, stream_name, 1)
    kinesis_server.configure_stream(stream_name, end_shape="separate")
    put(kinesis, stream_name, [("k", b"1"), ("k", b"2")])
    children = split_in_two(kinesis, stream_name)
    page = kinesis.get_records(ShardIterator=trim_horizon(kinesis, stream_name))
    assert [r["Data"] for r in page["Records"]] == [b"1", b"2"]
    assert page["NextShardIterator"] and page["MillisBehindLatest"] == 0
    assert "ChildShards" not in page
    end = kinesis.get_records(ShardIterator=page["NextShardIterator"])
    assert end["Records"] == [] and "NextShardIterator" not in end
    assert [c["ShardId"] for c in end["ChildShards"]] == children


def test_split_and_merge_route_records_to_the_open_children(
    kinesis_server: KinesisServer, stream_name: str
) -> None:
    kinesis = client(kinesis_server)
    create_stream(kinesis, stream_name, 2)
    low, high = split_in_two(kinesis, stream_name)
    shards = {s["ShardId"]: s for s in kinesis.list_shards(StreamName=stream_name)["Shards"]}
    parent = shards["shardId-000000000000"]
    assert "EndingSequenceNumber" in parent["SequenceNumberRange"]
    assert shards[low]["HashKeyRange"]["StartingHashKey"] == "0"
    middle = int(shards[high]["HashKeyRange"]["StartingHashKey"])
    explicit = kinesis.put_record(
        StreamName=stream_name, PartitionKey="k", Data=b"x", ExplicitHashKey=str(middle)
    )
    assert explicit["ShardId"] == high
    for i in range(20):
        key = f"key-{i}"
        shard = kinesis.put_record(StreamName=stream_name, PartitionKey=key, Data=b"x")["ShardId"]
        assert shard == shard_of(
            kinesis, stream_name, int(hashlib.md5(key.encode()).hexdigest(), 16)
        )
    code = error_code(
        lambda: kinesis.merge_shards(
            StreamName=stream_name, ShardToMerge=low, AdjacentShardToMerge="shardId-000000000001"
        )
    )
    assert code == ("InvalidArgumentException", 400)
    kinesis.merge_shards(StreamName=stream_name, ShardToMerge=low, AdjacentShardToMerge=high)
    merged = kinesis.list_shards(StreamName=stream_name, ShardFilter={"Type": "AT_LATEST"})
    child = next(s for s in merged["Shards"] if s.get("AdjacentParentShardId"))
    assert (child["ParentShardId"], child["AdjacentParentShardId"]) == (low, high)
    assert child["HashKeyRange"] == parent["HashKeyRange"]
    key_hash = int(hashlib.md5(b"key-0").hexdigest(), 16)
    routed = kinesis.put_record(StreamName=stream_name, PartitionKey="key-0", Data=b"x")
    assert routed["ShardId"] == shard_of(kinesis, stream_name, key_hash)
    rows = read_stream(kinesis, stream_name)
    assert len(rows) == 22  # every record put, read from parents and children


def test_update_shard_count_doubles_and_halves(kinesis_server_with: Start) -> None:
    server = kinesis_server_with()
    kinesis = one_stream(server, shards=2)
    kinesis.update_shard_count(StreamName="s", TargetShardCount=4, ScalingType="UNIFORM_SCALING")
    assert (
        kinesis.describe_stream_summary(StreamName="s")["StreamDescriptionSummary"][
            "OpenShardCount"
        ]
        == 4
    )
    kinesis.update_shard_count(StreamName="s", TargetShardCount=2, ScalingType="UNIFORM_SCALING")
    latest = kinesis.list_shards(StreamName="s", ShardFilter={"Type": "AT_LATEST"})["Shards"]
    assert [s["HashKeyRange"]["StartingHashKey"] for s in latest] == ["0", str(2**127)]


# -- ListShards ([LS])


def test_list_shards_pages_by_next_token(kinesis_server_with: Start) -> None:
    server = kinesis_server_with()
    server.freeze_clock()
    kinesis = one_stream(server, shards=5)
    split_in_two(kinesis, "s")
    first = kinesis.list_shards(StreamName="s", MaxResults=2)
    pages, token = [first["Shards"]], first.get("NextToken")
    while token:
        page = kinesis.list_shards(NextToken=token, MaxResults=2)
        pages.append(page["Shards"])
        token = page.get("NextToken")
    assert [len(p) for p in pages] == [2, 2, 2, 1]
    assert [s["ShardId"] for p in pages for s in p] == [f"shardId-{i:012d}" for i in range(7)]
    code = error_code(lambda: kinesis.list_shards(StreamName="s", NextToken=first["NextToken"]))
    assert code == ("InvalidArgumentException", 400)
    server.advance_clock(301)
    code = error_code(lambda: kinesis.list_shards(NextToken=first["NextToken"]))
    assert code == ("ExpiredNextTokenException", 400)


# -- retention ([RET])


def test_records_older_than_the_retention_are_gone(kinesis_server_with: Start) -> None:
    server = kinesis_server_with(retention_s=60)
    server.freeze_clock()
    kinesis = one_stream(server, shards=1)
    old = kinesis.put_record(StreamName="s", PartitionKey="k", Data=b"old")
    server.advance_clock(40)
    kinesis.put_record(StreamName="s", PartitionKey="k", Data=b"new")
    server.advance_clock(30)

    def data(iterator: str) -> list[bytes]:
        return [r["Data"] for r in kinesis.get_records(ShardIterator=iterator)["Records"]]

    assert data(trim_horizon(kinesis, "s")) == [b"new"]
    trimmed = kinesis.get_shard_iterator(
        StreamName="s",
        ShardId="shardId-000000000000",
        ShardIteratorType="AT_SEQUENCE_NUMBER",
        StartingSequenceNumber=old["SequenceNumber"],
    )["ShardIterator"]
    assert data(trimmed) == [b"new"]
    split_in_two(kinesis, "s")
    server.advance_clock(61)
    listed = [s["ShardId"] for s in kinesis.list_shards(StreamName="s")["Shards"]]
    assert "shardId-000000000000" not in listed and len(listed) == 2
    code = error_code(lambda: trim_horizon(kinesis, "s"))
    assert code == ("ResourceNotFoundException", 400)


def test_retention_period_can_be_increased(kinesis_server: KinesisServer, stream_name: str) -> None:
    kinesis = client(kinesis_server)
    create_stream(kinesis, stream_name, 1)
    kinesis.increase_stream_retention_period(StreamName=stream_name, RetentionPeriodHours=48)
    summary = kinesis.describe_stream_summary(StreamName=stream_name)["StreamDescriptionSummary"]
    assert summary["RetentionPeriodHours"] == 48


# -- streams, helpers, feeder


def test_streams_are_created_and_deleted_as_with_emulators(
    kinesis_server: KinesisServer, stream_name: str
) -> None:
    kinesis = client(kinesis_server)
    assert create_stream(kinesis, stream_name, 3) == [f"shardId-{i:012d}" for i in range(3)]
    kinesis.get_waiter("stream_exists").wait(StreamName=stream_name)
    code = error_code(lambda: kinesis.create_stream(StreamName=stream_name, ShardCount=1))
    assert code == ("ResourceInUseException", 400)
    puts = put(kinesis, stream_name, [(f"k{i}", b"%d" % i) for i in range(10)])
    assert sorted(r["data"] for r in read_stream(kinesis, stream_name)) == sorted(
        p["data"] for p in puts
    )
    kinesis.delete_stream(StreamName=stream_name)
    code = error_code(lambda: kinesis.describe_stream_summary(StreamName=stream_name))
    assert code == ("ResourceNotFoundException", 400)


def test_the_feeder_appends_records_to_every_open_shard(kinesis_server_with: Start) -> None:
    server = kinesis_server_with(
        feed_record_bytes=100, feed_bytes_per_s=100_000, get_records_calls_per_s=None
    )
    kinesis = one_stream(server, shards=2)
    counts = {"shardId-000000000000": 0, "shardId-000000000001": 0}
    iterators = {s: trim_horizon(kinesis, "s", s) for s in counts}

    def fed() -> bool:
        for shard, iterator in iterators.items():
            page = kinesis.get_records(ShardIterator=iterator)
            assert all(len(r["Data"]) == 100 for r in page["Records"])
            counts[shard] += len(page["Records"])
            iterators[shard] = page["NextShardIterator"]
        return min(counts.values()) >= 50

    wait_for(fed, timeout_s=10, what="the feeder's records", poll_s=0.25)
