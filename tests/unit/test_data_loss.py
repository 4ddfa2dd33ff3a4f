"""The pure data-loss checks: vanished shards and positions older than the retention."""

from __future__ import annotations

import pytest

from kinesis_source.errors import DataLossError
from kinesis_source.source.data_loss import ReadLoss, go_on_after, read_loss
from kinesis_source.source.driver.loss_check import span, stale_shards, vanished_shards
from kinesis_source.source.positions import Position

HOUR = 3_600_000


def test_a_tracked_unfinished_shard_missing_from_the_listing_vanished() -> None:
    tracked = {"a": Position.after("5"), "b": Position.shard_end(), "c": Position.trim_horizon()}
    assert vanished_shards(tracked, ["c"]) == ["a"]


def test_positions_confirmed_before_the_trim_horizon_are_stale() -> None:
    now = 100 * HOUR
    tracked = {
        "old": Position.after("5"),
        "fresh": Position.after("6"),
        "horizon": Position.trim_horizon(),
        "unknown": Position.after("7"),
    }
    confirmed = {"old": now - 25 * HOUR, "fresh": now - 23 * HOUR, "horizon": 0}
    assert stale_shards(tracked, confirmed, now, 24 * HOUR) == {"old": now - 25 * HOUR}


def test_spans_read_naturally() -> None:
    assert span(3 * HOUR) == "3.0 h"
    assert span(15 * 60_000) == "15 min"
    assert span(40_000) == "40 s"


def test_a_refused_read_says_which_records_are_lost() -> None:
    at = Position.after("5")
    assert read_loss("ResourceNotFoundException", at) is ReadLoss.SHARD_GONE
    assert read_loss("InvalidArgumentException", at) is ReadLoss.TRIMMED
    # Only a sequence number can be older than the trim horizon.
    assert read_loss("InvalidArgumentException", Position.trim_horizon()) is None
    assert read_loss("ProvisionedThroughputExceededException", at) is None


def test_a_read_loss_fails_naming_the_shard_and_the_option_by_default() -> None:
    with pytest.raises(DataLossError) as err:
        go_on_after(
            ReadLoss.TRIMMED,
            stream="s",
            shard_id="shardId-1",
            position=Position.after("5"),
            refusal="SubscribeToShard: InvalidArgumentException",
            fail_on_data_loss=True,
        )
    assert "shard shardId-1: its position AFTER_SEQUENCE_NUMBER(5)" in str(err.value)
    assert "failOnDataLoss=false" in str(err.value)
    assert err.value.shard_id == "shardId-1" and err.value.sequence_number == "5"


def test_a_read_loss_goes_on_from_the_oldest_record_or_ends_a_gone_shard() -> None:
    def after(loss: ReadLoss) -> Position:
        return go_on_after(
            loss,
            stream="s",
            shard_id="shardId-1",
            position=Position.after("5"),
            refusal="GetShardIterator: x",
            fail_on_data_loss=False,
        )

    assert after(ReadLoss.TRIMMED) == Position.trim_horizon()
    assert after(ReadLoss.SHARD_GONE) == Position.shard_end()
