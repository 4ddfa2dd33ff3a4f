"""The next offset over several streams: one row budget for all shards, stream changes."""

from __future__ import annotations

from kinesis_source.source.driver.planning import StreamStep, next_offset
from kinesis_source.source.positions import Position, QueryOffset, StreamOffset

AT = Position.after("5")


def step(shards: list[str], with_data: set[str], since_ms: int | None = None) -> StreamStep:
    current = StreamOffset(dict.fromkeys(shards, AT), since_ms=since_ms)
    return StreamStep(current, dict.fromkeys(shards, AT), sorted(shards), with_data)


def test_one_budget_is_shared_by_the_shards_of_all_streams() -> None:
    current = QueryOffset(
        3,
        "q",
        {
            "a": StreamOffset(dict.fromkeys(["s0", "s1"], AT)),
            "b": StreamOffset(dict.fromkeys(["s0"], AT), since_ms=9),
        },
    )
    steps = {"a": step(["s0", "s1"], {"s0", "s1"}), "b": step(["s0"], {"s0"}, since_ms=9)}
    nxt = next_offset(current, steps, budget=7, per_shard_cap=100, until_ms=None)
    assert nxt is not None and nxt.batch == 4
    shares = {name: dict(s.limits) for name, s in nxt.streams.items()}
    assert sum(n for limits in shares.values() for n in limits.values()) == 7
    assert {name: set(limits) for name, limits in shares.items()} == {
        "a": {"s0", "s1"},
        "b": {"s0"},
    }
    assert nxt.streams["b"].since_ms == 9


def test_no_data_and_no_change_plans_nothing_but_a_dropped_stream_is_a_change() -> None:
    current = QueryOffset(3, "q", {"a": StreamOffset({"s0": AT}), "gone": StreamOffset({"s0": AT})})
    assert (
        next_offset(current, {"a": step(["s0"], set()), "gone": step(["s0"], set())}, None, 9, None)
        is None
    )
    nxt = next_offset(current, {"a": step(["s0"], set())}, None, 9, None)
    assert nxt is not None and list(nxt.streams) == ["a"]
    assert nxt.streams["a"].limits == {"s0": 0}
