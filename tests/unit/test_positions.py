"""Positions and offsets: text round trips, iterator requests, deterministic JSON."""

from __future__ import annotations

import json

import pytest

from kinesis_source.source.positions import Position, ShardEnd, StreamOffset

SEQ = "49590338271490256608559692538361571095921575989136588898"


@pytest.mark.parametrize(
    "position",
    [
        Position.trim_horizon(),
        Position.shard_end(),
        Position.at_timestamp(1_769_860_800_000),
        Position.after(SEQ),
        Position.after(SEQ, 3),
        Position("AT_SEQUENCE_NUMBER", sequence=SEQ),
        Position.walked_to(1_769_860_800_000),
        Position.walked_to(1_769_860_800_000, SEQ),
    ],
)
def test_position_text_round_trips(position: Position) -> None:
    assert Position.parse(position.text()) == position


@pytest.mark.parametrize(
    "text", ["", "LATEST", "AFTER_SEQUENCE_NUMBER", "AT_SEQUENCE_NUMBER(1,2)", "X(1)"]
)
def test_bad_position_text_is_rejected(text: str) -> None:
    with pytest.raises(ValueError):
        Position.parse(text)


def test_a_split_aggregate_restarts_at_its_sequence_number_and_skips_what_was_read() -> None:
    pos = Position.after(SEQ, 3)
    assert pos.iterator_request() == {
        "ShardIteratorType": "AT_SEQUENCE_NUMBER",
        "StartingSequenceNumber": SEQ,
    }
    assert pos.skip_through() == (int(SEQ), 3)
    whole = Position.after(SEQ)
    assert whole.iterator_request()["ShardIteratorType"] == "AFTER_SEQUENCE_NUMBER"
    assert whole.skip_through() is None


def test_new_shards_of_a_timestamp_query_start_at_its_start_time() -> None:
    assert StreamOffset({}, since_ms=None).start_position_for_new_shard().kind == "TRIM_HORIZON"
    assert StreamOffset({}, since_ms=5).start_position_for_new_shard() == (Position.at_timestamp(5))


def test_shard_end_round_trips() -> None:
    end = ShardEnd(Position.after(SEQ, 1), records=9, millis_behind_latest=0, caught_up=False)
    assert ShardEnd.from_json(json.loads(json.dumps(end.to_json()))) == end


def test_shard_end_round_trips_an_efo_fallback() -> None:
    end = ShardEnd(Position.after(SEQ), 2, millis_behind_latest=0, caught_up=True)
    fell_back = ShardEnd(
        Position.after(SEQ), 2, millis_behind_latest=0, caught_up=True, efo_fallback=True
    )
    assert "efoFallback" not in end.to_json()
    assert ShardEnd.from_json(json.loads(json.dumps(fell_back.to_json()))) == fell_back
    assert fell_back != end
