"""Which open shard a record goes to: the hash-key ranges of ListShards. Pure."""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Iterable, Mapping
from typing import Any


def hash_key_of(partition_key: str, explicit_hash_key: str | None) -> int:
    """Kinesis' routing key: the explicit hash key, else the MD5 of the partition key."""
    if explicit_hash_key is not None:
        return int(explicit_hash_key)
    return int.from_bytes(hashlib.md5(partition_key.encode("utf-8")).digest(), "big")


class ShardMap:
    """Open shards by hash-key range, from ListShards' ``Shards`` entries."""

    def __init__(self, shards: Iterable[Mapping[str, Any]]) -> None:
        ranges = []
        for shard in shards:
            if shard.get("SequenceNumberRange", {}).get("EndingSequenceNumber") is not None:
                continue  # closed: takes no more writes
            hash_range = shard["HashKeyRange"]
            ranges.append(
                (
                    int(hash_range["StartingHashKey"]),
                    int(hash_range["EndingHashKey"]),
                    shard["ShardId"],
                )
            )
        ranges.sort()
        self._starts = [start for start, _, _ in ranges]
        self._ranges = ranges

    def shard_for(self, hash_key: int) -> str | None:
        """The open shard whose range holds ``hash_key`` (None while no open shard does)."""
        at = bisect.bisect_right(self._starts, hash_key) - 1
        if at < 0:
            return None
        start, end, shard_id = self._ranges[at]
        return shard_id if start <= hash_key <= end else None

    def __len__(self) -> int:
        return len(self._ranges)
