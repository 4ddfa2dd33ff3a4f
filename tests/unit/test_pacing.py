"""Which shards a trigger probes, which it reads without a probe, and when a shard may be
called again: ``source/driver/pacing.py``, without Spark or AWS."""

from __future__ import annotations

import math

import pytest

from kinesis_source.errors import OptionError
from kinesis_source.source.driver.pacing import (
    ShardPacing,
    held_by_quota,
    is_due,
    launch_order,
    not_before_ms,
    probe_order,
)
from kinesis_source.source.executor.get_records import call_gap_s
from kinesis_source.source.options import parse_options
from kinesis_source.source.positions import Position, ShardEnd

SHARDS = [f"shardId-{i:012d}" for i in range(10)]
BASE = {"streamname": "orders", "region": "eu-west-1", "checkpointstore": "store"}


def end(records: int, written_at_ms: int, caught_up: bool = True) -> ShardEnd:
    return ShardEnd(Position.after(str(100 + records)), records, 0, caught_up, written_at_ms)


def test_a_shard_is_due_an_interval_after_its_last_call() -> None:
    assert is_due(None, 1_000, 200)
    assert not is_due(900, 1_000, 200)
    assert is_due(800, 1_000, 200)
    assert is_due(1_000, 1_000, 0)


def test_the_budget_probes_never_called_shards_first_then_the_least_recently_called() -> None:
    last = {SHARDS[0]: 500, SHARDS[1]: 100, SHARDS[2]: 300}
    order = probe_order(SHARDS[:5], last, 10_000, 200, budget=4)
    assert order == [SHARDS[3], SHARDS[4], SHARDS[1], SHARDS[2]]


def test_shards_called_within_the_interval_are_not_probed() -> None:
    last = {SHARDS[0]: 9_900, SHARDS[1]: 9_700}
    assert probe_order(SHARDS[:3], last, 10_000, 200, budget=10) == [SHARDS[2], SHARDS[1]]


def test_every_idle_shard_is_probed_within_ceil_shards_over_budget_triggers() -> None:
    """A rotation: with 10 idle shards and 3 probes a trigger, each is probed at least once
    in every 4 triggers, and the probes of one trigger are never repeated the next."""
    pacing, budget, now = ShardPacing(), 3, 0
    probed_at: dict[str, list[int]] = {sid: [] for sid in SHARDS}
    for trigger in range(12):
        now += 1_000
        todo = probe_order(SHARDS, pacing.last_call_ms, now, 200, budget)
        assert len(todo) == budget
        pacing.saw_probes(todo, found=(), at_ms=now)
        for sid in todo:
            probed_at[sid].append(trigger)
    bound = math.ceil(len(SHARDS) / budget)
    for triggers in probed_at.values():
        gaps = [b - a for a, b in zip([-1, *triggers], [*triggers, 12], strict=True)]
        assert max(gaps) <= bound


def test_reads_that_may_call_at_once_go_to_spark_first_and_waiting_ones_soonest_due_first() -> None:
    # Spark starts a stage's tasks in partition order: a read that sleeps until its shard is
    # due would hold a slot that a ready read could use.
    not_before = [1_300, None, 1_100, None, 1_300, 1_200]
    order = launch_order(not_before)
    assert order == [1, 3, 2, 5, 0, 4]
    assert sorted(order) == list(range(len(not_before)))  # every read once
    assert launch_order([]) == []


def test_a_read_planned_within_the_interval_waits_for_the_rest_of_it() -> None:
    assert not_before_ms(1_000, 1_050, 200) == 1_200
    assert not_before_ms(1_000, 1_300, 200) is None
    assert not_before_ms(None, 1_050, 200) is None
    assert not_before_ms(1_000, 1_050, 0) is None


def test_the_last_batch_reads_count_as_calls_once_per_batch() -> None:
    pacing = ShardPacing()
    ends = {SHARDS[0]: end(5, 2_000), SHARDS[1]: end(0, 2_100)}
    pacing.saw_batch(7, ends)
    pacing.saw_batch(7, ends)  # the next trigger reads the same ends again
    assert pacing.last_call_ms == {SHARDS[0]: 2_000, SHARDS[1]: 2_100}
    assert pacing.found_in_a_row == {SHARDS[0]: 1, SHARDS[1]: 0}
    assert pacing.due(SHARDS[:2], 2_250, 200) == {SHARDS[0]}
    assert pacing.not_before_ms(SHARDS[1], 2_250, 200) == 2_300


def test_a_shard_flows_after_two_reads_in_a_row_found_records() -> None:
    pacing = ShardPacing()
    pacing.saw_batch(1, {SHARDS[0]: end(5, 1_000), SHARDS[1]: end(5, 1_000)})
    # One read that found records is not enough: a backlog put before the start does that.
    assert pacing.flowing(SHARDS[:2]) == set()
    pacing.saw_batch(2, {SHARDS[0]: end(3, 1_300), SHARDS[1]: end(0, 1_300)})
    assert pacing.flowing(SHARDS[:2]) == {SHARDS[0]}
    # A shard not read in a batch keeps its count; a read that finds nothing resets it.
    pacing.saw_batch(3, {SHARDS[1]: end(0, 1_600)})
    assert pacing.flowing(SHARDS[:2]) == {SHARDS[0]}
    pacing.saw_batch(4, {SHARDS[0]: end(0, 1_900)})
    assert pacing.flowing(SHARDS[:2]) == set()


def test_a_flowing_shard_not_yet_due_is_planned_and_its_read_waits_for_the_rest() -> None:
    """A flowing shard left out until due would wait for a later trigger: read every
    trigger interval rounded up past fetchIntervalMs (300 ms at a 100 ms trigger, where
    the gap allows 200), and a record would wait that much longer for its read."""
    pacing = ShardPacing()
    for batch in (1, 2):
        pacing.saw_batch(batch, {SHARDS[0]: end(5, 1_000 * batch), SHARDS[1]: end(5, 1_900)})
    # SHARDS[0] was read 50 ms ago, SHARDS[1] 150 ms ago: both planned now, each read held
    # back until its shard is due, so calls stay fetchIntervalMs apart.
    assert pacing.flowing_to_read(SHARDS[:2], 2_050, 200) == {SHARDS[0], SHARDS[1]}
    assert pacing.not_before_ms(SHARDS[0], 2_050, 200) == 2_200
    assert pacing.not_before_ms(SHARDS[1], 2_050, 200) == 2_100


def test_a_flowing_shard_whose_read_quota_is_spent_waits_for_a_later_trigger() -> None:
    pacing = ShardPacing()
    big = ShardEnd(Position.after("105"), 5, 0, True, 2_000, quota_wait_ms=1_000)
    pacing.saw_batch(1, {SHARDS[0]: end(5, 1_000), SHARDS[1]: end(5, 1_000)})
    pacing.saw_batch(2, {SHARDS[0]: big, SHARDS[1]: end(5, 2_000)})
    # SHARDS[0]'s next call is 1.2 s away: a task would sleep in its slot that long.
    assert pacing.flowing_to_read(SHARDS[:2], 2_050, 200) == {SHARDS[1]}
    assert pacing.flowing_to_read(SHARDS[:2], 3_050, 200) == {SHARDS[0], SHARDS[1]}


def test_reads_that_stopped_at_a_cap_are_a_backlog_not_a_flow() -> None:
    """A backlog read in capped batches ends caught up once: no batch on a guess after it."""
    pacing = ShardPacing()
    for batch in (1, 2, 3):
        pacing.saw_batch(batch, {SHARDS[0]: end(5, 1_000, caught_up=False)})
    pacing.saw_batch(4, {SHARDS[0]: end(5, 1_000)})
    assert pacing.flowing(SHARDS[:1]) == set()
    pacing.saw_batch(5, {SHARDS[0]: end(5, 1_300)})
    assert pacing.flowing(SHARDS[:1]) == {SHARDS[0]}


def test_a_probe_that_finds_nothing_stops_a_shard_flowing() -> None:
    pacing = ShardPacing()
    for batch in (1, 2):
        pacing.saw_batch(batch, {SHARDS[0]: end(5, 1_000 * batch), SHARDS[1]: end(5, 1_000)})
    pacing.saw_probes([SHARDS[0], SHARDS[1]], found=[SHARDS[1]], at_ms=3_000)
    assert pacing.flowing(SHARDS[:2]) == {SHARDS[1]}
    assert pacing.last_call_ms == {SHARDS[0]: 3_000, SHARDS[1]: 3_000}


def test_a_read_to_the_shard_end_does_not_flow_and_untracked_shards_are_forgotten() -> None:
    pacing = ShardPacing()
    closed = ShardEnd(Position.shard_end(), 4, 0, True, 1_000)
    for batch in (1, 2):
        pacing.saw_batch(batch, {SHARDS[0]: closed, SHARDS[1]: end(2, 1_000)})
    assert pacing.flowing(SHARDS[:2]) == {SHARDS[1]}
    assert SHARDS[0] not in pacing.flowing(SHARDS[:1])
    pacing.forget_except([SHARDS[1]])
    assert set(pacing.last_call_ms) == set(pacing.found_in_a_row) == {SHARDS[1]}


def test_max_probes_per_trigger_parses_and_names_itself_in_errors() -> None:
    assert parse_options(BASE, env={}).max_probes_per_trigger == 200
    assert parse_options({**BASE, "maxprobespertrigger": "50"}, env={}).max_probes_per_trigger == 50
    with pytest.raises(OptionError, match="maxProbesPerTrigger.*integer >= 1"):
        parse_options({**BASE, "maxprobespertrigger": "0"}, env={})


def test_an_executor_clock_seconds_ahead_holds_no_probe_or_read_back() -> None:
    # The store stamps writtenAtMs on the executor's clock, 5 s ahead of the driver's.
    driver_now, skew, interval = 10_000, 5_000, 200
    pacing = ShardPacing()
    pacing.saw_batch(1, {SHARDS[0]: end(0, driver_now + skew)}, driver_now)
    later = driver_now + interval
    assert probe_order([SHARDS[0]], pacing.last_call_ms, later, interval, 10) == [SHARDS[0]]
    assert pacing.not_before_ms(SHARDS[0], later, interval) is None
    # A clock behind the driver's is taken as it is: the shard is due that much sooner.
    pacing.saw_batch(2, {SHARDS[1]: end(0, driver_now - skew)}, driver_now)
    assert pacing.last_call_ms[SHARDS[1]] == driver_now - skew


def test_a_large_page_spaces_the_next_call_by_the_read_quota_it_spent() -> None:
    mib = 1024 * 1024
    # [GR]: 10 MiB at 2 MiB/s keeps the shard's calls out for 5 s.
    assert call_gap_s(0.2, 10 * mib) == 5.0
    assert call_gap_s(0.2, mib) == 0.5
    # A small page: the interval is the longer wait.
    assert call_gap_s(0.2, 100_000) == 0.2
    # fetchIntervalMs=0: no pacing at all.
    assert call_gap_s(0.0, 10 * mib) == 0.0


def test_a_read_quota_wait_holds_the_next_probe_and_read_back_by_as_much() -> None:
    pacing = ShardPacing()
    spent = ShardEnd(Position.after("105"), 5, 1_000, False, 2_000, quota_wait_ms=1_300)
    pacing.saw_batch(3, {SHARDS[0]: spent, SHARDS[1]: end(5, 2_000, caught_up=False)})
    # Its next call no sooner than 2,000 + 1,300 + the interval.
    assert pacing.not_before_ms(SHARDS[0], 2_100, 200) == 3_500
    assert pacing.due(SHARDS[:2], 2_300, 200) == {SHARDS[1]}
    # Planned now its read would sleep in a task slot for 1.4 s: held until it is due.
    assert held_by_quota(SHARDS[:2], pacing.last_call_ms, 2_100, 200) == {SHARDS[0]: 1_400}
    assert held_by_quota(SHARDS[:2], pacing.last_call_ms, 3_400, 200) == {}
    # An executor's wait beyond what one page can ask (10 MiB: 5 s) is not believed.
    wild = ShardEnd(Position.after("105"), 5, 0, False, 2_000, quota_wait_ms=60_000)
    pacing.saw_batch(4, {SHARDS[2]: wild})
    assert pacing.last_call_ms[SHARDS[2]] == 7_000


def test_the_read_quota_wait_travels_in_the_recorded_end() -> None:
    spent = ShardEnd(Position.after("105"), 5, 1_000, False, quota_wait_ms=1_300)
    assert spent.to_json()["quotaWaitMs"] == 1_300
    assert ShardEnd.from_json(spent.to_json()).quota_wait_ms == 1_300
    assert "quotaWaitMs" not in end(5, 2_000).to_json()
