"""A shard's ranges as ListShards gives them: the driver has them, a task carries them.

``SequenceNumberRange`` tells a sequence number of this shard from one of another shard or
stream (a wrong start position: an error, never data loss); ``HashKeyRange`` is which user
records of a KPL aggregate belong to the shard (the KCL drops the others; so does
``records/hash_range.py``, the range carried in ``ShardTask``).
Sequence numbers and hash keys are decimal strings, compared as integers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

# Hash keys are 128-bit: [0, 2**128 - 1] is every key, a stream of one shard.
HASH_KEY_MAX = 2**128 - 1


@dataclass(frozen=True)
class ShardRange:
    """``first_sequence`` is the shard's ``StartingSequenceNumber``: every record of the
    shard has a sequence number at least that. The ``EndingSequenceNumber`` of a closed
    shard is not used: kinesis-mock gives 2**63 - 1 there, below its own sequence numbers,
    and nothing documents how it relates to the last record's on AWS."""

    first_sequence: str | None = None
    low_hash_key: int = 0
    high_hash_key: int = HASH_KEY_MAX

    @staticmethod
    def from_api(shard: Mapping[str, object]) -> ShardRange:
        seqs = shard.get("SequenceNumberRange") or {}
        keys = shard.get("HashKeyRange") or {}
        assert isinstance(seqs, Mapping) and isinstance(keys, Mapping)
        first = seqs.get("StartingSequenceNumber")
        return ShardRange(
            first_sequence=None if first is None else str(first),
            low_hash_key=int(str(keys.get("StartingHashKey", 0))),
            high_hash_key=int(str(keys.get("EndingHashKey", HASH_KEY_MAX))),
        )

    def holds_sequence(self, sequence: str) -> bool:
        """False if ``sequence`` cannot be one of this shard's: it comes before the shard's
        first sequence number (a trimmed one never does: trimming does not move that)."""
        return self.first_sequence is None or int(sequence) >= int(self.first_sequence)

    @property
    def all_hash_keys(self) -> bool:
        return self.low_hash_key == 0 and self.high_hash_key == HASH_KEY_MAX
