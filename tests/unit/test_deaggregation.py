"""KPL aggregates become their user records; anything malformed stays a plain record."""

from __future__ import annotations

import hashlib

import pytest

from kinesis_source.records.deaggregation import KPL_MAGIC, deaggregate
from tests.helpers import aggregate

pytestmark = pytest.mark.lowest


def test_user_records_keep_their_own_keys_and_order() -> None:
    users = [
        ("k1", b"one", None),
        ("k2", b"two", "123"),
        ("k1", b"", None),
        ("k3", b"\xff\x00", None),
    ]
    out = deaggregate(aggregate(users))
    assert out is not None
    assert [(u.partition_key, u.data, u.explicit_hash_key, u.sub_sequence_number) for u in out] == [
        ("k1", b"one", None, 0),
        ("k2", b"two", "123", 1),
        ("k1", b"", None, 2),
        ("k3", b"\xff\x00", None, 3),
    ]


def test_plain_records_are_not_aggregates() -> None:
    assert deaggregate(b"hello") is None
    assert deaggregate(b"") is None
    assert deaggregate(KPL_MAGIC) is None


def test_bad_md5_is_not_an_aggregate() -> None:
    blob = bytearray(aggregate([("k", b"v", None)]))
    blob[-1] ^= 0xFF
    assert deaggregate(bytes(blob)) is None


def test_bad_protobuf_with_good_md5_is_not_an_aggregate() -> None:
    body = b"\xff\xff\xff\xff\xff"
    assert deaggregate(KPL_MAGIC + body + hashlib.md5(body).digest()) is None
