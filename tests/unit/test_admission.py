"""Admission control, the AvailableNow bound and multi-shard tasks, without Spark or AWS."""

from __future__ import annotations

import json
import threading
from collections.abc import Generator
from typing import Any

import pyarrow as pa
import pytest
from pyspark.sql.streaming.datasource import ReadAllAvailable, ReadMaxBytes, ReadMaxRows

from kinesis_source.errors import OptionError
from kinesis_source.source.driver.admission import plan_byte_limits, plan_limits, split_budget
from kinesis_source.source.driver.planning import StreamStep, next_offset
from kinesis_source.source.executor import multi_shard
from kinesis_source.source.executor.shard_reader import _ShardRead
from kinesis_source.source.executor.stop_rules import first_arrival_after
from kinesis_source.source.options import KinesisOptions, parse_options
from kinesis_source.source.positions import Position, QueryOffset, ShardEnd, StreamOffset
from kinesis_source.source.stream_reader import budgets
from kinesis_source.source.tasks import ShardTask
from tests.pages import BASE_SEQUENCE, make_page

BASE = {"streamname": "orders", "region": "eu-west-1", "checkpointstore": "/tmp/store"}
SHARDS = [f"shardId-{i:012d}" for i in range(4)]


def test_the_limit_spark_passes_gives_the_budgets_and_read_all_available_none() -> None:
    assert budgets(ReadMaxRows(25), 25, None) == (25, None)
    assert budgets(ReadMaxBytes(4096), None, 4096) == (None, 4096)
    # Both options: Spark carries the rows, the bytes come from the option, and back.
    assert budgets(ReadMaxRows(25), 25, 4096) == (25, 4096)
    assert budgets(ReadMaxBytes(4096), 25, 4096) == (25, 4096)
    # Trigger.Once: neither budget.
    assert budgets(ReadAllAvailable(), 25, 4096) == (None, None)


def test_the_byte_budget_goes_to_shards_with_data_and_travels_in_the_offset() -> None:
    assert plan_byte_limits(SHARDS[1:3], 10_001, rotate=0) == {SHARDS[1]: 5001, SHARDS[2]: 5000}
    assert plan_byte_limits(SHARDS, None, 0) == {}
    step = StreamStep(
        StreamOffset({sid: Position.trim_horizon() for sid in SHARDS}),
        {sid: Position.trim_horizon() for sid in SHARDS},
        list(SHARDS),
        set(SHARDS[:3]),
    )
    current = QueryOffset(4, "q", {"s": step.current})
    nxt = next_offset(current, {"s": step}, 30, None, None, byte_budget=2)
    assert nxt is not None
    stream = nxt.streams["s"]
    # Both budgets split over the three shards with data; the byte shares rotate with the
    # batch. A shard whose byte share is 0 waits, as one whose row share is 0 does.
    assert stream.limits == {SHARDS[0]: 10, SHARDS[1]: 10, SHARDS[2]: 10, SHARDS[3]: 0}
    # Batch 5 over three shards: the remainder starts at index 5 % 3 = 2 and wraps.
    assert stream.byte_limits == {SHARDS[0]: 1, SHARDS[1]: 0, SHARDS[2]: 1}
    assert stream.planned_shards() == [SHARDS[0], SHARDS[2]]
    again = QueryOffset.from_json(json.loads(json.dumps(nxt.to_json())))
    assert again == nxt
    assert nxt.to_json()["streams"]["s"]["shards"][SHARDS[0]] == {
        "at": "TRIM_HORIZON",
        "limit": 10,
        "bytes": 1,
    }


def test_budget_splits_evenly_with_the_remainder_rotating() -> None:
    assert split_budget(10, SHARDS, rotate=0) == dict(zip(SHARDS, [3, 3, 2, 2], strict=True))
    assert split_budget(10, SHARDS, rotate=1) == dict(zip(SHARDS, [2, 3, 3, 2], strict=True))
    assert split_budget(10, SHARDS, rotate=3) == dict(zip(SHARDS, [3, 2, 2, 3], strict=True))
    assert split_budget(8, SHARDS, rotate=5) == dict.fromkeys(SHARDS, 2)


def test_a_budget_smaller_than_the_shards_gives_each_shard_its_turn() -> None:
    turns = [split_budget(1, SHARDS, rotate=batch) for batch in range(4)]
    assert [sum(t.values()) for t in turns] == [1, 1, 1, 1]
    assert {sid for t in turns for sid, n in t.items() if n} == set(SHARDS)


def test_limits_plan_only_shards_with_data_and_never_exceed_the_budget() -> None:
    limits = plan_limits(SHARDS, SHARDS[1:3], budget=7, per_shard_cap=100, rotate=0)
    assert limits == {SHARDS[0]: 0, SHARDS[1]: 4, SHARDS[2]: 3, SHARDS[3]: 0}
    capped = plan_limits(SHARDS, SHARDS, budget=1000, per_shard_cap=100, rotate=0)
    assert capped == dict.fromkeys(SHARDS, 100)
    # No budget: shards with data read up to the per-shard cap (no entry).
    assert plan_limits(SHARDS, SHARDS[:1], None, 100, 0) == dict.fromkeys(SHARDS[1:], 0)
    # No per-shard cap (the default): the budget's shares alone.
    shares = plan_limits(SHARDS, SHARDS, budget=1_000_001, per_shard_cap=None, rotate=0)
    assert shares == dict(zip(SHARDS, [250_001, 250_000, 250_000, 250_000], strict=True))
    assert plan_limits(SHARDS, SHARDS[:1], None, None, 0) == dict.fromkeys(SHARDS[1:], 0)


def test_limits_and_bound_travel_in_the_offset_json_in_a_fixed_order() -> None:
    stream = StreamOffset(
        shards={SHARDS[1]: Position.trim_horizon(), SHARDS[0]: Position.after("12")},
        limits={SHARDS[1]: 0, SHARDS[0]: 5},
    )
    offset = QueryOffset(batch=3, query="q", streams={"s": stream}, until_ms=1_790_000_000_123)
    data = offset.to_json()
    again = QueryOffset.from_json(json.loads(json.dumps(data))).to_json()
    assert json.dumps(data) == json.dumps(again)
    assert data["streams"]["s"]["shards"][SHARDS[0]] == {
        "at": "AFTER_SEQUENCE_NUMBER(12)",
        "limit": 5,
    }
    assert QueryOffset.from_json(data) == offset
    assert stream.planned_shards() == [SHARDS[0]]
    # An offset without limits or bound reads as before (existing checkpoints).
    plain = QueryOffset(1, "q", {"s": StreamOffset({SHARDS[0]: Position.trim_horizon()})})
    assert "untilMs" not in plain.to_json()
    assert plain.to_json()["streams"]["s"]["shards"][SHARDS[0]] == {"at": "TRIM_HORIZON"}


def test_shard_end_keeps_the_bound_it_reached() -> None:
    end = ShardEnd(Position.after("9"), 4, 0, True, reached_bound_ms=17)
    assert ShardEnd.from_json(end.to_json()) == end
    assert "reachedBoundMs" not in ShardEnd(Position.after("9"), 4, 0, True).to_json()


def test_new_options_parse_and_name_themselves_in_errors() -> None:
    opts = parse_options({**BASE, "maxrecordspertrigger": "500", "shardspertask": "3"}, env={})
    assert (opts.max_records_per_trigger, opts.shards_per_task) == (500, 3)
    assert parse_options({**BASE, "maxbytespertrigger": "1048576"}, env={}).max_bytes_per_trigger
    with pytest.raises(OptionError, match="maxBytesPerTrigger"):
        parse_options({**BASE, "maxbytespertrigger": "0"}, env={})
    default = parse_options(BASE, env={})
    assert (default.max_records_per_trigger, default.shards_per_task) == (None, 1)
    with pytest.raises(OptionError, match="maxRecordsPerTrigger.*integer >= 1"):
        parse_options({**BASE, "maxrecordspertrigger": "0"}, env={})
    with pytest.raises(OptionError, match="shardsPerTask.*integer >= 1"):
        parse_options({**BASE, "shardspertask": "many"}, env={})


def bounded_read(cap: int, until_ms: int | None) -> _ShardRead:
    opts = KinesisOptions(
        stream_name="s",
        region="us-east-1",
        checkpoint_store="unused",
        endpoint_url="http://127.0.0.1:9",
        get_records_limit=100,
    )
    task = ShardTask(
        batch=1,
        stream="s",
        query="q",
        shard_id="shardId-0",
        start=Position.trim_horizon(),
        max_records=cap,
        until_ms=until_ms,
    )
    return _ShardRead(opts, task, stop=None)


def test_a_fresh_read_stops_before_the_first_record_after_the_bound() -> None:
    page = make_page([None] * 6, BASE_SEQUENCE)  # arrivals 1_700_000_000_000_000 + i us
    assert first_arrival_after(page, 1_699_999_999_999, 6) == 0
    assert first_arrival_after(page, 1_700_000_000_000, 6) == 6
    read = bounded_read(cap=100, until_ms=1_699_999_999_999)
    assert read._consume(page) == (0, 0)
    assert read.progress.reached_bound and read.progress.caught_up and read.progress.done


def test_the_task_limit_replaces_the_shard_cap_and_an_exact_fit_is_caught_up() -> None:
    read = bounded_read(cap=4, until_ms=None)
    assert read._consume(make_page([None] * 6, BASE_SEQUENCE)) == (0, 4)
    assert read.progress.done and not read.progress.caught_up
    exact = bounded_read(cap=6, until_ms=None)
    assert exact._consume(make_page([None] * 6, BASE_SEQUENCE)) == (0, 6)
    assert exact.progress.done and exact.progress.caught_up


class FakeShards:
    """Stands in for read_shard: two batches per shard, then "records" the end."""

    def __init__(self, fail: str | None = None) -> None:
        self.recorded: list[str] = []
        self.fail = fail
        self.lock = threading.Lock()

    def __call__(self, opts: Any, store: Any, task: ShardTask) -> Generator[pa.RecordBatch]:
        for i in range(2):
            if task.shard_id == self.fail and i == 1:
                raise RuntimeError(f"{task.shard_id} broke")
            yield pa.RecordBatch.from_pydict({"shard": [task.shard_id], "i": [i]})
        with self.lock:
            self.recorded.append(task.shard_id)


def tasks(n: int) -> list[ShardTask]:
    return [ShardTask(1, "s", "q", SHARDS[i], Position.trim_horizon()) for i in range(n)]


def test_several_shards_per_task_yield_every_batch_then_record_each_end(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = FakeShards()
    monkeypatch.setattr(multi_shard, "read_shard", fake)
    batches = multi_shard.read_shards(None, None, tasks(3))  # type: ignore[arg-type]
    rows = sorted((b.column("shard")[0].as_py(), b.column("i")[0].as_py()) for b in batches)
    assert rows == [(s, i) for s in SHARDS[:3] for i in (0, 1)]
    assert sorted(fake.recorded) == SHARDS[:3]


def test_a_task_closed_early_records_no_end_of_an_unfinished_shard(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = FakeShards()
    monkeypatch.setattr(multi_shard, "read_shard", fake)
    reader = multi_shard.read_shards(None, None, tasks(3))  # type: ignore[arg-type]
    next(reader)
    reader.close()
    # A shard's end is recorded only after its second batch was yielded: none was.
    assert fake.recorded == []


def test_one_failing_shard_fails_the_task(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeShards(fail=SHARDS[1])
    monkeypatch.setattr(multi_shard, "read_shard", fake)
    with pytest.raises(RuntimeError, match=f"{SHARDS[1]} broke"):
        list(multi_shard.read_shards(None, None, tasks(3)))  # type: ignore[arg-type]
    assert SHARDS[1] not in fake.recorded
