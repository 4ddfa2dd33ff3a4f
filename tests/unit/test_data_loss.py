"""The pure data-loss checks: vanished shards and positions older than the retention."""

from __future__ import annotations

from kinesis_source.source.data_loss import span, stale_shards, vanished_shards
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
