"""What the next batch of one stream reads, decided without I/O (DESIGN.md section 2).

The planner (``stream_planner``) gathers the facts: where the last batch ended, a fresh
listing if one was due, which shards a probe found data on. These functions turn them into
the next offset.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from kinesis_source.source import admission
from kinesis_source.source.positions import Offset, Position, ShardEnd


def positions_after(current: Offset, ends: Mapping[str, ShardEnd]) -> dict[str, Position]:
    """Each tracked shard's position once the batch ``current`` is read."""
    return {sid: ends[sid].position if sid in ends else pos for sid, pos in current.shards.items()}


def any_shard_ended(ends: Mapping[str, ShardEnd]) -> bool:
    """A shard was read to its end in this batch: its children may be readable now."""
    return any(end.position.is_shard_end for end in ends.values())


def with_backlog(
    readable: Iterable[str], ends: Mapping[str, ShardEnd], current: Offset
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


def next_offset(
    current: Offset,
    positions: dict[str, Position],
    readable: list[str],
    with_data: set[str],
    budget: int | None,
    per_shard_cap: int,
    until_ms: int | None,
) -> Offset | None:
    """The next batch's offset, or None if there is nothing to plan.

    A shard change is planned as a batch of its own even with no data, so that the next
    trigger starts from it rather than finding (and listing) it all over again.
    """
    shards_changed = positions.keys() != current.shards.keys()
    if not with_data and not shards_changed:
        return None
    return Offset(
        batch=current.batch + 1,
        stream=current.stream,
        query=current.query,
        since_ms=current.since_ms,
        shards=positions,
        limits=admission.plan_limits(readable, with_data, budget, per_shard_cap, current.batch + 1),
        until_ms=until_ms,
    )
