"""One GetRecords response as columns, KPL aggregates already expanded into user records.

Both decoders produce a ``RecordsPage``: the reference one from the dict boto3 parsed
(``page_from_response``), the fast one straight from the response body
(``fast_decode.decode_records``). The shard reader decides which user records of a page to
emit (skip, stop and cap marks) by index, and turns that slice into one Arrow batch.

A page has ``len(page)`` Kinesis records and ``page.unit_count`` user records ("units"):
record ``i`` holds units ``unit_starts[i]`` to ``unit_starts[i + 1] - 1``, whose
sub-sequence numbers are 0, 1, ... in that order (a plain record is one unit, sub 0; an
aggregate whose protobuf lists no records holds none).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cache
from itertools import accumulate
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from kinesis_source.schema import ARROW_SCHEMA

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROS_PER_SECOND = 1_000_000
_ARRIVAL_TYPE = pa.timestamp("us", tz="UTC")


@cache
def _zero() -> pa.Scalar:
    # Made on first use, not at import: pyarrow imports pandas (where installed) the first
    # time it converts a Python value, and the driver's planner, a fresh process for every
    # query that never builds a batch, would pay that second at each query's start.
    return pa.scalar(0, pa.int64())


@dataclass
class RecordsPage:
    """One GetRecords page: per-record columns, per-unit columns and the page fields."""

    # Per Kinesis record.
    sequence_numbers: list[str]
    arrival_us: pa.Array  # int64 microseconds since the epoch, UTC
    unit_starts: list[int]  # len(sequence_numbers) + 1 entries, last = unit_count
    # Per user record (unit). The fast decoder hands plain records' data over as the Arrow
    # array it already built to look for KPL aggregates, and a page with aggregates as
    # Arrow chunks (one per aggregate and per run of plain records).
    data: list[bytes] | pa.BinaryArray | pa.ChunkedArray
    partition_keys: list[str] | pa.ChunkedArray
    explicit_hash_keys: list[str | None] | pa.ChunkedArray
    # Kinesis record of each unit, and the unit's sub-sequence number; both None when
    # every record is exactly one unit (no aggregate on the page).
    unit_records: list[int] | None
    unit_subs: list[int] | None
    # Page fields.
    millis_behind_latest: int | None
    next_shard_iterator: str | None
    child_shards: list[dict[str, Any]] | None = None
    # SubscribeToShard events only: every record up to this sequence number was delivered
    # (see source/executor/efo.py); None for GetRecords pages.
    continuation: str | None = None
    # When the response arrived (epoch ms, the reader's clock), set by the GetRecords
    # transport: with MillisBehindLatest it dates how far an empty page's walk got.
    received_ms: int | None = None
    # Per Kinesis record: True for a KPL aggregate (its units may lie outside the shard's
    # hash-key range, records/hash_range.py); None when the page holds no aggregate.
    aggregated: list[bool] | None = None
    # Per unit: False for a unit not to emit (an aggregate's user record outside the
    # shard's hash-key range). It keeps its place and sub-sequence number, so positions,
    # marks and caps count it as read; only the rows leave it out. None: emit every unit.
    keep: pa.BooleanArray | None = None

    def __len__(self) -> int:
        return len(self.sequence_numbers)

    @property
    def unit_count(self) -> int:
        return len(self.data)

    @property
    def data_bytes(self) -> int:
        """The size of the user records' data (an Arrow array's buffers, offsets too)."""
        return _size(self.data)

    @property
    def key_bytes(self) -> int:
        """The size of the user records' partition keys (Kinesis counts them in its quotas)."""
        return _size(self.partition_keys)

    def data_ends(self, lo: int, hi: int) -> Sequence[int]:
        """Running sums of the data sizes of units ``lo`` .. ``hi - 1``: item ``i`` is the
        size of units ``lo`` .. ``lo + i``. Made in C, probed by ``bisect`` (a byte cap, a
        batch's byte bound), so that a page's Python work is per cut, not per unit."""
        if hi <= lo:
            return []
        data = self.data
        if isinstance(data, (pa.Array, pa.ChunkedArray)):
            lengths = pc.binary_length(data.slice(lo, hi - lo)).cast(pa.int64())
            ends = pc.cumulative_sum(lengths)
            if isinstance(ends, pa.ChunkedArray):
                ends = ends.combine_chunks()
            return _ArrowInts(ends)
        return list(accumulate(map(len, data[lo:hi])))

    def record_of(self, unit: int) -> int:
        """Index of the Kinesis record that holds ``unit``."""
        if self.unit_records is None:
            return unit
        # bisect_right skips records that hold no unit and start at the same index.
        return bisect_right(self.unit_starts, unit, 0, len(self.sequence_numbers)) - 1

    def to_batches(
        self, lo: int, hi: int, stream: str, shard_id: str, max_bytes: int
    ) -> Iterator[pa.RecordBatch]:
        """Units ``lo`` .. ``hi - 1`` as Arrow batches, in order, of at most ``max_bytes``
        of data each (a unit larger than that in a batch of its own), less the units
        ``keep`` leaves out (no empty batch)."""
        for batch in self._batches(lo, hi, stream, shard_id, max_bytes):
            if batch.num_rows or self.keep is None:
                yield batch

    def _batches(
        self, lo: int, hi: int, stream: str, shard_id: str, max_bytes: int
    ) -> Iterator[pa.RecordBatch]:
        # Each batch has buffers of its own: a zero-copy slice of one page-wide batch would
        # keep the whole page's buffer alive as long as Spark holds any slice.
        ends = self.data_ends(lo, hi)
        if not ends or ends[-1] <= max_bytes:
            yield self.to_batch(lo, hi, stream, shard_id)
            return
        slices = _slices_of_running_sums(ends, max_bytes)
        for first, last in slices:
            yield self.to_batch(lo + first, lo + last, stream, shard_id)

    def to_batch(self, lo: int, hi: int, stream: str, shard_id: str) -> pa.RecordBatch:
        """Units ``lo`` .. ``hi - 1`` as one Arrow batch in ``schema.ARROW_SCHEMA``, less
        the units ``keep`` leaves out."""
        batch = self._units_batch(lo, hi, stream, shard_id)
        if self.keep is None:
            return batch
        return batch.filter(self.keep.slice(lo, hi - lo))

    def _units_batch(self, lo: int, hi: int, stream: str, shard_id: str) -> pa.RecordBatch:
        n = hi - lo
        if self.unit_records is None:
            sequence = pa.array(self.sequence_numbers[lo:hi], pa.string())
            arrival = self.arrival_us.slice(lo, n)
            sub = pa.repeat(_zero(), n)
        else:
            take = pa.array(self.unit_records[lo:hi], pa.int64())
            sequence = pa.array(self.sequence_numbers, pa.string()).take(take)
            arrival = self.arrival_us.take(take)
            assert self.unit_subs is not None
            sub = pa.array(self.unit_subs[lo:hi], pa.int64())
        return pa.RecordBatch.from_arrays(
            [
                _column(self.data, lo, hi, pa.binary()),
                pa.repeat(pa.scalar(stream, pa.string()), n),
                pa.repeat(pa.scalar(shard_id, pa.string()), n),
                _column(self.partition_keys, lo, hi, pa.string()),
                sequence,
                sub,
                _column(self.explicit_hash_keys, lo, hi, pa.string()),
                arrival.cast(pa.int64()).view(_ARRIVAL_TYPE),
            ],
            schema=ARROW_SCHEMA,
        )


def _size(values: Sequence[Any] | pa.Array | pa.ChunkedArray) -> int:
    """Bytes of a unit column: an Arrow array's buffers, or the sum of its items' lengths."""
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        return int(values.nbytes)
    return sum(map(len, values))


def _column(
    values: Sequence[Any] | pa.Array | pa.ChunkedArray, lo: int, hi: int, kind: pa.DataType
) -> pa.Array:
    """Items ``lo`` .. ``hi - 1`` of a unit column as one Arrow array (chunks copied into one)."""
    if isinstance(values, pa.ChunkedArray):
        return values.slice(lo, hi - lo).combine_chunks()
    if isinstance(values, pa.Array):
        return values.slice(lo, hi - lo)
    return pa.array(values[lo:hi], kind)


def byte_slices(sizes: Sequence[int], max_bytes: int) -> list[tuple[int, int]]:
    """Consecutive ``(first, last)`` index ranges covering ``sizes``, each summing to at most
    ``max_bytes`` or holding a single item; none empty."""
    return _slices_of_running_sums(list(accumulate(sizes)), max_bytes)


def _slices_of_running_sums(ends: Sequence[int], max_bytes: int) -> list[tuple[int, int]]:
    """``byte_slices`` given ``ends[i]``, the sum of sizes ``0`` .. ``i``."""
    # A page holds up to 10,000 records, or far more KPL user records: a binary search per
    # slice keeps the Python work per slice, not per item.
    out: list[tuple[int, int]] = []
    first = 0
    while first < len(ends):
        before = ends[first - 1] if first else 0
        last = max(first + 1, bisect_right(ends, before + max_bytes, first))
        out.append((first, last))
        first = last
    return out


class _ArrowInts(Sequence[int]):
    """An Arrow integer array as a sequence of Python ints, for ``bisect`` to probe a few
    items without converting all of them."""

    def __init__(self, values: pa.Array) -> None:
        self.values = values

    def __len__(self) -> int:
        return len(self.values)

    def __getitem__(self, index: Any) -> Any:
        return self.values[index].as_py()


def arrival_micros(seconds: Sequence[float | int]) -> pa.Array:
    """Epoch seconds (Kinesis' JSON numbers) to int64 microseconds, rounded like botocore.

    botocore turns the number into a datetime with ``datetime.fromtimestamp``, which splits
    whole and fractional seconds and rounds the fraction's microseconds half to even. Doing
    the same steps in float64 gives the same integers, where ``round(x * 1e6)`` can be off
    by one microsecond.
    """
    values = pa.array(seconds, pa.float64())
    whole = pc.trunc(values)
    micros = pc.round(
        pc.multiply(pc.subtract(values, whole), float(_MICROS_PER_SECOND)),
        0,
        round_mode="half_to_even",
    )
    total = pc.add(pc.multiply(whole, float(_MICROS_PER_SECOND)), micros)
    return pc.cast(total, pa.int64())


def _datetime_micros(value: datetime) -> int:
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * _MICROS_PER_SECOND + delta.microseconds


def page_from_response(response: Mapping[str, Any], *, deaggregate_kpl: bool) -> RecordsPage:
    """The reference decoder: a page from the dict ``client.get_records`` returned."""
    # Imported here, as in fast_decode: the planner loads this module and never deaggregates.
    from kinesis_source.records.deaggregation import deaggregate

    sequence_numbers: list[str] = []
    arrival: list[int] = []
    unit_starts = [0]
    data: list[bytes] = []
    keys: list[str] = []
    hash_keys: list[str | None] = []
    unit_records: list[int] = []
    unit_subs: list[int] = []
    aggregated: list[bool] = []
    any_aggregate = False
    for index, record in enumerate(response.get("Records", [])):
        sequence_numbers.append(str(record["SequenceNumber"]))
        stamp = record["ApproximateArrivalTimestamp"]
        arrival.append(
            _datetime_micros(stamp)
            if isinstance(stamp, datetime)
            else int(arrival_micros([stamp])[0].as_py())
        )
        blob = record["Data"]
        users = deaggregate(blob) if deaggregate_kpl else None
        aggregated.append(users is not None)
        if users is None:
            data.append(blob)
            keys.append(record["PartitionKey"])
            hash_keys.append(record.get("ExplicitHashKey"))
            unit_records.append(index)
            unit_subs.append(0)
        else:
            any_aggregate = True
            for user in users:
                data.append(user.data)
                keys.append(user.partition_key)
                hash_keys.append(user.explicit_hash_key)
                unit_records.append(index)
                unit_subs.append(user.sub_sequence_number)
        unit_starts.append(len(data))
    return RecordsPage(
        sequence_numbers=sequence_numbers,
        arrival_us=pa.array(arrival, pa.int64()),
        unit_starts=unit_starts,
        data=data,
        partition_keys=keys,
        explicit_hash_keys=hash_keys,
        unit_records=unit_records if any_aggregate else None,
        unit_subs=unit_subs if any_aggregate else None,
        millis_behind_latest=response.get("MillisBehindLatest"),
        next_shard_iterator=response.get("NextShardIterator"),
        child_shards=response.get("ChildShards"),
        aggregated=aggregated if any_aggregate else None,
    )
