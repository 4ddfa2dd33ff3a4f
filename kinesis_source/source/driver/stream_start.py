"""Where a stream's reading starts: at a query's first batch, or when a later run adds the
stream to ``streamName``/``streamARN``. Pure: the listing and the leases come from outside.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from kinesis_source.errors import KclLeaseError, OptionError
from kinesis_source.source.data_loss import lost
from kinesis_source.source.driver.lineage import ShardInfo, advance_shards
from kinesis_source.source.driver.loss_check import span
from kinesis_source.source.driver.start_positions import resolve_shard_starts, start_shards
from kinesis_source.source.options import InitialPosition, KinesisOptions
from kinesis_source.source.positions import Position, StreamOffset


def initial_stream_offset(
    opts: KinesisOptions,
    stream: str,
    listing: Sequence[ShardInfo],
    now_ms: int,
    leases: Mapping[str, Position] | None = None,
    retention_ms: int | None = None,
) -> StreamOffset:
    """The positions of ``stream`` at its first batch.

    ``now_ms`` is what ``latest`` means, resolved once here so that a replay or a restart
    does not move it. ``leases`` are the KCL lease table's positions for this stream
    (``initialPosition=kcl``). With per-shard starts (JSON or KCL) ``sinceMs`` stays unset:
    shards found later descend from shards read from a known position, so they start at
    TRIM_HORIZON, which neither skips nor repeats a record.

    A sequence number that cannot be one of its shard's (``ShardRange``) is an error naming
    the option, whatever ``failOnDataLoss`` says: it came from another shard or stream, and
    reading the shard from anywhere would be a guess. A lease of a shard that aged out of
    the stream (``retention_ms``) before it was read to its end is data loss.
    """
    kind = opts.initial_position
    if kind in (InitialPosition.SHARDS, InitialPosition.KCL):
        listed = [info.shard_id for info in listing]
        if kind is InitialPosition.SHARDS:
            named = opts.shard_starts.get(stream, {})
            given = resolve_shard_starts(stream, named, listed, now_ms)
        else:
            given = {sid: pos for sid, pos in (leases or {}).items() if sid in set(listed)}
            gone = {sid: pos for sid, pos in (leases or {}).items() if sid not in set(listed)}
            _leases_gone(opts, stream, gone, retention_ms)
        check_sequences(opts, stream, listing, given)
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


def _leases_gone(
    opts: KinesisOptions, stream: str, gone: Mapping[str, Position], retention_ms: int | None
) -> None:
    """Leases of shards no longer in the stream: those not read to their end lost records."""
    retention = "its retention" if retention_ms is None else f"its retention ({span(retention_ms)})"
    for sid in sorted(gone):
        position = gone[sid]
        if position.is_shard_end:
            continue
        lost(
            stream,
            sid,
            f"Data loss on stream {stream!r}: the KCL lease table {opts.kcl_lease_table!r} "
            f"holds shard {sid} at the checkpoint {position.text()}, but the shard is no "
            f"longer in the stream: it closed and aged out of {retention} before the "
            "application read it to its end, so its records after that checkpoint are lost.",
            fail_on_data_loss=opts.fail_on_data_loss,
            sequence_number=position.sequence,
        )


def check_sequences(
    opts: KinesisOptions,
    stream: str,
    listing: Sequence[ShardInfo],
    given: Mapping[str, Position],
) -> None:
    """Each given sequence number lies in its shard's range, or the option is wrong."""
    ranges = {info.shard_id: info.range for info in listing}
    for sid in sorted(given):
        position, shard_range = given[sid], ranges.get(sid)
        if position.sequence is None or shard_range is None:
            continue
        if shard_range.holds_sequence(position.sequence):
            continue
        what = (
            f"the sequence number {position.sequence} of stream {stream!r} shard {sid} is "
            f"not one of that shard's (they start at {shard_range.first_sequence}): it "
            "belongs to another shard or stream"
        )
        if opts.initial_position is InitialPosition.KCL:
            raise KclLeaseError(
                f"KCL lease table {opts.kcl_lease_table!r} (option kclLeaseTable): {what}; "
                "is this the lease table of an application of this stream?",
                stream=stream,
                shard_id=sid,
                sequence_number=position.sequence,
            )
        raise OptionError("initialPosition", f"{what}; give a sequence number of that shard")
