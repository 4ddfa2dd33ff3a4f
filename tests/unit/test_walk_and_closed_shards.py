"""Empty stretches and closed shards in the stop rules, page by page without I/O (issue 22
items 1 and 3): a read of empty pages behind the tip records how far it walked, never a
position that skips or repeats a record; a replay of such a read emits nothing; a shard
known closed is read to its end, not to a tip."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from kinesis_source import limits
from kinesis_source.records.records_page import RecordsPage
from kinesis_source.source.executor.stop_rules import Progress, StopRules
from kinesis_source.source.executor.walk import walked_position
from kinesis_source.source.positions import Position
from tests.pages import BASE_SEQUENCE, make_page

WHERE: dict[str, Any] = {"stream": "s", "shard_id": "shardId-0", "batch": 4}
NOW = 1_800_000_000_000
MARGIN = limits.WALK_CLOCK_MARGIN_MS
SEQ = str(BASE_SEQUENCE)


def rules(
    start: Position,
    *,
    until_ms: int | None = None,
    closed: bool = False,
    stop: Position | None = None,
) -> StopRules:
    return StopRules.for_read(
        start,
        stop,
        task_max_records=None,
        max_records_per_shard=None,
        until_ms=until_ms,
        max_fetch_ms=60_000,
        page_limit=10,
        closed=closed,
    )


def empty(behind_ms: int, received_ms: int = NOW, iterator: str | None = "it") -> RecordsPage:
    page = make_page([], BASE_SEQUENCE)
    return replace(
        page, millis_behind_latest=behind_ms, received_ms=received_ms, next_shard_iterator=iterator
    )


def read(read_rules: StopRules, pages: list[RecordsPage]) -> tuple[Progress, bool]:
    """Consume ``pages`` until the rules stop the read; (progress, stopped)."""
    progress = Progress(position=read_rules.start)
    for page in pages:
        read_rules.consume(page, progress)
        if read_rules.stops_after(page, progress, 0.0, **WHERE):
            return progress, True
    return progress, False


def test_empty_pages_behind_the_tip_move_a_trim_horizon_read_to_where_it_walked() -> None:
    progress, stopped = read(rules(Position.trim_horizon()), [empty(3_600_000), empty(3_540_000)])
    assert not stopped and progress.records == 0
    # The last page's time on the reader's clock, less MillisBehindLatest and the margin.
    assert progress.position == Position.at_timestamp(NOW - 3_540_000 - MARGIN)


def test_a_walk_that_reaches_the_tip_stops_caught_up_where_the_tip_was() -> None:
    progress, stopped = read(rules(Position.trim_horizon()), [empty(60_000), empty(0)])
    assert stopped and progress.caught_up
    assert progress.position == Position.at_timestamp(NOW - MARGIN)


def test_empty_pages_at_the_tip_alone_leave_the_position_where_it_was() -> None:
    start = Position.after(SEQ)
    progress, stopped = read(rules(start), [empty(0)])
    assert stopped and progress.caught_up and progress.position == start


def test_a_walk_from_a_sequence_number_skips_through_it() -> None:
    progress, _ = read(rules(Position.after(SEQ)), [empty(120_000)])
    assert progress.position == Position.walked_to(NOW - 120_000 - MARGIN, SEQ)
    assert progress.position.text() == f"AT_TIMESTAMP({NOW - 120_000 - MARGIN},{SEQ})"
    assert Position.parse(progress.position.text()) == progress.position


def test_walked_positions_never_move_back_nor_skip_a_record() -> None:
    assert walked_position(Position.at_timestamp(NOW), NOW - 1) is None
    assert walked_position(Position.at_timestamp(NOW), NOW + 1) == Position.at_timestamp(NOW + 1)
    at = Position("AT_SEQUENCE_NUMBER", sequence=SEQ)
    assert walked_position(at, NOW) == Position.walked_to(NOW, str(BASE_SEQUENCE - 1))
    # Inside a split aggregate the read's first page holds that aggregate: no walk there.
    assert walked_position(Position.after(SEQ, 2), NOW) is None
    again = walked_position(Position.walked_to(NOW, SEQ), NOW + 5)
    assert again == Position.walked_to(NOW + 5, SEQ)


def test_records_after_a_walk_from_a_sequence_number_are_read_past_the_skip_mark() -> None:
    # The walk's timestamp (with its margin) may lie before the records read last batch:
    # a read from it skips them, and its position never falls back before them.
    start = Position.walked_to(NOW - 10_000, str(BASE_SEQUENCE + 7))
    page = make_page([None] * 4, BASE_SEQUENCE)  # sequence numbers BASE + 0, 7, 14, 21
    progress = Progress(position=start)
    lo, hi = rules(start).consume(page, progress)
    assert (lo, hi) == (2, 4) and progress.records == 2
    assert progress.position == Position.after(str(BASE_SEQUENCE + 21))
    only_old = make_page([None], BASE_SEQUENCE)
    progress = Progress(position=start)
    assert rules(start).consume(only_old, progress) == (1, 1)
    assert progress.position == Position.after(str(BASE_SEQUENCE + 7))


def test_a_replay_of_a_walk_emits_nothing() -> None:
    start = Position.trim_horizon()
    replay = rules(start, stop=Position.at_timestamp(NOW))
    assert replay.nothing_to_read()
    assert rules(Position.after(SEQ), stop=Position.walked_to(NOW, SEQ)).nothing_to_read()
    assert not rules(start, stop=Position.after(SEQ)).nothing_to_read()


def test_under_available_now_a_walk_past_the_bound_is_done_for_the_run() -> None:
    until = NOW - 600_000
    progress, stopped = read(rules(Position.trim_horizon(), until_ms=until), [empty(60_000)])
    assert stopped and progress.reached_bound and progress.records == 0
    progress, stopped = read(rules(Position.trim_horizon(), until_ms=until), [empty(3_600_000)])
    assert not stopped and not progress.reached_bound


@pytest.mark.parametrize("closed", [False, True])
def test_a_closed_shard_is_read_past_its_last_records_to_its_end(closed: bool) -> None:
    # "separate": the last records come with a NextShardIterator and MillisBehindLatest 0,
    # the end (no NextShardIterator) with a later, empty call.
    last = replace(make_page([None] * 2, BASE_SEQUENCE), millis_behind_latest=0)
    end = empty(0, iterator=None)
    progress, stopped = read(rules(Position.trim_horizon(), closed=closed), [last, end])
    assert stopped and progress.records == 2
    if closed:
        assert progress.position.is_shard_end
    else:  # stops at the tip: the end waits for another read
        assert progress.position == Position.after(str(BASE_SEQUENCE + 7))


def test_a_capped_read_of_a_closed_shard_is_never_caught_up() -> None:
    capped = replace(rules(Position.trim_horizon(), closed=True), max_records=2)
    page = replace(make_page([None] * 2, BASE_SEQUENCE), millis_behind_latest=0)
    progress = Progress(position=capped.start)
    capped.consume(page, progress)
    assert progress.done and not progress.caught_up  # a backlog: its end is read next batch
