"""Enhanced fan-out position rules: pure, no server."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from kinesis_source.source.executor.efo import rest_of_event
from kinesis_source.source.executor.efo_subscribe import starting_position
from kinesis_source.source.executor.efo_subscription import merge_events
from kinesis_source.source.executor.stop_rules import after_continuation
from kinesis_source.source.positions import Position


@pytest.mark.parametrize(
    ("position", "start"),
    [
        (Position.trim_horizon(), {"Type": "TRIM_HORIZON"}),
        (
            Position.at_timestamp(1_700_000_000_123),
            {
                "Type": "AT_TIMESTAMP",
                "Timestamp": datetime(2023, 11, 14, 22, 13, 20, 123000, tzinfo=timezone.utc),
            },
        ),
        (Position.after("42"), {"Type": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": "42"}),
        # A split aggregate restarts AT its record; the reader skips the sub-records read.
        (Position.after("42", 3), {"Type": "AT_SEQUENCE_NUMBER", "SequenceNumber": "42"}),
    ],
)
def test_starting_position_of_every_position_kind(
    position: Position, start: dict[str, object]
) -> None:
    assert starting_position(position) == start


def test_empty_event_moves_an_idle_shard_forward() -> None:
    assert after_continuation(Position.at_timestamp(5), "100", None) == (
        Position.after("100"),
        False,
    )
    assert after_continuation(Position.trim_horizon(), "100", None) == (
        Position.after("100"),
        False,
    )
    assert after_continuation(Position.after("90"), "100", None) == (Position.after("100"), False)


def test_continuation_never_moves_a_position_back() -> None:
    assert after_continuation(Position.after("100"), "90", None) == (Position.after("100"), False)
    assert after_continuation(Position.after("100"), None, None) == (Position.after("100"), False)


def test_mid_aggregate_position_waits_for_the_rest_of_the_aggregate() -> None:
    assert after_continuation(Position.after("100", 2), "100", None) == (
        Position.after("100", 2),
        False,
    )


def test_replay_is_complete_when_the_continuation_reaches_the_recorded_end() -> None:
    stop = Position.after("100")
    assert after_continuation(Position.after("80"), "99", stop) == (Position.after("99"), False)
    assert after_continuation(Position.after("80"), "100", stop) == (stop, True)
    assert after_continuation(Position.after("80"), "120", stop) == (stop, True)


def _event(*seqs: int) -> dict[str, object]:
    return {
        "Records": [{"SequenceNumber": str(s), "Data": b""} for s in seqs],
        "ContinuationSequenceNumber": str(seqs[-1]),
        "MillisBehindLatest": 0,
    }


def test_rest_of_event_after_a_cap_inside_it() -> None:
    rest = rest_of_event(_event(10, 20, 30), Position.after("20"))
    assert rest is not None
    assert [r["SequenceNumber"] for r in rest["Records"]] == ["30"]
    assert rest["ContinuationSequenceNumber"] == "30"


def test_rest_of_event_keeps_a_split_aggregate_for_the_skip_mark() -> None:
    rest = rest_of_event(_event(10, 20, 30), Position.after("20", 4))
    assert rest is not None
    assert [r["SequenceNumber"] for r in rest["Records"]] == ["20", "30"]


def test_rest_of_event_needs_a_position_inside_the_event() -> None:
    assert rest_of_event(_event(10, 20), Position.after("15")) is None
    assert rest_of_event(_event(10, 20), Position.trim_horizon()) is None


def test_merged_events_keep_every_record_and_the_later_events_fields() -> None:
    first = {
        "Records": [{"SequenceNumber": "1"}],
        "ContinuationSequenceNumber": "1",
        "MillisBehindLatest": 900,
    }
    later = {
        "Records": [{"SequenceNumber": "2"}],
        "ContinuationSequenceNumber": "2",
        "MillisBehindLatest": 0,
    }
    merged = merge_events(first, later)
    assert [r["SequenceNumber"] for r in merged["Records"]] == ["1", "2"]
    assert merged["ContinuationSequenceNumber"] == "2"
    assert merged["MillisBehindLatest"] == 0
    end = merge_events(
        later, {"Records": [], "MillisBehindLatest": 0, "ChildShards": [{"ShardId": "c"}]}
    )
    assert "ContinuationSequenceNumber" not in end
    assert end["ChildShards"] == [{"ShardId": "c"}]
