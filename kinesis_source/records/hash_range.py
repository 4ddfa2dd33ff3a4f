"""User records of KPL aggregates outside the shard's hash-key range: not emitted.

After a reshard the KPL (and our sink, sink/task.py) sends an aggregate's user records
again to the shard that now owns their keys, so the copy on the shard it first went to
would be read twice, under another (sequence, sub-sequence) pair. The KCL drops such user
records when it deaggregates (``UserRecord.deaggregate`` with the shard's starting and
ending hash keys); so do we. A user record's hash key is its explicit hash key, else the
MD5 of its partition key as a 128-bit big-endian number, as Kinesis routes records. Plain
records are never dropped: Kinesis itself put them on the shard.

Vectorised: one MD5 per distinct partition key (and one parse per distinct explicit hash
key), then Arrow takes the verdicts back to the units. The dropped units keep their place
in the page (``RecordsPage.keep``), so positions and sub-sequence numbers do not move.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

import pyarrow as pa
import pyarrow.compute as pc

from kinesis_source.records.records_page import RecordsPage


def _column(values: Sequence[str | None] | pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        return values.combine_chunks()
    if isinstance(values, pa.Array):
        return values
    return pa.array(values, pa.string())


def _decimal_in_range(text: str, low: int, high: int) -> bool:
    try:
        value = int(text)
    except ValueError:
        # Kinesis takes no such explicit hash key; keep the record rather than guess.
        return True
    return low <= value <= high


def _md5_verdicts(keys: list[str], low: int, high: int) -> list[bool]:
    # 16-byte big-endian digests compare as bytes as their numbers do: no int per key.
    low_bytes, high_bytes = low.to_bytes(16, "big"), high.to_bytes(16, "big")
    md5 = hashlib.md5
    return [low_bytes <= md5(key.encode("utf-8")).digest() <= high_bytes for key in keys]


def _decimal_verdicts(keys: list[str], low: int, high: int) -> list[bool]:
    return [_decimal_in_range(key, low, high) for key in keys]


def _verdicts(
    column: pa.Array, in_range: Callable[[list[str], int, int], list[bool]], low: int, high: int
) -> pa.Array:
    """Per item of ``column``: True if its key lies in [low, high] (null for a null key),
    ``in_range`` asked once per distinct key."""
    encoded = pc.dictionary_encode(column)
    verdicts = pa.array(in_range(encoded.dictionary.to_pylist(), low, high), pa.bool_())
    return verdicts.take(encoded.indices)


def keep_in_range(page: RecordsPage, low: int, high: int) -> int:
    """Set ``page.keep`` so that the user records of its aggregates whose hash key lies
    outside [low, high] are not emitted; a page without aggregates is left alone. Returns
    how many units are left out."""
    if page.aggregated is None or page.unit_records is None or not any(page.aggregated):
        return 0
    from_aggregate = pa.array(page.aggregated, pa.bool_()).take(
        pa.array(page.unit_records, pa.int64())
    )
    keys = _verdicts(_column(page.partition_keys), _md5_verdicts, low, high)
    hash_keys = _column(page.explicit_hash_keys)
    if hash_keys.null_count < len(hash_keys):
        explicit = _verdicts(hash_keys, _decimal_verdicts, low, high)
        keys = pc.if_else(pc.is_valid(hash_keys), explicit, keys)
    keep = pc.or_(pc.invert(from_aggregate), keys)
    dropped = int(len(keep) - pc.sum(keep).as_py())
    if dropped:
        page.keep = keep
    return dropped
