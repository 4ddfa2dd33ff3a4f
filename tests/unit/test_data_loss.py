"""The pure data-loss checks: vanished shards and positions older than the retention."""

from __future__ import annotations

import pytest

from kinesis_source.errors import DataLossError, KinesisReadError
from kinesis_source.source.data_loss import ReadLoss, go_on_after, read_loss
from kinesis_source.source.driver.loss_check import (
    DataLossCheck,
    span,
    stale_shards,
    trimmed_unread,
    vanished_shards,
)
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


def test_a_stale_position_lost_records_only_if_its_record_was_trimmed() -> None:
    # Compared as integers: "9" > "10" as strings.
    assert not trimmed_unread(Position.after("10"), "9")
    assert not trimmed_unread(Position.after("10"), "10")
    assert not trimmed_unread(Position("AT_SEQUENCE_NUMBER", "10"), "10")
    assert trimmed_unread(Position.after("10"), "11")
    # Nothing left: records that came after the position may have been trimmed too.
    assert trimmed_unread(Position.after("10"), None)


def test_the_check_asks_only_stale_shards_for_their_oldest_record() -> None:
    now = 100 * HOUR
    asked: list[str] = []
    oldest = {"kept": "5", "trimmed": "90", "empty": None}

    def oldest_record(shard_id: str) -> str | None:
        asked.append(shard_id)
        return oldest[shard_id]

    check = DataLossCheck("s", 24 * HOUR, fail_on_data_loss=True, oldest_record=oldest_record)
    for sid in ("kept", "trimmed", "empty", "fresh"):
        check.confirm(sid, now - (1 if sid == "fresh" else 25) * HOUR)
    positions = {sid: Position.after("10") for sid in ("kept", "fresh")}
    assert check.check(dict(positions), None, now) == positions
    assert asked == ["kept"]
    # Confirmed now: no second probe, at the next trigger or later.
    check.check(dict(positions), None, now + 1)
    assert asked == ["kept"]
    # A check forgets the shards it no longer tracks (bounded state), so each stale shard
    # below is confirmed again, 25 hours ago, before the check that tracks it.
    check.confirm("trimmed", now - 25 * HOUR)
    with pytest.raises(DataLossError, match=r"oldest record the shard still holds, 90, comes"):
        check.check({"trimmed": Position.after("10")}, None, now)
    check.confirm("empty", now - 25 * HOUR)
    with pytest.raises(DataLossError, match=r"ago and the shard holds no record now; records"):
        check.check({"empty": Position.after("10")}, None, now)


def test_spans_read_naturally() -> None:
    assert span(3 * HOUR) == "3.0 h"
    assert span(15 * 60_000) == "15 min"
    assert span(40_000) == "40 s"


def test_a_refused_read_says_which_records_are_lost() -> None:
    at = Position.after("5")
    assert read_loss("ResourceNotFoundException", at) is ReadLoss.SHARD_GONE
    assert read_loss("InvalidArgumentException", at) is ReadLoss.TRIMMED
    # AWS's words for a sequence number of another shard or stream: no loss, an error.
    other_shard = (
        "Invalid StartingSequenceNumber. It encodes shardId-000000000007, while it was used "
        "in a call to a shard with shardId-000000000000"
    )
    other_stream = (
        "StartingSequenceNumber 4953 used in GetShardIterator on shard shardId-000000000000 in "
        "stream s under account 1 is invalid because it did not come from this stream."
    )
    for message in (other_shard, other_stream):
        assert read_loss("InvalidArgumentException", at, message) is ReadLoss.FOREIGN
        with pytest.raises(KinesisReadError, match="not one of this shard's"):
            go_on_after(
                ReadLoss.FOREIGN,
                stream="s",
                shard_id="shardId-0",
                position=at,
                refusal=f"GetShardIterator: {message}",
                fail_on_data_loss=False,
            )
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
