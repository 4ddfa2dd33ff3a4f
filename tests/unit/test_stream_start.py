"""Where each stream starts, from the options, a listing and (for kcl) the leases."""

from __future__ import annotations

import json

import pytest

from kinesis_source.errors import DataLossError, KclLeaseError, OptionError
from kinesis_source.source.driver.lineage import ShardInfo
from kinesis_source.source.driver.stream_start import changed_streams, initial_stream_offset
from kinesis_source.source.options import KinesisOptions, parse_options
from kinesis_source.source.positions import Position, StreamOffset
from kinesis_source.source.shard_range import ShardRange

LISTING = [ShardInfo("s0"), ShardInfo("s1", ("s0",)), ShardInfo("s2", ("s0",)), ShardInfo("s9")]
NOW = 1_769_860_800_000
DAY_MS = 24 * 3_600_000


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


def test_a_kcl_lease_of_a_shard_gone_unfinished_is_data_loss_naming_checkpoint_and_retention(
    caplog: pytest.LogCaptureFixture,
) -> None:
    leases = {"s0": Position.shard_end(), "s1": Position.after("5", 3), "old": Position.after("1")}
    options = opts(initialPosition="kcl", kclLeaseTable="app")
    with pytest.raises(
        DataLossError,
        match=r"shard old at the checkpoint AFTER_SEQUENCE_NUMBER\(1\)"
        r".*aged out of its retention \(24.0 h\).*failOnDataLoss=false",
    ):
        initial_stream_offset(options, "orders", LISTING, NOW, leases, DAY_MS)
    # failOnDataLoss=false: a warning, and the shards still listed start as the leases say.
    options = opts(initialPosition="kcl", kclLeaseTable="app", failOnDataLoss="false")
    assert initial_stream_offset(options, "orders", LISTING, NOW, leases, DAY_MS) == StreamOffset(
        {
            "s1": Position.after("5", 3),
            "s2": Position.trim_horizon(),
            "s9": Position.at_timestamp(NOW),
        }
    )
    assert [r.levelname for r in caplog.records if "shard old" in r.getMessage()] == ["WARNING"]
    # A gone shard the application read to its end lost nothing.
    done = {"s0": Position.shard_end(), "old": Position.shard_end()}
    strict = opts(initialPosition="kcl", kclLeaseTable="app")
    assert initial_stream_offset(strict, "orders", LISTING, NOW, done, DAY_MS) == StreamOffset(
        {
            "s1": Position.trim_horizon(),
            "s2": Position.trim_horizon(),
            "s9": Position.at_timestamp(NOW),
        }
    )


RANGED = [
    ShardInfo("s0", (), ShardRange("100")),
    ShardInfo("s1", ("s0",), ShardRange("200")),
]


@pytest.mark.parametrize("fail_on_data_loss", ["true", "false"])
def test_a_sequence_number_outside_its_shard_is_an_error_naming_the_option(
    fail_on_data_loss: str,
) -> None:
    # 50 lies before s0's first sequence number, which trimming never moves: it is another
    # shard's (or stream's), not a trimmed one of s0.
    start = {"orders": {"s0": {"iteratorType": "AFTER_SEQUENCE_NUMBER", "sequenceNumber": "50"}}}
    options = opts(initialPosition=json.dumps(start), failOnDataLoss=fail_on_data_loss)
    with pytest.raises(OptionError, match="'initialPosition'.*50 of .*shard s0.*start at 100"):
        initial_stream_offset(options, "orders", RANGED, NOW)
    kcl = opts(initialPosition="kcl", kclLeaseTable="app", failOnDataLoss=fail_on_data_loss)
    with pytest.raises(KclLeaseError, match="'app'.*kclLeaseTable.*99 of stream 'orders' shard s1"):
        initial_stream_offset(kcl, "orders", RANGED, NOW, {"s1": Position.after("99")}, DAY_MS)
    # In range: a start (trimmed or not, the read tells).
    inside = {"s0": Position.after("150")}
    assert initial_stream_offset(kcl, "orders", RANGED, NOW, inside, DAY_MS) == StreamOffset(
        {"s0": Position.after("150")}
    )


def test_streams_added_and_removed_between_runs() -> None:
    assert changed_streams(["orders", "audit"], ["clicks", "orders"]) == (["clicks"], ["audit"])
