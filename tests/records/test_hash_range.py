"""User records of aggregates outside the shard's hash-key range are left out
(records/hash_range.py), in both decoders' pages; plain records never are."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import pytest

from kinesis_source.records.fast_decode import decode_records
from kinesis_source.records.hash_range import keep_in_range
from kinesis_source.records.records_page import RecordsPage, page_from_response
from tests.helpers import aggregate

HALF = 2**127


def _hash(key: str) -> int:
    return int.from_bytes(hashlib.md5(key.encode()).digest(), "big")


KEYS = [f"key-{i}" for i in range(40)]
LOW = [k for k in KEYS if _hash(k) < HALF]


def _records() -> list[dict[str, Any]]:
    users = [(k, k.encode()) for k in KEYS] + [("a", b"high-ehk", str(HALF + 5))]
    users += [("b", b"low-ehk", "7")]
    return [
        {
            "SequenceNumber": "100",
            "ApproximateArrivalTimestamp": 1.5,
            "Data": aggregate(users),
            "PartitionKey": "agg",
        },
        # A plain record whose key hashes high: Kinesis put it here, it is never dropped.
        {
            "SequenceNumber": "200",
            "ApproximateArrivalTimestamp": 2.5,
            "Data": b"plain",
            "PartitionKey": next(k for k in KEYS if _hash(k) >= HALF),
        },
    ]


def _reference() -> RecordsPage:
    return page_from_response(
        {"Records": _records(), "MillisBehindLatest": 0, "NextShardIterator": "it"},
        deaggregate_kpl=True,
    )


def _fast() -> RecordsPage:
    body = {
        "Records": [{**r, "Data": base64.b64encode(r["Data"]).decode()} for r in _records()],
        "MillisBehindLatest": 0,
        "NextShardIterator": "it",
    }
    return decode_records(json.dumps(body).encode(), deaggregate_kpl=True)


@pytest.mark.parametrize("make", [_reference, _fast], ids=["reference", "fast"])
def test_an_aggregates_user_records_outside_the_range_are_left_out(make: Any) -> None:
    page = make()
    keep_in_range(page, 0, HALF - 1)
    batch = page.to_batch(0, page.unit_count, "s", "shardId-0")
    data = batch.column("data").to_pylist()
    assert data == [k.encode() for k in LOW] + [b"low-ehk", b"plain"]
    # Kept user records keep their sub-sequence numbers (positions do not move).
    subs = batch.column("subSequenceNumber").to_pylist()
    assert subs == [KEYS.index(k) for k in LOW] + [len(KEYS) + 1, 0]
    # Batches split by size leave the same rows out, and none is empty.
    parts = list(page.to_batches(0, page.unit_count, "s", "shardId-0", 40))
    assert [d for b in parts for d in b.column("data").to_pylist()] == data
    assert all(b.num_rows for b in parts)


def test_a_page_whose_units_all_lie_in_the_range_or_without_aggregates_is_left_alone() -> None:
    page = _reference()
    keep_in_range(page, 0, 2**128 - 1)
    assert page.keep is None
    plain = page_from_response(
        {"Records": _records()[1:], "MillisBehindLatest": 0, "NextShardIterator": "it"},
        deaggregate_kpl=True,
    )
    keep_in_range(plain, 0, 1)
    assert plain.keep is None
