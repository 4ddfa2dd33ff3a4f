"""The offset over several streams: deterministic JSON, and version 1 still read."""

from __future__ import annotations

import json

import pytest

from kinesis_source.source.positions import Position, QueryOffset, StreamOffset

# Verbatim what the single-stream reader logged (version 1), AvailableNow with limits.
V1 = (
    '{"v": 1, "batch": 7, "stream": "orders", "query": "4f1c", "sinceMs": 1769860800000, '
    '"untilMs": 1769860900000, "shards": {"shardId-000000000000": {"at": "SHARD_END"}, '
    '"shardId-000000000001": {"at": "AFTER_SEQUENCE_NUMBER(4959,2)", "limit": 0}, '
    '"shardId-000000000002": {"at": "AT_TIMESTAMP(1769860800000)", "limit": 30}}}'
)


def test_a_single_stream_offset_of_version_1_is_still_read() -> None:
    offset = QueryOffset.from_json(json.loads(V1))
    assert offset == QueryOffset(
        batch=7,
        query="4f1c",
        until_ms=1_769_860_900_000,
        streams={
            "orders": StreamOffset(
                since_ms=1_769_860_800_000,
                shards={
                    "shardId-000000000000": Position.shard_end(),
                    "shardId-000000000001": Position.after("4959", 2),
                    "shardId-000000000002": Position.at_timestamp(1_769_860_800_000),
                },
                limits={"shardId-000000000001": 0, "shardId-000000000002": 30},
            )
        },
    )
    assert offset.streams["orders"].planned_shards() == ["shardId-000000000002"]


def test_version_2_nests_shards_in_streams_in_sorted_order() -> None:
    a = QueryOffset(
        batch=3,
        query="q",
        streams={
            "orders": StreamOffset({"s-2": Position.after("9"), "s-1": Position.trim_horizon()}),
            "clicks": StreamOffset({"s-1": Position.after("4", 1)}, since_ms=5, limits={"s-1": 2}),
        },
    )
    b = QueryOffset(
        batch=3,
        query="q",
        streams={
            "clicks": StreamOffset({"s-1": Position.after("4", 1)}, since_ms=5, limits={"s-1": 2}),
            "orders": StreamOffset({"s-1": Position.trim_horizon(), "s-2": Position.after("9")}),
        },
    )
    text = json.dumps(a.to_json())
    assert text == json.dumps(b.to_json())
    assert text == (
        '{"v": 2, "batch": 3, "query": "q", "streams": {'
        '"clicks": {"sinceMs": 5, "shards": {"s-1": {"at": "AFTER_SEQUENCE_NUMBER(4,1)", '
        '"limit": 2}}}, '
        '"orders": {"sinceMs": null, "shards": {"s-1": {"at": "TRIM_HORIZON"}, '
        '"s-2": {"at": "AFTER_SEQUENCE_NUMBER(9)"}}}}}'
    )
    assert QueryOffset.from_json(json.loads(text)) == a


def test_an_unknown_version_is_refused() -> None:
    with pytest.raises(ValueError, match="unsupported offset version 3"):
        QueryOffset.from_json({"v": 3, "batch": 0, "query": "q", "streams": {}})
