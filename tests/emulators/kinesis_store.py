"""Streams and shards in memory: records, sequence numbers, hash routing, resharding, retention.

Pure classes: no I/O and no clock of their own (every call that needs the time gets
``now_ms``, the server's clock). The rules they keep, with the doc of ``kinesis_rules``:

- sequence numbers are 56-digit decimal strings that grow within a shard ([GSI]); one of
  another shard is ``InvalidArgumentException``;
- a record goes to the open shard whose hash-key range holds the MD5 of its partition key,
  or its ExplicitHashKey ([PR]);
- SplitShard closes the parent and opens two children with ParentShardId and the two halves
  of its range; MergeShards closes two adjacent shards and opens one child with
  ParentShardId and AdjacentParentShardId and the union of the ranges ([RS]); a closed
  shard has an EndingSequenceNumber and is listed until it is older than the retention;
- records older than the retention are gone ([RET]).
"""

from __future__ import annotations

import base64
import bisect
import hashlib
import json
from typing import Any

REGION = "us-east-1"
ACCOUNT = "123456789012"
HASH_SPACE = 2**128
# Sequence number of record i of shard s: FIRST_SEQUENCE + s * SHARD_STRIDE + i * RECORD_STRIDE,
# 56 digits like AWS' (which grow within a shard and say nothing across shards).
FIRST_SEQUENCE = 49_590_338_271_490_256_608_559_692_538_361_571_095_921_575_989_136_588_898
SHARD_STRIDE = 2**100
RECORD_STRIDE = 2**40
# Pages built on demand are kept until this many, then the cache starts over.
ON_DEMAND_CACHE = 8_192


class ApiError(Exception):
    """An error the server answers with HTTP 400 and ``{"__type": code, "message": ...}``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def sequence_number(shard: int, index: int) -> str:
    return str(FIRST_SEQUENCE + shard * SHARD_STRIDE + index * RECORD_STRIDE)


def hash_ranges(shards: int) -> list[tuple[int, int]]:
    starts = [i * HASH_SPACE // shards for i in range(shards)] + [HASH_SPACE]
    return [(starts[i], starts[i + 1] - 1) for i in range(shards)]


def hash_of(key: str, explicit_hash: str | None) -> int:
    if explicit_hash is not None:
        value = int(explicit_hash)
        if not 0 <= value < HASH_SPACE:
            raise ApiError(
                "InvalidArgumentException", f"ExplicitHashKey {explicit_hash} out of range"
            )
        return value
    return int.from_bytes(hashlib.md5(key.encode()).digest(), "big")


def record_json(seq: str, arrival_ms: int, data_b64: str, key: str) -> bytes:
    return (
        f'{{"SequenceNumber":"{seq}","ApproximateArrivalTimestamp":{arrival_ms / 1000:.3f},'
        f'"Data":"{data_b64}","PartitionKey":{json.dumps(key)}}}'
    ).encode()


class Shard:
    """One shard: its records as JSON fragments, its lineage, and the pages built from them."""

    def __init__(
        self,
        index: int,
        hash_range: tuple[int, int],
        created_ms: int,
        storage_start_ms: int,
        parent: str | None = None,
        adjacent_parent: str | None = None,
    ) -> None:
        self.index = index
        self.shard_id = f"shardId-{index:012d}"
        self.start_hash, self.end_hash = hash_range
        self.created_ms = created_ms
        self.storage_start_ms = storage_start_ms  # where TRIM_HORIZON's walk begins
        self.parent = parent
        self.adjacent_parent = adjacent_parent
        self.closed_ms: int | None = None
        self.children: list[Shard] = []
        self.fragments: list[bytes] = []
        self.arrivals: list[int] = []
        self.cum_bytes: list[int] = [0]  # data + key bytes before record i
        self.prebuilt: dict[tuple[int, int, int], tuple[bytes, int, int]] = {}
        self.built: dict[tuple[int, int, int], tuple[bytes, int, int]] = {}
        # Records before this index are past the retention and their bytes let go.
        self.forgotten = 0

    @property
    def count(self) -> int:
        return len(self.fragments)

    def append(self, data: bytes, key: str, arrival_ms: int) -> str:
        seq = sequence_number(self.index, self.count)
        self.append_encoded(
            seq, base64.b64encode(data).decode(), len(data) + len(key), key, arrival_ms
        )
        return seq

    def append_encoded(self, seq: str, b64: str, size: int, key: str, arrival_ms: int) -> None:
        self.fragments.append(record_json(seq, arrival_ms, b64, key))
        self.arrivals.append(arrival_ms)
        self.cum_bytes.append(self.cum_bytes[-1] + size)

    def ending_sequence(self) -> str:
        """A closed shard's EndingSequenceNumber: the top of its range, above every record."""
        return str(FIRST_SEQUENCE + (self.index + 1) * SHARD_STRIDE - 1)

    def position_of(self, seq: str, after: bool) -> int:
        """The record index AT (or AFTER) sequence number ``seq`` of this shard."""
        try:
            number = int(seq)
        except ValueError:
            number = -1
        offset = number - FIRST_SEQUENCE - self.index * SHARD_STRIDE
        index, rest = divmod(offset, RECORD_STRIDE)
        if self.closed_ms is not None and seq == self.ending_sequence():
            return self.count
        if offset < 0 or offset >= SHARD_STRIDE or index >= self.count:
            raise ApiError(
                "InvalidArgumentException",
                f"StartingSequenceNumber {seq} used in GetShardIterator on shard "
                f"{self.shard_id} is not a sequence number of this shard",
            )
        return index + 1 if after or rest else index

    def first_live(self, horizon_ms: int) -> int:
        """The first record not older than the trim horizon."""
        return bisect.bisect_left(self.arrivals, horizon_ms)

    def records(self, start: int, limit: int, max_bytes: int, end_of: Any) -> tuple[bytes, int]:
        """The ``Records`` JSON array's inside from record ``start``, and the page's end.
        ``end_of(start, count, limit, max_bytes, cum_bytes)`` caps the page."""
        count = self.count
        key = (start, limit, max_bytes)
        for cache in (self.prebuilt, self.built):
            hit = cache.get(key)
            # A page that ended at the tip is stale once records were appended.
            if hit is not None and (hit[1] < hit[2] or hit[2] == count):
                return hit[0], hit[1]
        end = end_of(start, count, limit, max_bytes, self.cum_bytes)
        body = b",".join(self.fragments[start:end])
        if end < count:
            # A page that ends at the tip is stale at the next append: under a steady feed
            # nearly every page does, and keeping them would hold the whole feed twice.
            if len(self.built) >= ON_DEMAND_CACHE:
                self.built.clear()
            self.built[key] = (body, end, count)
        return body, end

    def forget_before(self, index: int) -> None:
        """Let go of the bytes of records before ``index``, which the retention trimmed
        ([RET]: they are "no longer accessible"; reads start at ``first_live``), so that
        a long steady feed holds only the retention's worth of records."""
        for i in range(self.forgotten, index):
            self.fragments[i] = b""
        self.forgotten = max(self.forgotten, index)

    def prebuild(self, limit: int, max_bytes: int, end_of: Any) -> None:
        """Build the chain of pages a reader walks from the first record at ``limit``."""
        start, count = 0, self.count
        while start < count:
            end = end_of(start, count, limit, max_bytes, self.cum_bytes)
            body = b",".join(self.fragments[start:end])
            self.prebuilt[(start, limit, max_bytes)] = (body, end, count)
            start = end

    def size(self, start: int, end: int) -> int:
        return self.cum_bytes[end] - self.cum_bytes[start]

    def describe(self) -> dict[str, Any]:
        sequences = {"StartingSequenceNumber": sequence_number(self.index, 0)}
        if self.closed_ms is not None:
            sequences["EndingSequenceNumber"] = self.ending_sequence()
        out: dict[str, Any] = {"ShardId": self.shard_id}
        if self.parent is not None:
            out["ParentShardId"] = self.parent
        if self.adjacent_parent is not None:
            out["AdjacentParentShardId"] = self.adjacent_parent
        out["HashKeyRange"] = self.hash_key_range()
        out["SequenceNumberRange"] = sequences
        return out

    def hash_key_range(self) -> dict[str, str]:
        return {"StartingHashKey": str(self.start_hash), "EndingHashKey": str(self.end_hash)}

    def child_shards(self) -> list[dict[str, Any]]:
        """[GR] ChildShards at a closed shard's end: each child with its parents and range."""
        return [
            {
                "ShardId": child.shard_id,
                "ParentShards": [p for p in (child.parent, child.adjacent_parent) if p],
                "HashKeyRange": child.hash_key_range(),
            }
            for child in self.children
        ]


class Stream:
    """A stream's shards, open and closed, in the order of their ids."""

    def __init__(
        self,
        number: int,
        name: str,
        shards: int,
        now_ms: int,
        retention_ms: int,
        end_shape: str,
        empty_history_ms: int,
    ) -> None:
        self.number = number
        self.name = name
        self.arn = f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/{name}"
        self.created_ms = now_ms
        self.retention_ms = retention_ms
        self.end_shape = end_shape
        start = now_ms - empty_history_ms
        self.shards = [Shard(i, r, now_ms, start) for i, r in enumerate(hash_ranges(shards))]
        self.by_id = {s.shard_id: s for s in self.shards}
        self._open: list[Shard] | None = None
        self._open_starts: list[int] = []

    def open_shards(self) -> list[Shard]:
        """The open shards in hash-key order (kept until the next reshard: a stream of
        10,000 shards routes each record by bisection, not by a scan)."""
        if self._open is None:
            self._open = sorted(
                (s for s in self.shards if s.closed_ms is None), key=lambda s: s.start_hash
            )
            self._open_starts = [s.start_hash for s in self._open]
        return self._open

    def listed(self, now_ms: int) -> list[Shard]:
        """[RET], [LS]: closed shards stay listed until their data is past the retention."""
        horizon = now_ms - self.retention_ms
        return [s for s in self.shards if s.closed_ms is None or s.closed_ms >= horizon]

    def shards_at(self, kind: str, at_ms: int, now_ms: int) -> list[Shard]:
        """[LS] ShardFilter: AT_LATEST (open now), AT_TRIM_HORIZON and AT_TIMESTAMP (open
        then), FROM_TIMESTAMP (open then or since); any other: every listed shard."""
        shards = self.listed(now_ms)
        if kind == "AT_LATEST":
            return [s for s in shards if s.closed_ms is None]
        if kind in ("AT_TRIM_HORIZON", "AT_TIMESTAMP", "FROM_TIMESTAMP"):
            if kind == "AT_TRIM_HORIZON":
                at_ms = now_ms - self.retention_ms
            at_ms = max(at_ms, self.created_ms)
            return [
                s
                for s in shards
                if (s.closed_ms is None or s.closed_ms > at_ms)
                and (kind == "FROM_TIMESTAMP" or s.created_ms <= at_ms)
            ]
        return shards

    def shard(self, shard_id: str, now_ms: int) -> Shard:
        shard = self.by_id.get(shard_id)
        closed = None if shard is None else shard.closed_ms
        if shard is None or (closed is not None and closed < now_ms - self.retention_ms):
            raise ApiError(
                "ResourceNotFoundException",
                f"Shard {shard_id} in stream {self.name} under account {ACCOUNT} does not exist",
            )
        return shard

    def route(self, key: str, explicit_hash: str | None) -> Shard:
        """[PR]: the open shard whose hash-key range holds the record's hash key."""
        shards = self.open_shards()
        return shards[bisect.bisect_right(self._open_starts, hash_of(key, explicit_hash)) - 1]

    def _open_shard(self, shard_id: str, now_ms: int, role: str) -> Shard:
        shard = self.shard(shard_id, now_ms)
        if shard.closed_ms is not None:
            raise ApiError(
                "ResourceInUseException", f"{role} {shard_id} of {self.name} is already closed"
            )
        return shard

    def _add_child(self, hash_range: tuple[int, int], now_ms: int, *parents: Shard) -> Shard:
        child = Shard(
            len(self.shards),
            hash_range,
            now_ms,
            now_ms,
            parents[0].shard_id,
            parents[1].shard_id if len(parents) > 1 else None,
        )
        self.shards.append(child)
        self._open = None
        self.by_id[child.shard_id] = child
        for parent in parents:
            parent.children.append(child)
        return child

    def split(self, shard_id: str, new_start_hash: str, now_ms: int) -> list[Shard]:
        """[RS] SplitShard: the parent closes, two children share its range at the new key."""
        parent = self._open_shard(shard_id, now_ms, "ShardToSplit")
        at = int(new_start_hash)
        if not parent.start_hash < at <= parent.end_hash:
            raise ApiError(
                "InvalidArgumentException",
                f"NewStartingHashKey {at} must be above {parent.start_hash} and at most "
                f"{parent.end_hash}, the range of {shard_id}",
            )
        parent.closed_ms = now_ms
        return [
            self._add_child((parent.start_hash, at - 1), now_ms, parent),
            self._add_child((at, parent.end_hash), now_ms, parent),
        ]

    def merge(self, shard_id: str, adjacent_id: str, now_ms: int) -> Shard:
        """[RS] MergeShards: two shards with adjacent ranges close into one child."""
        shard = self._open_shard(shard_id, now_ms, "ShardToMerge")
        adjacent = self._open_shard(adjacent_id, now_ms, "AdjacentShardToMerge")
        low, high = sorted((shard, adjacent), key=lambda s: s.start_hash)
        if low.end_hash + 1 != high.start_hash:
            raise ApiError(
                "InvalidArgumentException",
                f"Shards {shard_id} and {adjacent_id} of {self.name} are not adjacent",
            )
        shard.closed_ms = adjacent.closed_ms = now_ms
        return self._add_child((low.start_hash, high.end_hash), now_ms, shard, adjacent)

    def update_shard_count(self, target: int, now_ms: int) -> None:
        """UpdateShardCount by uniform scaling, here only to double or to halve: every open
        shard split at its middle, or neighbours merged in pairs (an odd one stays)."""
        current = self.open_shards()
        if target == 2 * len(current):
            for shard in current:
                self.split(
                    shard.shard_id, str((shard.start_hash + shard.end_hash + 1) // 2), now_ms
                )
        elif target * 2 in (len(current), len(current) + 1) and target >= 1:
            for low, high in zip(current[0::2], current[1::2], strict=False):
                self.merge(low.shard_id, high.shard_id, now_ms)
        else:
            raise ApiError(
                "InvalidArgumentException",
                f"TargetShardCount {target}: this server only doubles or halves "
                f"{len(current)} open shards",
            )

    def summary(self) -> dict[str, Any]:
        return {
            "StreamName": self.name,
            "StreamARN": self.arn,
            "StreamStatus": "ACTIVE",
            "StreamModeDetails": {"StreamMode": "PROVISIONED"},
            "RetentionPeriodHours": max(1, round(self.retention_ms / 3_600_000)),
            "StreamCreationTimestamp": self.created_ms / 1000,
            "EnhancedMonitoring": [{"ShardLevelMetrics": []}],
            "EncryptionType": "NONE",
            "OpenShardCount": len(self.open_shards()),
            "ConsumerCount": 0,
        }
