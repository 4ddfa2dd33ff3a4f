"""Where each stream starts, from the options, a listing and (for kcl) the leases."""

from __future__ import annotations

import json

from kinesis_source.source.driver.lineage import ShardInfo
from kinesis_source.source.driver.stream_start import changed_streams, initial_stream_offset
from kinesis_source.source.options import KinesisOptions, parse_options
from kinesis_source.source.positions import Position, StreamOffset

LISTING = [ShardInfo("s0"), ShardInfo("s1", ("s0",)), ShardInfo("s2", ("s0",)), ShardInfo("s9")]
NOW = 1_769_860_800_000


def opts(**extra: str) -> KinesisOptions:
    base = {"streamName": "orders", "region": "us-east-1", "checkpointStore": "store"}
    return parse_options({**base, **extra}, env={})


def test_named_positions_start_roots_while_children_of_unread_parents_wait() -> None:
    assert initial_stream_offset(opts(initialPosition="latest"), "orders", LISTING, NOW) == (
        StreamOffset({"s0": Position.at_timestamp(NOW), "s9": Position.at_timestamp(NOW)}, NOW)
    )
    assert initial_stream_offset(opts(initialPosition="trim_horizon"), "orders", LISTING, NOW) == (
        StreamOffset({"s0": Position.trim_horizon(), "s9": Position.trim_horizon()})
    )


def test_json_names_some_shards_and_the_default_takes_the_rest() -> None:
    start = {"orders": {"s9": {"iteratorType": "AFTER_SEQUENCE_NUMBER", "sequenceNumber": "77"}}}
    options = opts(initialPosition=json.dumps(start), initialPositionDefault="trim_horizon")
    assert initial_stream_offset(options, "orders", LISTING, NOW) == StreamOffset(
        {"s0": Position.trim_horizon(), "s9": Position.after("77")}
    )


def test_kcl_leases_of_shards_gone_from_the_stream_are_left_out() -> None:
    options = opts(initialPosition="kcl", kclLeaseTable="app")
    leases = {"s0": Position.shard_end(), "s1": Position.after("5", 3), "old": Position.after("1")}
    assert initial_stream_offset(options, "orders", LISTING, NOW, leases) == StreamOffset(
        {
            "s1": Position.after("5", 3),
            "s2": Position.trim_horizon(),
            "s9": Position.at_timestamp(NOW),
        }
    )


def test_streams_added_and_removed_between_runs() -> None:
    assert changed_streams(["orders", "audit"], ["clicks", "orders"]) == (["clicks"], ["audit"])
