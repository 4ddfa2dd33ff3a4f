"""How rows become PutRecords calls within the service limits: pure decisions.

- ``check_record``: a row the stream would reject fails its task here, naming the row.
- ``LaneRouter``: entries are spread over ``maxInFlightRequests`` lanes by the shard the
  task's map routes them to (``lanes.lane_key``), each shard on one lane for the whole
  task; one lane sends its calls one after another, so records of one key (all routed to
  one shard) never race each other in two calls at once.
- ``next_call``: which pending entries of a lane go into its next call: at most 500
  entries and 5 MiB, and at most a shard's second of quota (1 MiB) for one shard.
  With ``one_per_key`` (``preserveOrder=true``) a call holds at most one entry per order
  key and never jumps a key's earlier pending entry, so an entry that fails is retried
  before any later entry of its key is sent.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass

from kinesis_source import limits
from kinesis_source.errors import SinkInputError

# One-per-key calls look this far into a lane's pending entries for keys not yet blocked:
# bounded, so a lane with a single hot key costs linear time, not quadratic.
ONE_PER_KEY_SCAN = 4 * limits.PUT_RECORDS_MAX_RECORDS
# Lane keys (shards) a task deals out to its lanes one by one, then by hash: all the open
# shards of most streams.
ROUTER_KEYS = 4096


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


class LaneRouter:
    """Which of ``lanes`` lanes sends the entries of a lane key (a shard): the same lane for
    the whole task, so records of one key never race each other in two calls at once.

    Keys are dealt out in order of first appearance, so that even two shards use two lanes
    and, with no more shards than lanes, a lane is one shard's only; the first
    ``remembered`` keys are kept, later ones go by a hash of the key, which is as stable
    and takes no memory.
    """

    def __init__(self, lanes: int, remembered: int = ROUTER_KEYS) -> None:
        self.lanes = lanes
        self.remembered = remembered
        self._lane_of: dict[str, int] = {}

    def lane_of(self, key: str) -> int:
        lane = self._lane_of.get(key)
        if lane is not None:
            return lane
        if len(self._lane_of) < self.remembered:
            lane = self._lane_of[key] = len(self._lane_of) % self.lanes
            return lane
        return zlib.crc32(key.encode("utf-8")) % self.lanes


def next_call(pending: Sequence[Entry], *, one_per_key: bool) -> list[int]:
    """Indices (ascending) of the ``pending`` entries that make up the next PutRecords call.

    Never empty when ``pending`` is not: an entry larger than a call's 5 MiB (a stream with
    larger records) goes alone. A call holds at most a shard's second of write quota
    (1 MiB) for one shard (the entry's target shard, else its order key, whose records all
    go to one shard): the shard would refuse the rest, and sending them anyway costs an
    upload and a refusal each (an aggregated lane of 256 KiB aggregates would otherwise
    send 5 MiB a call to a shard that takes 1 MiB a second). An entry left out blocks the
    later ones of its key in that call.
    """
    picked: list[int] = []
    total = 0
    keys: set[str] = set()
    shard_bytes: dict[str, int] = {}  # bytes for each shard in the call
    blocked: set[str] = set()
    scan = min(len(pending), ONE_PER_KEY_SCAN)
    for index in range(scan):
        entry = pending[index]
        key = entry.order_key
        if key in blocked or (one_per_key and key in keys):
            # Its key already has an earlier entry in this call, or one waiting: wait too.
            blocked.add(key)
            continue
        if picked and total + entry.size > limits.PUT_RECORDS_MAX_BYTES:
            if not one_per_key:
                break
            blocked.add(key)
            continue
        shard = entry.target_shard or key
        taken = shard_bytes.get(shard, 0)
        if taken and taken + entry.size > limits.WRITE_BYTES_PER_SECOND_PER_SHARD:
            blocked.add(key)
            continue
        picked.append(index)
        total += entry.size
        keys.add(key)
        shard_bytes[shard] = taken + entry.size
        if len(picked) == limits.PUT_RECORDS_MAX_RECORDS:
            break
    return picked
