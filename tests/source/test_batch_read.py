"""Batch reads end to end: ``spark.read.format("kinesis")`` over a bounded range.

On moto for plain streams, on kinesis-mock (npm kinesis-local) for a resharded one, whose
closed parents end as on AWS. What each read returns is checked against what was put, or
against the stream read directly with boto3 (``arrivals``), never against another read.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any

import pytest
from pyspark.errors import AnalysisException

from tests.helpers import (
    assert_shard_order,
    create_stream,
    expected_keys,
    put,
    record_keys,
    wait_for,
)
from tests.source.test_reshard import (
    assert_every_record_once_and_counters_increase,
    split_and_merged_stream,
)

REGION = "us-east-1"


def read_options(endpoint: str, stream: str, **extra: str) -> dict[str, str]:
    """A batch read's options: no checkpointStore, the start and end at their defaults."""
    return {
        "streamName": stream,
        "region": REGION,
        "endpointUrl": endpoint,
        "fetchIntervalMs": "0",
        **extra,
    }


def batch_read(spark: Any, options: dict[str, str]) -> Any:
    return spark.read.format("kinesis").options(**options).load()


def rows_of(df: Any) -> list[dict[str, Any]]:
    return [row.asDict() for row in df.collect()]


def arrivals(client: Any, stream: str) -> list[tuple[tuple[str, str], int]]:
    """((shard, sequence number), arrival in epoch ms) of every record, read with boto3."""
    out = []
    for shard in client.list_shards(StreamName=stream)["Shards"]:
        iterator = client.get_shard_iterator(
            StreamName=stream, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while iterator:
            page = client.get_records(ShardIterator=iterator)
            for record in page["Records"]:
                stamp = record["ApproximateArrivalTimestamp"].timestamp()
                out.append(((shard["ShardId"], record["SequenceNumber"]), round(stamp * 1000)))
            if not page["Records"]:
                break
            iterator = page.get("NextShardIterator")
    return out


def seqs(rows: Iterable[dict[str, Any]]) -> list[str]:
    return sorted((r["sequenceNumber"] for r in rows), key=int)


def places(rows: Iterable[dict[str, Any]]) -> list[tuple[str, str]]:
    """(shard, sequence number) of each row, sorted."""
    return sorted((r["shardId"], r["sequenceNumber"]) for r in rows)


def test_a_resharded_stream_is_read_whole_each_record_once_in_shard_order(
    spark: Any, kinesis_local: Any, kinesis_local_endpoint: str, stream_name: str
) -> None:
    producer = split_and_merged_stream(kinesis_local, stream_name, per_key=2)
    listing = kinesis_local.list_shards(StreamName=stream_name)["Shards"]
    assert len(listing) == 5  # two roots, a split's two children, their merge

    for per_task in ("1", "2"):
        df = batch_read(
            spark, read_options(kinesis_local_endpoint, stream_name, shardsPerTask=per_task)
        )
        assert df.rdd.getNumPartitions() == 5 // int(per_task) + (5 % int(per_task) > 0)
        rows = rows_of(df)
        assert_shard_order(rows)
        assert_every_record_once_and_counters_increase({0: rows}, producer.written)
        assert {r["shardId"] for r in rows} == {s["ShardId"] for s in listing}


def test_records_put_after_the_read_was_planned_are_not_in_it(
    spark: Any, kinesis: Any, moto_endpoint: str, stream_name: str
) -> None:
    create_stream(kinesis, stream_name, 2)
    first = put(kinesis, stream_name, [(f"key-{i % 7}", f"first-{i}".encode()) for i in range(40)])
    df = batch_read(spark, read_options(moto_endpoint, stream_name))
    assert df.count() == 40  # the read is planned here, at the first action

    more = put(kinesis, stream_name, [(f"key-{i % 7}", f"more-{i}".encode()) for i in range(25)])
    # The same DataFrame: the same plan, the same ends, the same rows (its tasks run again).
    assert record_keys(rows_of(df)) == expected_keys(first)
    assert df.count() == 40
    # A new read is a new plan.
    assert record_keys(rows_of(batch_read(spark, read_options(moto_endpoint, stream_name)))) == (
        expected_keys(first + more)
    )


def test_a_time_window_returns_exactly_the_records_that_arrived_inside_it(
    spark: Any, kinesis: Any, moto_endpoint: str, stream_name: str
) -> None:
    create_stream(kinesis, stream_name, 2)
    groups: list[list[dict[str, str]]] = []
    for name in ("before", "inside", "after"):
        if groups:
            # Kinesis stamps arrival in milliseconds: let its clock move past the last group.
            past = max(ms for _, ms in arrivals(kinesis, stream_name)) + 2
            wait_for(lambda: time.time() * 1000 > past, 5, "the clock to move on")  # noqa: B023
        groups.append(
            put(kinesis, stream_name, [(f"k{i}", f"{name}-{i}".encode()) for i in range(12)])
        )
    stamps = dict(arrivals(kinesis, stream_name))
    start_ms = min(stamps[(p["shardId"], p["sequenceNumber"])] for p in groups[1])
    end_ms = min(stamps[(p["shardId"], p["sequenceNumber"])] for p in groups[2])
    inside = sorted(place for place, ms in stamps.items() if start_ms <= ms < end_ms)
    assert inside == places(groups[1])  # the window holds the middle group, and only it

    window = read_options(
        moto_endpoint,
        stream_name,
        initialPosition="at_timestamp",
        initialTimestamp=str(start_ms),
        endingPosition="at_timestamp",
        endingTimestamp=datetime.fromtimestamp(end_ms / 1000, timezone.utc).isoformat(),
    )
    assert places(rows_of(batch_read(spark, window))) == inside


def test_per_shard_json_ends_before_or_after_the_named_record(
    spark: Any, kinesis: Any, moto_endpoint: str, stream_name: str
) -> None:
    (shard,) = create_stream(kinesis, stream_name, 1)
    written = put(kinesis, stream_name, [(f"k{i}", f"r{i}".encode()) for i in range(12)])
    seq = [p["sequenceNumber"] for p in written]

    def spec(kind: str, i: int) -> str:
        return json.dumps({stream_name: {shard: {"iteratorType": kind, "sequenceNumber": seq[i]}}})

    def read(**extra: str) -> list[str]:
        return seqs(rows_of(batch_read(spark, read_options(moto_endpoint, stream_name, **extra))))

    assert read(endingPosition=spec("AT_SEQUENCE_NUMBER", 5)) == seq[:5]
    assert read(endingPosition=spec("AFTER_SEQUENCE_NUMBER", 9)) == seq[:10]
    between = read(
        initialPosition=spec("AFTER_SEQUENCE_NUMBER", 2),
        endingPosition=spec("AT_SEQUENCE_NUMBER", 8),
    )
    assert between == seq[3:8]
    assert read(endingPosition=spec("AT_SEQUENCE_NUMBER", 0)) == []


def test_a_sql_view_counts_per_key(
    spark: Any, kinesis: Any, moto_endpoint: str, stream_name: str
) -> None:
    create_stream(kinesis, stream_name, 2)
    put(kinesis, stream_name, [(f"key-{i % 3}", b"x") for i in range(30)])
    spark.sql(
        f"CREATE OR REPLACE TEMPORARY VIEW orders USING kinesis OPTIONS (streamName "
        f"'{stream_name}', region '{REGION}', endpointUrl '{moto_endpoint}', "
        "initialPosition 'trim_horizon')"
    )
    counts = spark.sql(
        "SELECT partitionKey, count(*) AS n FROM orders GROUP BY partitionKey ORDER BY 1"
    ).collect()
    assert [(r["partitionKey"], r["n"]) for r in counts] == [
        ("key-0", 10),
        ("key-1", 10),
        ("key-2", 10),
    ]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            {"endingTimestamp": "2026-01-31T13:00:00Z"},
            "option 'endingTimestamp': is only allowed with endingPosition=at_timestamp",
        ),
        (
            {
                "endingPosition": '{"STREAM": {"shardId-000000000007": '
                '{"iteratorType": "AT_SEQUENCE_NUMBER", "sequenceNumber": "1"}}}'
            },
            "option 'endingPosition': names shard 'shardId-000000000007' of stream 'STREAM', "
            "which the stream does not have (its shards: shardId-000000000000)",
        ),
        (
            {
                "initialPosition": '{"STREAM": {"shardId-000000000000": '
                '{"iteratorType": "AT_SEQUENCE_NUMBER", "sequenceNumber": "20"}}}',
                "endingPosition": '{"STREAM": {"shardId-000000000000": '
                '{"iteratorType": "AT_SEQUENCE_NUMBER", "sequenceNumber": "10"}}}',
            },
            "option 'endingPosition': stream 'STREAM' shard 'shardId-000000000000': ends at "
            "AT_SEQUENCE_NUMBER 10, before its start AT_SEQUENCE_NUMBER(20)",
        ),
        (
            {"initialPosition": "at_timestamp", "initialTimestamp": "4102444800000"},
            "option 'initialTimestamp': is 4102444800000 epoch ms, after the read's end",
        ),
    ],
)
def test_bad_ranges_fail_on_the_driver_naming_the_option(
    spark: Any,
    kinesis: Any,
    moto_endpoint: str,
    stream_name: str,
    extra: dict[str, str],
    message: str,
) -> None:
    create_stream(kinesis, stream_name, 1)
    extra = {k: v.replace("STREAM", stream_name) for k, v in extra.items()}
    df = batch_read(spark, read_options(moto_endpoint, stream_name, **extra))
    with pytest.raises(AnalysisException) as err:
        df.count()
    assert message.replace("STREAM", stream_name) in str(err.value)
