"""Where a stream's reading starts: at a query's first batch, or when a later run adds the
stream to ``streamName``/``streamARN``. Pure: the listing and the leases come from outside.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from kinesis_source.source.driver.lineage import ShardInfo, advance_shards
from kinesis_source.source.driver.start_positions import resolve_shard_starts, start_shards
from kinesis_source.source.options import InitialPosition, KinesisOptions
from kinesis_source.source.positions import Position, StreamOffset


def initial_stream_offset(
    opts: KinesisOptions,
    stream: str,
    listing: Sequence[ShardInfo],
    now_ms: int,
    leases: Mapping[str, Position] | None = None,
) -> StreamOffset:
    """The positions of ``stream`` at its first batch.

    ``now_ms`` is what ``latest`` means, resolved once here so that a replay or a restart
    does not move it. ``leases`` are the KCL lease table's positions for this stream
    (``initialPosition=kcl``). With per-shard starts (JSON or KCL) ``sinceMs`` stays unset:
    shards found later descend from shards read from a known position, so they start at
    TRIM_HORIZON, which neither skips nor repeats a record.
    """
    kind = opts.initial_position
    if kind in (InitialPosition.SHARDS, InitialPosition.KCL):
        listed = [info.shard_id for info in listing]
        if kind is InitialPosition.SHARDS:
            named = opts.shard_starts.get(stream, {})
            given = resolve_shard_starts(stream, named, listed, now_ms)
        else:
            # A lease of a shard that has aged out of the stream has nothing left to read.
            given = {sid: pos for sid, pos in (leases or {}).items() if sid in set(listed)}
        default = (
            Position.trim_horizon()
            if opts.initial_position_default is InitialPosition.TRIM_HORIZON
            else Position.at_timestamp(now_ms)
        )
        return StreamOffset(shards=start_shards(listing, given, default))
    since_ms: int | None
    if kind is InitialPosition.TRIM_HORIZON:
        since_ms = None
    elif kind is InitialPosition.AT_TIMESTAMP:
        since_ms = opts.initial_timestamp_ms
    else:
        since_ms = now_ms
    start = StreamOffset(since_ms=since_ms)
    return StreamOffset(
        shards=advance_shards({}, listing, start.start_position_for_new_shard()),
        since_ms=since_ms,
    )


def changed_streams(tracked: Iterable[str], wanted: Sequence[str]) -> tuple[list[str], list[str]]:
    """(added, removed): streams of the options not yet in the offset, and streams of the
    offset no longer in the options, each sorted."""
    have = set(tracked)
    return sorted(set(wanted) - have), sorted(have - set(wanted))
