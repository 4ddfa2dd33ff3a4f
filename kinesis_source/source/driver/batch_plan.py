"""A batch read's plan: which shards it reads, from where and to where, decided without I/O.

The input is each stream's listing (every shard ListShards gives, closed ones too), the
starts, the per-shard ends and the time the read is planned; the output is one
``ShardSpan`` per shard that may hold records of the range (docs/design.md section 19):

- Every record lives in exactly one shard, so reading each shard once, from its start to
  its end, returns each record of the range once, across a reshard too: a parent and its
  children are read side by side (a DataFrame has no order between partitions; a shard's
  rows come in its order).
- Starts: ``trim_horizon`` and ``at_timestamp`` start every shard there. Per-shard starts
  (JSON, a KCL lease table) follow the stream's rules (``start_positions.start_shards``):
  a shard with a position of its own starts there (``SHARD_END``: not read), its ancestors
  are not read (their records all come before it), a shard descended from one of those
  starts at ``TRIM_HORIZON``, and the rest at ``initialPositionDefault``.
- Ends: every read stops before the first record that arrived after the arrival bound
  (``arrival_bound``: the time the read is planned, or ``endingTimestamp`` if earlier), at
  the shard's end, or at the tip. A shard the ``endingPosition`` JSON names ends there too
  (a through mark, ``through``), and its descendants are not read: their records all come
  after its end.
- An end before a shard's start is an error naming both; an end at the start is an empty
  range, not read.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from kinesis_source.errors import OptionError
from kinesis_source.source.driver.lineage import ShardInfo
from kinesis_source.source.driver.start_positions import ShardStart, resolve_shard_starts
from kinesis_source.source.options import InitialPosition, KinesisOptions
from kinesis_source.source.positions import (
    AFTER_SEQUENCE_NUMBER,
    AT_SEQUENCE_NUMBER,
    Position,
)

# A user record's place for comparisons: (sequence number, sub-sequence number), a whole
# record counting as past all of its sub-sequence numbers.
_WHOLE = float("inf")
Mark = tuple[int, float]


@dataclass(frozen=True)
class ShardSpan:
    """One shard's part of a batch read."""

    shard_id: str
    start: Position
    # The last user record of the range, as AFTER_SEQUENCE_NUMBER(seq[,sub]); None: the
    # shard's end, its tip or the arrival bound, whichever comes first.
    end: Position | None = None


def arrival_bound(plan_ms: int, ending_timestamp_ms: int | None) -> int:
    """The newest arrival time (whole epoch ms, inclusive) a batch read returns.

    The time the read is planned, so that what it returns is fixed then: records that
    arrive later are never in it, whichever action or task attempt reads. With an
    ``endingTimestamp`` (exclusive) in the past, the millisecond before it.
    """
    if ending_timestamp_ms is None:
        return plan_ms
    return min(plan_ms, ending_timestamp_ms - 1)


def check_start_time(initial_timestamp_ms: int | None, bound_ms: int) -> None:
    """An ``at_timestamp`` start after the arrival bound is a range that ends before it
    starts: an error naming both."""
    if initial_timestamp_ms is not None and initial_timestamp_ms > bound_ms + 1:
        raise OptionError(
            "initialTimestamp",
            f"is {initial_timestamp_ms} epoch ms, after the read's end ({bound_ms + 1} epoch "
            "ms: endingTimestamp, or the time the read was planned for endingPosition=latest "
            "or JSON): the start of a range must be at or before its end",
        )


def through(end: ShardStart) -> Position:
    """The last user record an ``endingPosition`` JSON entry keeps: ``AT_SEQUENCE_NUMBER``
    ends before the record (sequence numbers are integers: through the one before),
    ``AFTER_SEQUENCE_NUMBER`` after it (or after its user record ``subSequenceNumber``)."""
    assert end.sequence is not None
    if end.iterator_type == AT_SEQUENCE_NUMBER:
        return Position.after(str(int(end.sequence) - 1))
    return Position.after(end.sequence, end.sub)


def stream_starts(
    opts: KinesisOptions,
    stream: str,
    listing: Sequence[ShardInfo],
    leases: Mapping[str, Position] | None,
) -> dict[str, Position]:
    """Where each shard of ``stream`` starts; shards left out hold no record of the range.

    ``trim_horizon`` and ``at_timestamp`` start every shard there; JSON and a KCL lease
    table (``leases``) start the shards they name, and the others by ``per_shard_starts``.
    """
    kind = opts.initial_position
    if kind is InitialPosition.AT_TIMESTAMP:
        assert opts.initial_timestamp_ms is not None
        return {info.shard_id: Position.at_timestamp(opts.initial_timestamp_ms) for info in listing}
    if kind not in (InitialPosition.SHARDS, InitialPosition.KCL):
        return {info.shard_id: Position.trim_horizon() for info in listing}
    listed = [info.shard_id for info in listing]
    if kind is InitialPosition.SHARDS:
        # A batch read refuses LATEST starts (batch_options), so no time is needed here.
        given = resolve_shard_starts(stream, opts.shard_starts.get(stream, {}), listed, 0)
    else:
        # A lease of a shard that has aged out of the stream has nothing left to read.
        given = {sid: pos for sid, pos in (leases or {}).items() if sid in set(listed)}
    # initialPositionDefault is trim_horizon for a batch read (batch_options).
    return per_shard_starts(listing, given, Position.trim_horizon())


def per_shard_starts(
    listing: Iterable[ShardInfo], given: Mapping[str, Position], default: Position
) -> dict[str, Position]:
    """Where each shard starts when some have positions of their own (JSON or a KCL lease
    table); shards whose records all come before the start are left out."""
    listed = {info.shard_id: info for info in listing}
    before: set[str] = set()
    for sid, pos in given.items():
        if sid in listed:
            before |= _ancestors(sid, listed)
            if pos.is_shard_end:
                before.add(sid)
    anchored = before | {sid for sid in given if sid in listed}
    starts: dict[str, Position] = {}
    for sid in listed:
        if sid in before:
            continue
        if sid in given:
            starts[sid] = given[sid]
        elif _ancestors(sid, listed) & anchored:
            starts[sid] = Position.trim_horizon()
        else:
            starts[sid] = default
    return starts


def plan_ranges(
    stream: str,
    listing: Iterable[ShardInfo],
    starts: Mapping[str, Position],
    ends: Mapping[str, ShardStart],
) -> list[ShardSpan]:
    """The shards of ``stream`` to read, sorted by shard id, each from its start to its end.

    ``ends`` are the ``endingPosition`` JSON's entries for this stream; a shard it names
    that the listing does not have is an error listing the stream's shards.
    """
    listed = {info.shard_id: info for info in listing}
    for sid in sorted(ends):
        if sid not in listed:
            raise OptionError(
                "endingPosition",
                f"names shard {sid!r} of stream {stream!r}, which the stream does not have "
                f"(its shards: {', '.join(sorted(listed)) or 'none'})",
            )
    after_end: set[str] = set()
    for sid in ends:
        after_end |= _descendants(sid, listed)
    ranges = []
    for sid in sorted(starts):
        if sid in after_end or sid not in listed:
            continue
        start = starts[sid]
        end = through(ends[sid]) if sid in ends else None
        start_mark = _consumed_through(start)
        if end is not None and start_mark is not None:
            end_mark = _consumed_through(end)
            assert end_mark is not None
            if end_mark < start_mark:
                raise OptionError(
                    "endingPosition",
                    f"stream {stream!r} shard {sid!r}: ends at {_spec(ends[sid])}, before its "
                    f"start {start.text()}: the end of a range must be at or after its start",
                )
            if end_mark == start_mark:
                continue
        ranges.append(ShardSpan(sid, start, end))
    return ranges


def _consumed_through(position: Position) -> Mark | None:
    """The last user record before a sequence-number position; None for the others."""
    if position.sequence is None:
        return None
    seq = int(position.sequence)
    if position.kind == AT_SEQUENCE_NUMBER:
        return (seq - 1, _WHOLE)
    assert position.kind == AFTER_SEQUENCE_NUMBER
    return (seq, _WHOLE if position.sub is None else position.sub)


def _spec(end: ShardStart) -> str:
    sub = f", subSequenceNumber {end.sub}" if end.sub is not None else ""
    return f"{end.iterator_type} {end.sequence}{sub}"


def _ancestors(shard_id: str, listed: Mapping[str, ShardInfo]) -> set[str]:
    seen: set[str] = set()
    stack = list(listed[shard_id].parents) if shard_id in listed else []
    while stack:
        sid = stack.pop()
        if sid not in seen:
            seen.add(sid)
            if sid in listed:
                stack.extend(listed[sid].parents)
    return seen


def _descendants(shard_id: str, listed: Mapping[str, ShardInfo]) -> set[str]:
    return {sid for sid in listed if shard_id in _ancestors(sid, listed)}
