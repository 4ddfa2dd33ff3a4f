"""Hand-made GetRecords pages for the pure tests of page slicing and stop rules."""

from __future__ import annotations

import pyarrow as pa

from kinesis_source.records.records_page import RecordsPage

BASE_SEQUENCE = 49_590_338_271_490_256_608_559_692_538_361_571_095_921_575_989_136_588_898


def make_page(unit_counts: list[int | None], first_seq: int) -> RecordsPage:
    """A page whose record i is plain (None) or an aggregate of unit_counts[i] units."""
    seqs = [str(first_seq + 7 * i) for i in range(len(unit_counts))]
    starts = [0]
    records: list[int] = []
    subs: list[int] = []
    for index, count in enumerate(unit_counts):
        n = 1 if count is None else count
        records.extend([index] * n)
        subs.extend(range(n))
        starts.append(len(records))
    plain = all(c is None for c in unit_counts)
    return RecordsPage(
        sequence_numbers=seqs,
        arrival_us=pa.array([1_700_000_000_000_000 + i for i in range(len(seqs))], pa.int64()),
        unit_starts=starts,
        data=[f"{records[u]}/{subs[u]}".encode() for u in range(len(records))],
        partition_keys=["k"] * len(records),
        explicit_hash_keys=[None] * len(records),
        unit_records=None if plain else records,
        unit_subs=None if plain else subs,
        millis_behind_latest=0,
        next_shard_iterator="it",
    )
