"""Shard lineage: which shards a batch may read, decided without any I/O.

Rules (docs/design.md sections 2 and 4, the KCL's and Flink's parent-before-child order):

- A shard is tracked (and read) only once every parent that is still listed is finished,
  i.e. a read of it reached ``SHARD_END``. A parent that is no longer listed has expired
  and counts as finished. So a stream's roots are tracked first.
- A closed shard is finished only when a read reaches its end, never because ListShards
  shows it closed: its unread tail would be lost.
- A finished shard stays tracked until all its children are tracked. After that, being an
  ancestor of a tracked shard is what marks it finished: it is never tracked again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from kinesis_source.source.positions import Position
from kinesis_source.source.shard_range import ShardRange


@dataclass(frozen=True)
class ShardInfo:
    shard_id: str
    parents: tuple[str, ...] = ()
    # Its sequence-number and hash-key ranges (None: not known, as in hand-made listings).
    range: ShardRange | None = None
    # ListShards shows an EndingSequenceNumber: the shard takes no more records.
    closed: bool = False

    @staticmethod
    def from_api(shard: Mapping[str, Any]) -> ShardInfo:
        parents = tuple(
            str(shard[key]) for key in ("ParentShardId", "AdjacentParentShardId") if shard.get(key)
        )
        sequences = shard.get("SequenceNumberRange") or {}
        closed = bool(sequences.get("EndingSequenceNumber"))
        return ShardInfo(str(shard["ShardId"]), parents, ShardRange.from_api(shard), closed)

    @property
    def resent_copies_range(self) -> ShardRange | None:
        """The hash-key range outside which a KPL aggregate's user records on this shard are
        copies sent again elsewhere (dropped, as the KCL drops them), or None: keep them all.

        A shard-aware producer (the KPL, our sink) packs an aggregate for one shard's range;
        its user records can fall outside the shard it lands on only when a split moved part
        of that range to a sibling after the aggregate was packed, and then the producer
        sends them again to their own shard. So only a shard with parents can hold such
        copies. Elsewhere an aggregate's user records outside the range come from a producer
        that packs any keys together (aws_kinesis_agg's plain aggregator): the only copy,
        which dropping would lose."""
        return self.range if self.parents else None


def advance_shards(
    tracked: Mapping[str, Position],
    listing: Iterable[ShardInfo] | None,
    new_shard_start: Position,
) -> dict[str, Position]:
    """Tracked shards after applying a fresh shard listing.

    ``listing`` is None when no discovery ran this time: then nothing is added or dropped.
    New shards start at ``new_shard_start`` (TRIM_HORIZON, or the query's start time).
    """
    result = dict(tracked)
    if listing is None:
        return result
    listed = {info.shard_id: info for info in listing}
    # Untracked ancestors of tracked shards were finished and dropped earlier.
    done = _ancestors(tracked, listed) | {sid for sid, pos in tracked.items() if pos.is_shard_end}

    for sid, info in listed.items():
        if sid in result or sid in done:
            continue
        if all(p in done for p in info.parents if p in listed):
            result[sid] = new_shard_start

    children: dict[str, list[str]] = {}
    for info in listed.values():
        for parent in info.parents:
            children.setdefault(parent, []).append(info.shard_id)
    for sid, pos in tracked.items():
        if not pos.is_shard_end:
            continue
        kids = children.get(sid, [])
        if sid not in listed or (kids and all(kid in result for kid in kids)):
            del result[sid]
    return result


def _ancestors(tracked: Mapping[str, Position], listed: Mapping[str, ShardInfo]) -> set[str]:
    """Every listed shard reachable from a tracked shard by parent links (tracked excluded)."""
    seen: set[str] = set()
    stack = [p for sid in tracked if sid in listed for p in listed[sid].parents]
    while stack:
        sid = stack.pop()
        if sid in seen or sid in tracked or sid not in listed:
            continue
        seen.add(sid)
        stack.extend(listed[sid].parents)
    return seen


def readable_shards(tracked: Mapping[str, Position]) -> list[str]:
    """Tracked shards that still have records to read, sorted by shard id."""
    return sorted(sid for sid, pos in tracked.items() if not pos.is_shard_end)
