"""What the next batch reads, decided without I/O (docs/design.md section 2).

Each stream's planner (``stream_planner``) gathers the facts of its stream: where the last
batch ended, a fresh listing if one was due, which shards a probe found data on. These
functions turn the facts of every stream into the next offset; admission control shares
one row budget over all shards of all streams.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from kinesis_source.source.driver import admission
from kinesis_source.source.positions import Position, QueryOffset, ShardEnd, StreamOffset


@dataclass(frozen=True)
class StreamStep:
    """One stream's facts for the next batch: its positions once the last batch is read
    (shards found and finished applied), which of them can be read, which have data."""

    current: StreamOffset
    positions: Mapping[str, Position]
    readable: list[str]
    with_data: set[str]

    @property
    def shards_changed(self) -> bool:
        return self.positions.keys() != self.current.shards.keys()


def positions_after(current: StreamOffset, ends: Mapping[str, ShardEnd]) -> dict[str, Position]:
    """Each tracked shard's position once the batch ``current`` is read."""
    return {sid: ends[sid].position if sid in ends else pos for sid, pos in current.shards.items()}


def any_shard_ended(ends: Mapping[str, ShardEnd]) -> bool:
    """A shard was read to its end in this batch: its children may be readable now."""
    return any(end.position.is_shard_end for end in ends.values())


def with_backlog(
    readable: Iterable[str], ends: Mapping[str, ShardEnd], current: StreamOffset
) -> set[str]:
    """Shards whose last read stopped short of their data (a cap): no probe needed."""
    return {
        sid for sid in readable if sid in ends and sid in current.shards and not ends[sid].caught_up
    }


def reached_bound(bound_ms: int | None, until_ms: int | None) -> bool:
    """True if a read that stopped at ``bound_ms`` met this run's bound ``until_ms``."""
    return bound_ms is not None and until_ms is not None and bound_ms >= until_ms


def done_for_the_run(
    readable: Iterable[str], ends: Mapping[str, ShardEnd], until_ms: int | None
) -> set[str]:
    """Under Trigger.AvailableNow, the shards whose read met this run's bound."""
    return {
        sid
        for sid in readable
        if sid in ends and reached_bound(ends[sid].reached_bound_ms, until_ms)
    }


# Joins a stream and a shard into one admission key; "/" is in no stream name.
_SEP = "/"


def _per_stream(
    steps: Mapping[str, StreamStep], keyed: Mapping[str, int]
) -> dict[str, dict[str, int]]:
    """Admission's limits keyed by stream and shard apart again."""
    per_stream: dict[str, dict[str, int]] = {name: {} for name in steps}
    for key, limit in keyed.items():
        name, sid = key.split(_SEP, 1)
        per_stream[name][sid] = limit
    return per_stream


def next_offset(
    current: QueryOffset,
    steps: Mapping[str, StreamStep],
    budget: int | None,
    per_shard_cap: int | None,
    until_ms: int | None,
    byte_budget: int | None = None,
) -> QueryOffset | None:
    """The next batch's offset over the streams of ``steps``, or None: nothing to plan.

    A change of the shards or streams read is planned as a batch of its own even with no
    data, so that the next trigger starts from it rather than finding it all over again.
    """
    changed = steps.keys() != current.streams.keys() or any(
        step.shards_changed for step in steps.values()
    )
    if not any(step.with_data for step in steps.values()) and not changed:
        return None
    readable = [f"{name}{_SEP}{sid}" for name, step in steps.items() for sid in step.readable]
    with_data = {f"{name}{_SEP}{sid}" for name, step in steps.items() for sid in step.with_data}
    rotate = current.batch + 1
    limits = _per_stream(
        steps, admission.plan_limits(readable, with_data, budget, per_shard_cap, rotate)
    )
    byte_limits = _per_stream(steps, admission.plan_byte_limits(with_data, byte_budget, rotate))
    streams = {
        name: StreamOffset(
            shards=dict(step.positions),
            since_ms=step.current.since_ms,
            limits=limits[name],
            byte_limits=byte_limits[name],
        )
        for name, step in steps.items()
    }
    return QueryOffset(
        batch=current.batch + 1, query=current.query, streams=streams, until_ms=until_ms
    )
