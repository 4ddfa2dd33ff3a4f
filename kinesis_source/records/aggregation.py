"""KPL aggregation: user records packed into one Kinesis record. Pure (no boto3, no Spark).

The format, as the KPL writes it and deaggregation.py reads it: the 4-byte magic
``F3 89 9A C2``, an ``AggregatedRecord`` protobuf (``aws_kinesis_agg.messages_pb2``: tables
of partition keys and explicit hash keys, then records pointing into them), then the MD5 of
the protobuf. Sizes are counted as the protobuf encodes them, so an aggregate never
exceeds its cap (the stream's record limit, which counts the aggregate's partition key).
"""

from __future__ import annotations

import hashlib

from kinesis_source.records.kpl_format import DIGEST_BYTES as _DIGEST_BYTES
from kinesis_source.records.kpl_format import KPL_MAGIC
from kinesis_source.records.kpl_messages import messages_pb2


def _varint_size(value: int) -> int:
    size = 1
    while value >= 0x80:
        value >>= 7
        size += 1
    return size


def _field_size(length: int) -> int:
    """A length-delimited field of ``length`` bytes: tag, length varint, bytes."""
    return 1 + _varint_size(length) + length


class AggregateBuilder:
    """Collects user records into one aggregate of at most ``max_bytes`` (data + its key).

    The aggregate goes out under its first user record's partition key and explicit hash
    key, so it lands on that record's shard; callers group records by shard first.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._records: list[tuple[int, int | None, bytes]] = []
        self._keys: dict[str, int] = {}
        self._hash_keys: dict[str, int] = {}
        self._proto_bytes = 0
        self.partition_key = ""
        self.explicit_hash_key: str | None = None

    def __len__(self) -> int:
        return len(self._records)

    def has_hash_keys(self) -> bool | None:
        """Whether the records hold explicit hash keys (None while empty).

        Meaningful when callers never mix records with and without one.
        """
        if not self._records:
            return None
        return self._records[0][1] is not None

    def size(self) -> int:
        """Bytes Kinesis counts for the aggregate as it stands (0 when empty)."""
        if not self._records:
            return 0
        head = len(self.partition_key.encode("utf-8"))
        return len(KPL_MAGIC) + self._proto_bytes + _DIGEST_BYTES + head

    def add(self, partition_key: str, explicit_hash_key: str | None, data: bytes) -> bool:
        """Add a user record if the aggregate stays within ``max_bytes``; else False."""
        grow = 0
        key_index = self._keys.get(partition_key)
        if key_index is None:
            key_index = len(self._keys)
            grow += _field_size(len(partition_key.encode("utf-8")))
        hash_index = None
        if explicit_hash_key is not None:
            hash_index = self._hash_keys.get(explicit_hash_key)
            if hash_index is None:
                hash_index = len(self._hash_keys)
                grow += _field_size(len(explicit_hash_key))
        inner = 1 + _varint_size(key_index) + _field_size(len(data))
        if hash_index is not None:
            inner += 1 + _varint_size(hash_index)
        grow += _field_size(inner)
        head_key = self.partition_key if self._records else partition_key
        total = (
            len(KPL_MAGIC)
            + self._proto_bytes
            + grow
            + _DIGEST_BYTES
            + len(head_key.encode("utf-8"))
        )
        if total > self.max_bytes:
            return False
        if not self._records:
            self.partition_key = partition_key
            self.explicit_hash_key = explicit_hash_key
        self._keys.setdefault(partition_key, key_index)
        if explicit_hash_key is not None:
            self._hash_keys.setdefault(explicit_hash_key, hash_index)  # type: ignore[arg-type]
        self._records.append((key_index, hash_index, data))
        self._proto_bytes += grow
        return True

    def build(self) -> bytes:
        """The aggregate's bytes: magic, protobuf, MD5."""
        message = messages_pb2.AggregatedRecord()
        message.partition_key_table.extend(self._keys)
        message.explicit_hash_key_table.extend(self._hash_keys)
        for key_index, hash_index, data in self._records:
            record = message.records.add()
            record.partition_key_index = key_index
            if hash_index is not None:
                record.explicit_hash_key_index = hash_index
            record.data = data
        body: bytes = message.SerializeToString()
        return KPL_MAGIC + body + hashlib.md5(body).digest()

    def user_records(self) -> list[tuple[str, str | None, bytes]]:
        """(partition key, explicit hash key, data) of each user record, in order."""
        keys = list(self._keys)
        hash_keys = list(self._hash_keys)
        return [
            (keys[k], None if h is None else hash_keys[h], data) for k, h, data in self._records
        ]
