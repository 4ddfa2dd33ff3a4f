"""Pure decisions of a replay (source/executor/replay_check.py) and the store entry's new
fields, old entries still read."""

from __future__ import annotations

import pyarrow as pa
import pytest

from kinesis_source.errors import DataLossError
from kinesis_source.records.records_page import RecordsPage
from kinesis_source.source.executor.replay_check import (
    check_replay_start,
    first_to_record,
    moved_to_continuation,
    records_trimmed,
)
from kinesis_source.source.positions import Position, ShardEnd


def _page(seqs: list[str], continuation: str | None = None) -> RecordsPage:
    return RecordsPage(
        sequence_numbers=seqs,
        arrival_us=pa.array([0] * len(seqs), pa.int64()),
        unit_starts=list(range(len(seqs) + 1)),
        data=[b"x"] * len(seqs),
        partition_keys=["k"] * len(seqs),
        explicit_hash_keys=[None] * len(seqs),
        unit_records=None,
        unit_subs=None,
        millis_behind_latest=0,
        next_shard_iterator="it",
        continuation=continuation,
    )


def test_only_starts_kinesis_resolves_record_their_first_record() -> None:
    page = _page(["100", "200"])
    assert first_to_record(Position.trim_horizon(), page) == "100"
    assert first_to_record(Position.at_timestamp(5), page) == "100"
    assert first_to_record(Position.after("50"), page) is None
    assert first_to_record(Position.trim_horizon(), _page([])) is None


def test_a_later_or_missing_first_record_is_trimmed_compared_as_integers() -> None:
    assert not records_trimmed(None, "900")
    assert not records_trimmed("100", "100")
    assert records_trimmed("100", "101")
    assert records_trimmed("100", None)
    # "99" > "100" as strings; not as numbers.
    assert not records_trimmed("100", "99")


def test_check_replay_start_raises_naming_shard_batch_and_sequence_numbers() -> None:
    end = ShardEnd(Position.after("300"), 3, 0, True, first_sequence="100")
    args = dict(stream="s", shard_id="shardId-1", batch=7, start=Position.trim_horizon())
    assert not check_replay_start(end, "100", fail_on_data_loss=True, **args)  # type: ignore[arg-type]
    with pytest.raises(DataLossError, match=r"replay of batch 7 from TRIM_HORIZON.*starts at 250"):
        check_replay_start(end, "250", fail_on_data_loss=True, **args)  # type: ignore[arg-type]
    assert check_replay_start(end, None, fail_on_data_loss=False, **args)  # type: ignore[arg-type]


def test_an_end_at_an_events_continuation_is_told_from_a_records() -> None:
    assert moved_to_continuation(_page([], "500"), Position.after("500"))
    assert moved_to_continuation(_page(["100"], "500"), Position.after("500"))
    assert not moved_to_continuation(_page(["100", "500"], "500"), Position.after("500"))
    assert not moved_to_continuation(_page(["100"], "500"), Position.after("100"))
    assert not moved_to_continuation(_page(["100"]), Position.after("100"))


def test_store_entries_keep_the_new_fields_and_old_entries_read_without_them() -> None:
    end = ShardEnd(
        Position.after("500"), 0, 0, True, first_sequence="100", end_at_continuation=True
    )
    data = end.to_json()
    assert data["firstSequence"] == "100" and data["endAtContinuation"] is True
    assert ShardEnd.from_json(data) == end
    old = {"end": "AFTER_SEQUENCE_NUMBER(500)", "records": 2, "caughtUp": True}
    read = ShardEnd.from_json(old)
    assert read.first_sequence is None and not read.end_at_continuation
    assert "firstSequence" not in ShardEnd(Position.after("5"), 1, 0, True).to_json()
