"""The stop rules of a shard read, decided page by page without I/O: no emulator, no
boto3 client, no Spark. The slicing of each page is pinned in ``test_consume``; these pin
when a read ends and what it then says about the shard."""

from __future__ import annotations

import random
from dataclasses import replace
from itertools import accumulate

import pytest

from kinesis_source.errors import KinesisReadError
from kinesis_source.source.executor.stop_rules import Progress, StopRules, bytes_allowed
from kinesis_source.source.positions import Position
from tests.pages import BASE_SEQUENCE, make_page

WHERE = {"stream": "s", "shard_id": "shardId-0", "batch": 4}


def fresh(cap: int | None = 1000, max_fetch_ms: int = 60_000, page_limit: int = 10) -> StopRules:
    return StopRules.for_read(
        Position.trim_horizon(),
        None,
        task_max_records=None,
        max_records_per_shard=cap,
        until_ms=None,
        max_fetch_ms=max_fetch_ms,
        page_limit=page_limit,
    )


def replay(stop: Position, start: Position | None = None) -> StopRules:
    return StopRules.for_read(
        start or Position.trim_horizon(),
        stop,
        task_max_records=3,
        max_records_per_shard=3,
        until_ms=1,
        max_fetch_ms=0,
        page_limit=10,
    )


def consumed(rules: StopRules, page_units: int, **page_fields: object) -> tuple[Progress, bool]:
    """Consume one page of ``page_units`` plain records; (progress, read stops)."""
    page = replace(make_page([None] * page_units, BASE_SEQUENCE), **page_fields)
    progress = Progress(position=rules.start)
    rules.consume(page, progress)
    return progress, rules.stops_after(page, progress, 0.0, **WHERE)


def test_a_page_short_of_the_limit_at_the_tip_is_caught_up() -> None:
    progress, stops = consumed(fresh(), 3)
    assert stops and progress.caught_up and progress.records == 3
    assert progress.position == Position.after(str(BASE_SEQUENCE + 14))


def test_a_full_page_at_the_tip_may_hide_more_records() -> None:
    progress, stops = consumed(fresh(page_limit=3), 3)
    assert not stops and not progress.caught_up


def test_an_event_has_no_page_limit_at_the_tip() -> None:
    # An EFO read that may fall back to GetRecords gets the GetRecords limit; an event (a
    # page with a continuation) holding that many records is still the tip.
    last = str(BASE_SEQUENCE + 14)
    progress, stops = consumed(fresh(page_limit=3), 3, continuation=last)
    assert stops and progress.caught_up and progress.position == Position.after(last)


def test_a_page_behind_the_tip_reads_on() -> None:
    progress, stops = consumed(fresh(), 3, millis_behind_latest=5_000)
    assert not stops and not progress.caught_up


def test_a_closed_shard_ends_the_read_at_shard_end() -> None:
    progress, stops = consumed(fresh(), 2, next_shard_iterator=None)
    assert stops and progress.caught_up and progress.done
    assert progress.position.is_shard_end and progress.records == 2


def test_max_fetch_time_stops_a_read_that_is_behind_without_calling_it_caught_up() -> None:
    rules = fresh(max_fetch_ms=500)
    page = replace(make_page([None] * 2, BASE_SEQUENCE), millis_behind_latest=9_000)
    progress = Progress(position=rules.start)
    rules.consume(page, progress)
    assert not rules.stops_after(page, progress, 0.499, **WHERE)
    assert rules.stops_after(page, progress, 0.5, **WHERE)
    assert not progress.caught_up and progress.records == 2


def test_the_cap_stops_the_read_mid_page() -> None:
    progress, stops = consumed(fresh(cap=2), 5, millis_behind_latest=5_000)
    assert stops and progress.done and not progress.caught_up and progress.records == 2


def test_without_a_cap_a_read_takes_whole_pages_until_its_time_is_up() -> None:
    # The default (no maxRecordsPerShard): a backlog is read until maxFetchTimeMs, however
    # many records that is, and the read is then not caught up.
    rules = fresh(cap=None, max_fetch_ms=500, page_limit=10_000)
    progress = Progress(position=rules.start)
    for first in range(0, 50_000, 10_000):
        records = make_page([None] * 10_000, BASE_SEQUENCE + 7 * first)
        page = replace(records, millis_behind_latest=1)
        assert rules.consume(page, progress) == (0, 10_000)
        assert rules.units_left(progress) is None
        assert not rules.stops_after(page, progress, 0.4, **WHERE)
    assert progress.records == 50_000 and not progress.done
    assert rules.stops_after(page, progress, 0.5, **WHERE)
    assert not progress.caught_up
    assert progress.position == Position.after(str(BASE_SEQUENCE + 7 * 49_999))


def test_a_replay_ignores_every_limit_and_reads_to_the_recorded_end() -> None:
    rules = replay(stop=Position.after(str(BASE_SEQUENCE + 7 * 4)))
    assert (rules.max_records, rules.until_ms) == (None, None)
    page = make_page([None] * 8, BASE_SEQUENCE)
    progress = Progress(position=rules.start)
    assert rules.consume(page, progress) == (0, 5)
    assert rules.stops_after(page, progress, 10.0, **WHERE)
    assert progress.position == rules.stop and progress.records == 5


def test_a_replay_whose_data_ran_out_before_the_recorded_end_fails() -> None:
    rules = replay(stop=Position.after(str(BASE_SEQUENCE + 700)))
    page = make_page([], BASE_SEQUENCE)
    with pytest.raises(KinesisReadError, match="replay of batch 4 on shard shardId-0") as err:
        rules.stops_after(page, Progress(position=rules.start), 0.0, **WHERE)
    assert (err.value.stream, err.value.shard_id) == ("s", "shardId-0")
    assert err.value.sequence_number == str(BASE_SEQUENCE + 700)


def test_a_replay_reads_on_past_pages_short_of_the_recorded_end() -> None:
    rules = replay(stop=Position.after(str(BASE_SEQUENCE + 700)))
    page = make_page([None] * 2, BASE_SEQUENCE)
    progress = Progress(position=rules.start)
    rules.consume(page, progress)
    assert not rules.stops_after(page, progress, 1e9, **WHERE)


def test_a_replay_of_a_batch_that_read_nothing_reads_nothing() -> None:
    start = Position.after(str(BASE_SEQUENCE))
    assert replay(stop=start, start=start).nothing_to_read()
    assert not fresh().nothing_to_read()


def test_the_batch_limit_replaces_the_shard_cap() -> None:
    rules = StopRules.for_read(
        Position.trim_horizon(),
        None,
        task_max_records=7,
        max_records_per_shard=1000,
        until_ms=None,
        max_fetch_ms=1,
        page_limit=None,
    )
    assert rules.max_records == 7


@pytest.mark.parametrize(
    "rules",
    [
        fresh(),
        fresh(page_limit=3),
        fresh(cap=2),
        fresh(cap=3),
        replay(stop=Position.after(str(BASE_SEQUENCE + 7 * 4))),
        replay(stop=Position.after(str(BASE_SEQUENCE + 700))),
    ],
    ids=["fresh", "full-page-limit", "cap-mid-page", "cap-at-page-end", "replay-ends", "replay"],
)
@pytest.mark.parametrize("units", [0, 2, 3, 8])
@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"millis_behind_latest": 5_000},
        {"next_shard_iterator": None},
        {"continuation": str(BASE_SEQUENCE + 14)},
    ],
    ids=["at-tip", "behind", "closed", "event"],
)
def test_reads_on_after_is_stops_after_with_time_to_spare(
    rules: StopRules, units: int, fields: dict[str, object]
) -> None:
    # The read starts the next call early (read-ahead) on reads_on_after's word: it must
    # say "reads on" exactly where stops_after, with time left, would not stop.
    page = replace(make_page([None] * units, BASE_SEQUENCE), **fields)
    progress = Progress(position=rules.start)
    rules.consume(page, progress)
    reads_on = rules.reads_on_after(page, replace(progress))
    try:
        stops = rules.stops_after(page, progress, 0.0, **WHERE)
    except KinesisReadError:
        stops = True  # a replay whose data ran out fails: no call after it either
    assert reads_on == (not stops)


def units_by_loop(sizes: list[int], left: int, first_goes: bool) -> int | None:
    """The byte cap decided unit by unit, as the read did before ``bytes_allowed``."""
    taken = fits = 0
    for size in sizes:
        if taken + size > left and (fits or not first_goes):
            break
        taken += size
        fits += 1
    return fits if fits < len(sizes) or taken >= left else None


@pytest.mark.parametrize("seed", range(40))
def test_the_byte_cap_by_binary_search_is_the_loop_over_units(seed: int) -> None:
    rng = random.Random(seed)
    sizes = [rng.choice([0, 1, 5, rng.randrange(300)]) for _ in range(rng.randrange(1, 30))]
    left = rng.choice([0, 1, rng.randrange(sum(sizes) + 10)])
    first_goes = rng.random() < 0.5
    want = units_by_loop(sizes, left, first_goes)
    assert bytes_allowed(list(accumulate(sizes)), left, first_goes=first_goes) == want


def test_a_first_unit_larger_than_the_cap_goes_alone() -> None:
    assert bytes_allowed([500, 600], 100, first_goes=True) == 1
    assert bytes_allowed([500, 600], 100, first_goes=False) == 0


def test_a_cap_met_exactly_ends_the_read_there() -> None:
    assert bytes_allowed([100, 200, 300], 200, first_goes=False) == 2
    assert bytes_allowed([100, 200], 200, first_goes=False) == 2
    assert bytes_allowed([100, 200], 250, first_goes=False) is None
