"""How rows become PutRecords calls within the service limits: pure decisions.

- ``check_record``: a row the stream would reject fails its task here, naming the row.
- ``assign_lanes``: entries are spread over ``maxInFlightRequests`` lanes by their order
  key (partition key, or target shard with aggregation); one lane sends its calls one
  after another, so records of one key never race each other in two calls at once.
- ``next_call``: which pending entries of a lane go into its next call: at most 500
  entries and 5 MiB. With ``one_per_key`` (``preserveOrder=true``) a call holds at most one
  entry per order key and never jumps a key's earlier pending entry, so an entry that fails
  is retried before any later entry of its key is sent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from kinesis_source import limits
from kinesis_source.errors import SinkInputError

# One-per-key calls look this far into a lane's pending entries for keys not yet blocked:
# bounded, so a lane with a single hot key costs linear time, not quadratic.
ONE_PER_KEY_SCAN = 4 * limits.PUT_RECORDS_MAX_RECORDS


@dataclass(frozen=True, slots=True)
class Entry:
    """One PutRecords entry: a user record, or a KPL aggregate of several."""

    data: bytes
    partition_key: str
    explicit_hash_key: str | None
    # What AWS counts toward the record and call limits: data plus UTF-8 partition key.
    size: int
    # What per-key order is kept on (the partition key, or the target shard).
    order_key: str
    user_records: int = 1
    # With aggregation: the shard the entry is meant for (a put elsewhere: stale shard map).
    target_shard: str | None = None
    # An aggregate's user records (data, partition key, explicit hash key), to send again
    # those a reshard put on the wrong shard.
    users: tuple[tuple[bytes, str, str | None], ...] = ()


def record_size(data: bytes, partition_key: str) -> int:
    return len(data) + len(partition_key.encode("utf-8"))


def check_record(
    position: int,
    partition: int,
    data: bytes | None,
    partition_key: str | None,
    explicit_hash_key: str | None,
    max_record_bytes: int,
) -> None:
    """Raise ``SinkInputError`` naming the row if Kinesis would reject it (or it is null)."""
    where = f"row {position} of partition {partition}"
    if data is None:
        raise SinkInputError(f"{where}: column 'data' is null; every record needs data")
    if partition_key is None:
        raise SinkInputError(
            f"{where}: column 'partitionKey' is null; give every row a key, or drop the "
            "column to have a random key per record"
        )
    if not 1 <= len(partition_key) <= limits.PARTITION_KEY_MAX_CHARS:
        raise SinkInputError(
            f"{where}: partitionKey has {len(partition_key)} characters; Kinesis takes 1 to "
            f"{limits.PARTITION_KEY_MAX_CHARS}"
        )
    if explicit_hash_key is not None and not _is_hash_key(explicit_hash_key):
        raise SinkInputError(
            f"{where}: explicitHashKey {explicit_hash_key!r} is not a decimal integer in "
            f"0..{limits.HASH_KEY_MAX} (2^128 - 1)"
        )
    size = record_size(data, partition_key)
    if size > max_record_bytes:
        raise SinkInputError(
            f"{where}: the record is {size} bytes (data and partition key); the limit is "
            f"maxRecordBytes={max_record_bytes} (raise it, up to "
            f"{limits.RECORD_MAX_BYTES_CONFIGURABLE}, only for a stream configured for larger "
            "records)"
        )


def _is_hash_key(text: str) -> bool:
    return text.isdigit() and text.isascii() and int(text) <= limits.HASH_KEY_MAX


def assign_lanes(entries: Sequence[Entry], lanes: int) -> list[list[Entry]]:
    """``entries`` split over at most ``lanes`` lanes, all entries of one order key in one
    lane, in their order. Keys are dealt out in order of first appearance, so that even a
    window of two keys (two shards, with aggregation) uses two lanes.

    A window's lanes are all done before the next window starts, so a key may take another
    lane in the next window without racing its earlier records.
    """
    lane_of: dict[str, int] = {}
    out: list[list[Entry]] = [[] for _ in range(lanes)]
    for entry in entries:
        lane = lane_of.setdefault(entry.order_key, len(lane_of) % lanes)
        out[lane].append(entry)
    return [lane for lane in out if lane]


def next_call(pending: Sequence[Entry], *, one_per_key: bool) -> list[int]:
    """Indices (ascending) of the ``pending`` entries that make up the next PutRecords call.

    Never empty when ``pending`` is not: an entry larger than a call's 5 MiB (a stream with
    larger records) goes alone.
    """
    picked: list[int] = []
    total = 0
    keys: set[str] = set()
    blocked: set[str] = set()
    scan = len(pending) if not one_per_key else min(len(pending), ONE_PER_KEY_SCAN)
    for index in range(scan):
        entry = pending[index]
        if one_per_key and (entry.order_key in keys or entry.order_key in blocked):
            # Its key already has an earlier entry in this call, or one waiting: wait too.
            blocked.add(entry.order_key)
            continue
        if picked and total + entry.size > limits.PUT_RECORDS_MAX_BYTES:
            if not one_per_key:
                break
            blocked.add(entry.order_key)
            continue
        picked.append(index)
        total += entry.size
        keys.add(entry.order_key)
        if len(picked) == limits.PUT_RECORDS_MAX_RECORDS:
            break
    return picked
