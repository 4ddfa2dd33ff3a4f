"""The fast decoder gives exactly the reference decoder's rows.

Reference: boto3's parsed GetRecords response and ``deaggregation.deaggregate``.
Fast: the raw body, msgspec (or, where msgspec is not installed, the json module and
``a2b_base64``) and ``deaggregation.deaggregate_arrow``. Pure tests of the KPL parsers first,
then whole bodies on both JSON paths, then the same records through a moto server.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import logging
import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any

import botocore.session
import pyarrow as pa
import pytest
from aws_kinesis_agg.deaggregator import iter_deaggregate_records
from botocore.exceptions import ClientError
from botocore.parsers import create_parser
from helpers import REGION, create_stream

from kinesis_source.aws.clients import kinesis_client
from kinesis_source.errors import KinesisReadError, OptionError
from kinesis_source.records import deaggregation
from kinesis_source.records.deaggregation import (
    KPL_MAGIC,
    UnitColumns,
    _deaggregate_columns,
    _deaggregate_wire_into,
    deaggregate,
    deaggregate_arrow,
)
from kinesis_source.records.fast_decode import (
    decode_records,
    get_records_body,
    install_raw_get_records,
)
from kinesis_source.records.records_page import RecordsPage, page_from_response
from kinesis_source.source.executor.shard_reader import _ShardRead
from kinesis_source.source.options import Decoder, KinesisOptions, parse_options
from kinesis_source.source.positions import Position
from kinesis_source.source.tasks import ShardTask
from tests.helpers import aggregate, framed

pytestmark = pytest.mark.lowest

IntoParser = Callable[[bytes, list[bytes], list[str], list[str | None]], "int | None"]


def _read_back(
    deaggregator: Callable[[bytes], UnitColumns | None],
) -> IntoParser:
    """An Arrow deaggregator read back into the lists the wire parser fills."""

    def into(
        data: bytes, out_data: list[bytes], keys: list[str], hash_keys: list[str | None]
    ) -> int | None:
        units = deaggregator(data)
        if units is None:
            return None
        assert units.data.type == pa.binary()
        assert units.partition_keys.type == units.explicit_hash_keys.type == pa.string()
        out_data.extend(units.data.to_pylist())
        keys.extend(units.partition_keys.to_pylist())
        hash_keys.extend(units.explicit_hash_keys.to_pylist())
        return len(units.data)

    return into


_arrow_into = _read_back(deaggregate_arrow)
_columns_into = _read_back(_deaggregate_columns)

INTO_PARSERS: dict[str, IntoParser] = {
    "dispatch": _arrow_into,
    "columns": _columns_into,
    "wire": _deaggregate_wire_into,
}


USERS: list[tuple[str, bytes, str | None]] = [
    ("user-1", b"hello", None),
    ("user-2", b"", None),
    ("k" * 256, b"\xff\xfe\x00\x80 not utf-8", "170141183460469231731687303715884105728"),
    ("\u00e9\u4e2d\U0001f600" * 64, bytes(range(256)) * 3, "0"),
    ("user-1", b"x" * 300, "340282366920938463463374607431768211455"),
    ("user-3", b"y" * 20_000, None),
]


def columns(parser: IntoParser, data: bytes) -> tuple[int | None, list[Any]]:
    out_data: list[bytes] = [b"before"]
    keys: list[str] = ["before"]
    hash_keys: list[str | None] = [None]
    added = parser(data, out_data, keys, hash_keys)
    return added, list(zip(out_data[1:], keys[1:], hash_keys[1:], strict=True))


def reference_columns(data: bytes) -> tuple[int | None, list[Any]]:
    users = deaggregate(data)
    if users is None:
        return None, []
    return len(users), [(u.data, u.partition_key, u.explicit_hash_key) for u in users]


# A Record with partition key index 0 and data b"a"; wrapped as field 3 of AggregatedRecord.
_RECORD = b"\x08\x00\x1a\x01a"
_KEY_K = b"\x0a\x01k"

ODD_AGGREGATES = {
    "bad md5": aggregate(USERS[:2])[:-1] + b"\x00",
    "bad protobuf": framed(b"\x0a\x05k"),
    "magic only": KPL_MAGIC,
    "magic and digest of nothing": framed(b""),
    "no records": framed(_KEY_K),
    "key index out of range": framed(_KEY_K + b"\x1a\x04\x08\x05\x1a\x00"),
    "hash key index without table": framed(_KEY_K + b"\x1a\x06\x08\x00\x10\x00\x1a\x00"),
    "key not utf-8": framed(b"\x0a\x02\xff\xfe" + b"\x1a\x04\x08\x00\x1a\x00"),
    "record with tags": framed(_KEY_K + b"\x1a\x0b" + _RECORD + b"\x22\x04\x0a\x02tk"),
    "fields in another order": framed(_KEY_K + b"\x1a\x05\x1a\x01a\x08\x00"),
    "unknown field": framed(_KEY_K + b"\x1a\x05" + _RECORD + b"\x28\x07"),
    "records before keys": framed(b"\x1a\x05" + _RECORD + _KEY_K),
    "truncated record": framed(_KEY_K + b"\x1a\x09" + _RECORD),
    "record missing data": framed(_KEY_K + b"\x1a\x02\x08\x00"),
    "multi-byte varints": framed(
        b"".join(b"\x0a\x01" + bytes([65 + i % 26]) for i in range(200))
        + b"\x1a\x86\x01\x08\xc7\x01\x1a\x80\x01"
        + b"z" * 128
    ),
    "plain data": b"just a record",
    # The columns parser reads every record's fields as three lists; these would misalign
    # them if it took the lists without checking the records hold one of each.
    "a packed key index": framed(b"\x0a\x01k\x0a\x01j" + b"\x1a\x08\x08\x00\x0a\x01\x01\x1a\x01a"),
    "a data field twice, none in the next record": framed(
        b"\x0a\x01k\x0a\x01j" + b"\x1a\x07\x08\x00\x1a\x01x\x1a\x00" + b"\x1a\x02\x08\x01"
    ),
    "a hash key index twice, none in the next record": framed(
        b"\x0a\x01k\x12\x01h\x12\x01i"
        + b"\x1a\x09\x08\x00\x10\x00\x10\x01\x1a\x01a"
        + b"\x1a\x05\x08\x00\x1a\x01b"
    ),
    "a non-minimal varint": framed(_KEY_K + b"\x1a\x06\x08\x80\x00\x1a\x01a"),
    # Each of these keeps the lists' lengths equal to the record count, so only the checks
    # of _aligned_columns stand between them and a wrong answer.
    "a key index twice, none in the next record": framed(
        b"\x0a\x01k\x0a\x01j" + b"\x1a\x07\x08\x00\x08\x01\x1a\x01a" + b"\x1a\x03\x1a\x01b"
    ),
    "a hash key index packed in one record, a plain one in the other": framed(
        b"\x0a\x01k\x12\x01h\x12\x01i"
        + b"\x1a\x07\x08\x00\x10\x00\x1a\x01a"
        + b"\x1a\x08\x08\x00\x1a\x01b\x12\x01\x01"
    ),
    "a key index only packed, a plain one in the next record": framed(
        b"\x0a\x01k\x0a\x01j" + b"\x1a\x06\x0a\x01\x01\x1a\x01a" + b"\x1a\x05\x08\x00\x1a\x01b"
    ),
    "an empty packed key index": framed(_KEY_K + b"\x1a\x07\x08\x00\x0a\x00\x1a\x01a"),
    "a packed key index that does not parse": framed(
        _KEY_K + b"\x1a\x08\x08\x00\x0a\x01\x80\x1a\x01a"
    ),
    "a hash key index on every record and an unknown field": framed(
        _KEY_K + b"\x12\x01h" + b"\x1a\x09\x08\x00\x10\x00\x1a\x01a\x28\x07"
    ),
    # Key indexes 0, 1 (as for distinct keys) with a table of one key, and of three.
    "key indexes 0, 1 and one key": framed(
        _KEY_K + b"\x1a\x05\x08\x00\x1a\x01a" + b"\x1a\x05\x08\x01\x1a\x01b"
    ),
    "key indexes 0, 1 and three keys": framed(
        b"\x0a\x01k\x0a\x01j\x0a\x01i" + b"\x1a\x05\x08\x00\x1a\x01a" + b"\x1a\x05\x08\x01\x1a\x01b"
    ),
    "key indexes 1, 0": framed(
        b"\x0a\x01k\x0a\x01j" + b"\x1a\x05\x08\x01\x1a\x01a" + b"\x1a\x05\x08\x00\x1a\x01b"
    ),
}


# Well-formed aggregates: hash keys on some records, on every record, on none; many
# records sharing keys.
USER_SETS = {
    "some hash keys": USERS,
    "every record a hash key": [(k, d, h or str(i)) for i, (k, d, h) in enumerate(USERS)],
    "no hash keys": [(k, d, None) for k, d, _ in USERS],
    "500 records, 7 keys": [(f"key-{i % 7}", b"%d" % i, None) for i in range(500)],
    # Distinct keys: the key indexes are 0, 1, 2, ... (past 127: two-byte varints).
    "300 records, distinct keys": [(f"key-{i}", b"%d" % i, None) for i in range(300)],
    "300 records, distinct keys, one used twice": [
        (f"key-{i if i != 299 else 5}", b"%d" % i, None) for i in range(300)
    ],
}


@pytest.mark.parametrize("users", USER_SETS)
@pytest.mark.parametrize("parser", INTO_PARSERS)
def test_kpl_columns_match_reference_and_aws_kinesis_agg(parser: str, users: str) -> None:
    data = aggregate(USER_SETS[users])
    added, got = columns(INTO_PARSERS[parser], data)
    assert (added, got) == reference_columns(data)
    assert got == [(d, k, h) for k, d, h in USER_SETS[users]]
    theirs = list(
        iter_deaggregate_records(
            [
                {
                    "Data": data,
                    "PartitionKey": "p",
                    "SequenceNumber": "1",
                    "ApproximateArrivalTimestamp": 0,
                }
            ],
            data_format="Boto3",
        )
    )
    assert [
        (base64.b64decode(t["kinesis"]["data"]), t["kinesis"]["partitionKey"]) for t in theirs
    ] == [(d, k) for d, k, _ in got]
    # aws_kinesis_agg reads an absent hash key index as 0: compare only the ones set.
    for theirs_one, (_, _, hash_key) in zip(theirs, got, strict=True):
        if hash_key is not None:
            assert theirs_one["kinesis"]["explicitHashKey"] == hash_key


@pytest.mark.parametrize("users", USER_SETS)
def test_columns_parser_where_protobuf_cannot_build_its_message(
    monkeypatch: pytest.MonkeyPatch, users: str
) -> None:
    # An old or unusual protobuf: every aggregate is read record by record.
    monkeypatch.setattr(deaggregation, "_COLUMNS", None)
    data = aggregate(USER_SETS[users])
    assert columns(_columns_into, data) == reference_columns(data)


@pytest.mark.parametrize("case", ODD_AGGREGATES)
def test_columns_checks_where_byte_size_checks_no_required_field(
    monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    # A protobuf whose ByteSize does not raise for a missing required field: IsInitialized.
    monkeypatch.setattr(deaggregation, "_SIZE_CHECKS_REQUIRED", False)
    data = ODD_AGGREGATES[case]
    assert columns(_columns_into, data) == reference_columns(data)


@pytest.mark.parametrize("parser", INTO_PARSERS)
@pytest.mark.parametrize("case", ODD_AGGREGATES)
def test_odd_aggregates_get_the_reference_answer(parser: str, case: str) -> None:
    data = ODD_AGGREGATES[case]
    assert columns(INTO_PARSERS[parser], data) == reference_columns(data)


@pytest.mark.parametrize(
    "case", ["bad md5", "bad protobuf", "magic only", "key not utf-8", "key index out of range"]
)
def test_corrupt_aggregates_are_plain_records(case: str) -> None:
    assert deaggregate(ODD_AGGREGATES[case]) is None


def test_multi_byte_varints_parse() -> None:
    added, got = columns(_deaggregate_wire_into, ODD_AGGREGATES["multi-byte varints"])
    assert added == 1
    assert got == [(b"z" * 128, chr(65 + 199 % 26), None)]


# --- whole pages, without a server ---

ODD_PLAIN: list[tuple[str, bytes]] = [
    ("plain-key", b"x" * 100),
    ("empty", b""),
    ("bytes", b"\x00\xff\xfe\x80 not utf-8"),
    ("\u00e9\u4e2d\U0001f600" * 85 + "z", b"unicode key"),
    ("big", bytes(range(256)) * 4096),  # 1 MiB
]


def response_body(records: list[tuple[str, bytes]], stamps: list[float]) -> bytes:
    return json.dumps(
        {
            "Records": [
                {
                    "SequenceNumber": str(49_590_338_271_490_256_608_559_692_538_361_571 + i),
                    "ApproximateArrivalTimestamp": stamp,
                    "Data": base64.b64encode(data).decode(),
                    "PartitionKey": key,
                }
                for i, ((key, data), stamp) in enumerate(zip(records, stamps, strict=True))
            ],
            "NextShardIterator": "AAAAAAAAAAGnext",
            "MillisBehindLatest": 1234,
            "ChildShards": [
                {
                    "ShardId": "shardId-000000000002",
                    "ParentShards": ["shardId-000000000000"],
                    "HashKeyRange": {"StartingHashKey": "0", "EndingHashKey": "99"},
                }
            ],
        }
    ).encode()


def botocore_page(body: bytes, deaggregate_kpl: bool = True) -> RecordsPage:
    model = botocore.session.get_session().get_service_model("kinesis")
    shape = model.operation_model("GetRecords").output_shape
    parsed = create_parser("json").parse({"body": body, "headers": {}, "status_code": 200}, shape)
    return page_from_response(parsed, deaggregate_kpl=deaggregate_kpl)


def assert_same_pages(fast: RecordsPage, ref: RecordsPage) -> None:
    assert fast.unit_count == ref.unit_count
    assert fast.unit_starts == ref.unit_starts
    got = fast.to_batch(0, fast.unit_count, "s", "shardId-0")
    want = ref.to_batch(0, ref.unit_count, "s", "shardId-0")
    assert pa.Table.from_batches([got]).equals(pa.Table.from_batches([want]))
    assert fast.millis_behind_latest == ref.millis_behind_latest
    assert fast.next_shard_iterator == ref.next_shard_iterator
    assert fast.child_shards == ref.child_shards


# Each JSON path of the fast decoder: msgspec's (where installed) and the json module's, the
# one a cluster with only the documented minimum runs (the zip, no msgspec).
JSON_PATHS = ["msgspec", "json module"]


def _without_msgspec(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """A fresh copy of fast_decode loaded while ``import msgspec`` fails."""
    import kinesis_source.records.fast_decode as installed

    monkeypatch.setitem(sys.modules, "msgspec", None)  # makes `import msgspec` raise ImportError
    spec = importlib.util.spec_from_file_location("fast_decode_no_msgspec", installed.__file__)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.msgspec is None
    return module


@pytest.fixture(params=JSON_PATHS)
def fast(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """fast_decode on one JSON path."""
    if request.param == "json module":
        return _without_msgspec(monkeypatch)
    pytest.importorskip("msgspec")
    import kinesis_source.records.fast_decode as installed

    return installed


@pytest.mark.parametrize("deaggregate_kpl", [True, False])
def test_fast_page_equals_botocore_page(fast: ModuleType, deaggregate_kpl: bool) -> None:
    records = [
        *ODD_PLAIN,  # empty data, 1 MiB, bytes that are not UTF-8, a non-ASCII key
        ("agg", aggregate(USERS)),
        *[("agg-bad", data) for data in ODD_AGGREGATES.values()],  # incl. a non-UTF-8 KPL key
    ]
    # ms-precision stamps as Kinesis sends them, an integer, and floats whose
    # microseconds round differently under round(x * 1e6).
    stamps = [1.700000000123e9, 1700000000, 1216699143.7378726, 1528098915.8638375]
    stamps = (stamps * len(records))[: len(records)]
    body = response_body(records, stamps)
    got = fast.decode_records(body, deaggregate_kpl=deaggregate_kpl)
    assert_same_pages(got, botocore_page(body, deaggregate_kpl))


def test_pages_of_plain_records_only(fast: ModuleType) -> None:
    records = [(f"k{i}", bytes([i]) * i) for i in range(50)]
    body = response_body(records, [1.7e9 + i / 1000 for i in range(50)])
    for deaggregate_kpl in (True, False):
        got = fast.decode_records(body, deaggregate_kpl=deaggregate_kpl)
        assert_same_pages(got, botocore_page(body, deaggregate_kpl))


def _plain_record(seq: int, data: str, key: str, stamp: str = "1.7e9", extra: str = "") -> str:
    return (
        f'{{"SequenceNumber":"{seq}","ApproximateArrivalTimestamp":{stamp},'
        f'"Data":{data},"PartitionKey":{key}{extra}}}'
    )


def _body(*records: str, rest: str = ',"NextShardIterator":"it","MillisBehindLatest":7') -> bytes:
    return f'{{"Records":[{",".join(records)}]{rest}}}'.encode()


_B64_AGGREGATE = base64.b64encode(aggregate(USERS)).decode()

# Bodies written by hand: JSON that Kinesis may send (or that botocore reads anyway) in ways
# json.dumps above does not produce. msgspec rejects some of them (it is stricter than the
# json module): those must come out as botocore reads them, through the json module.
ODD_BODIES = {
    "escaped characters in a key": _body(_plain_record(1, '"QQ=="', r'"a\"b\\c\/d\u00e9\n"')),
    "escaped base64": _body(_plain_record(1, r'"\u0051\u0051=="', '"k"')),
    "an aggregate whose base64 starts escaped": _body(
        _plain_record(1, '"\\u0038' + _B64_AGGREGATE[1:] + '"', '"k"')
    ),
    "base64 with a line break (msgspec rejects it)": _body(
        _plain_record(1, r'"QUFB\nQUFB"', '"k"')
    ),
    "base64 with trailing bits": _body(_plain_record(1, '"QR=="', '"k"')),
    "a key with a lone surrogate (msgspec rejects it)": _body(
        _plain_record(1, '"QQ=="', r'"\ud800 alone"'), _plain_record(2, '"Qg=="', '"ok"')
    ),
    "fields Kinesis adds": _body(
        _plain_record(1, '"QQ=="', '"k"', extra=',"EncryptionType":"KMS","Other":[1,{}]')
    ),
    "fields in another order": _body(
        '{"PartitionKey":"k","Data":"QQ==","ApproximateArrivalTimestamp":1700000000.5,'
        '"SequenceNumber":"9"}'
    ),
    "integer and exponent stamps": _body(
        _plain_record(1, '"QQ=="', '"k"', stamp="1700000000"),
        _plain_record(2, '"QQ=="', '"k"', stamp="1.7000000001234e9"),
    ),
    "a closed shard (null iterator)": _body(
        _plain_record(1, '""', '"k"'), rest=',"NextShardIterator":null,"MillisBehindLatest":0'
    ),
    "no Records field": b'{"NextShardIterator":"it","MillisBehindLatest":0}',
    "null Records (msgspec rejects it)": b'{"Records":null,"NextShardIterator":"it"}',
    "no records, whitespace": b' {\n "Records" : [ ] ,\n "NextShardIterator" : "it" } ',
}


def _as_list(values: list[Any] | pa.ChunkedArray) -> list[Any]:
    return values if isinstance(values, list) else values.to_pylist()


def _page_columns(page: RecordsPage) -> tuple[Any, ...]:
    # Lone surrogates cannot become Arrow strings (to_batch raises on either decoder), so
    # these are compared column by column.
    return (
        page.sequence_numbers,
        page.arrival_us.to_pylist(),
        page.unit_starts,
        [bytes(d) for d in page.data] if isinstance(page.data, list) else page.data.to_pylist(),
        _as_list(page.partition_keys),
        _as_list(page.explicit_hash_keys),
        page.millis_behind_latest,
        page.next_shard_iterator,
        page.child_shards,
    )


@pytest.mark.parametrize("case", ODD_BODIES)
def test_odd_bodies_decode_like_botocore(fast: ModuleType, case: str) -> None:
    body = ODD_BODIES[case]
    ref = botocore_page(body)
    assert _page_columns(fast.decode_records(body, deaggregate_kpl=True)) == _page_columns(ref)
    assert ref.unit_count == (len(USERS) if "aggregate" in case else len(ref))


def test_a_lone_surrogate_key_beside_an_aggregate(fast: ModuleType) -> None:
    # Arrow cannot hold that key: the page still reads as the reference reads it, and only
    # the rows holding the key fail to become a batch, on either decoder.
    body = _body(
        _plain_record(1, '"QQ=="', r'"\ud800 alone"'),
        _plain_record(2, f'"{_B64_AGGREGATE}"', '"k"'),
    )
    ref = botocore_page(body)
    got = fast.decode_records(body, deaggregate_kpl=True)
    assert _page_columns(got) == _page_columns(ref)
    assert got.unit_count == 1 + len(USERS)
    rest = got.to_batch(1, got.unit_count, "s", "shardId-0")
    assert rest.equals(ref.to_batch(1, ref.unit_count, "s", "shardId-0"))
    for page in (got, ref):
        with pytest.raises(UnicodeEncodeError):
            page.to_batch(0, 1, "s", "shardId-0")


@pytest.mark.parametrize("deaggregate_kpl", [True, False])
def test_a_page_of_ten_1_mib_records_equals_botocore_page(
    fast: ModuleType, deaggregate_kpl: bool
) -> None:
    # The largest page GetRecords returns (10 MiB), odd records and an aggregate among them.
    records = [*ODD_PLAIN, ("agg", aggregate(USERS))]
    records += [(f"big-{i}", bytes([i]) * (1024 * 1024 - 6)) for i in range(10)]
    stamps = [1.700000000123e9 + i for i in range(len(records))]
    body = response_body(records, stamps)
    got = fast.decode_records(body, deaggregate_kpl=deaggregate_kpl)
    assert_same_pages(got, botocore_page(body, deaggregate_kpl))


def test_empty_page(fast: ModuleType) -> None:
    body = json.dumps({"Records": [], "NextShardIterator": "it", "MillisBehindLatest": 0}).encode()
    assert_same_pages(fast.decode_records(body, deaggregate_kpl=True), botocore_page(body))


# --- through a real moto server over HTTP ---


def _options(endpoint: str, **extra: Any) -> KinesisOptions:
    return KinesisOptions(
        stream_name="unused",
        region=REGION,
        checkpoint_store="unused",
        endpoint_url=endpoint,
        **extra,
    )


@pytest.fixture(scope="module")
def odd_stream(kinesis: Any, moto_endpoint: str) -> tuple[str, str]:
    name = "fast-decode-odd"
    (shard_id,) = create_stream(kinesis, name, 1)
    items = [
        *ODD_PLAIN,
        ("agg", aggregate(USERS)),
        ("agg-2", aggregate([(f"u{i}", b"%d" % i, None) for i in range(500)])),
        *[("agg-bad", data) for data in ODD_AGGREGATES.values()],
    ]
    for key, data in items:
        kinesis.put_record(StreamName=name, PartitionKey=key, Data=data)
    return name, shard_id


def _read_all(endpoint: str, stream: str, shard_id: str, decoder: Decoder, **extra: Any) -> Any:
    opts = KinesisOptions(
        stream_name=stream,
        region=REGION,
        checkpoint_store="unused",
        endpoint_url=endpoint,
        fetch_interval_ms=0,
        decoder=decoder,
        **extra,
    )
    task = ShardTask(
        batch=0, stream=stream, query="q", shard_id=shard_id, start=Position.trim_horizon()
    )
    read = _ShardRead(opts, task, stop=None)
    batches = list(read.run())
    return pa.Table.from_batches(batches, schema=batches[0].schema), read.progress


def test_moto_pages_decode_identically(
    kinesis: Any, moto_endpoint: str, odd_stream: tuple[str, str]
) -> None:
    stream, shard_id = odd_stream
    raw = kinesis_client(_options(moto_endpoint), prepare=install_raw_get_records)
    iterator = raw.get_shard_iterator(
        StreamName=stream, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    fast = decode_records(get_records_body(raw, iterator, 10_000), deaggregate_kpl=True)
    ref = page_from_response(kinesis.get_records(ShardIterator=iterator), deaggregate_kpl=True)
    assert len(fast) == len(ODD_PLAIN) + 2 + len(ODD_AGGREGATES)
    assert_same_pages(fast, ref)


@pytest.mark.parametrize("cap", [100_000, 7, 600])
def test_shard_read_rows_equal_for_both_decoders(
    moto_endpoint: str, odd_stream: tuple[str, str], cap: int
) -> None:
    stream, shard_id = odd_stream
    fast, fast_progress = _read_all(
        moto_endpoint, stream, shard_id, Decoder.FAST, max_records_per_shard=cap
    )
    ref, ref_progress = _read_all(
        moto_endpoint, stream, shard_id, Decoder.BOTO3, max_records_per_shard=cap
    )
    assert fast.equals(ref)
    assert fast_progress == ref_progress
    odd_units = sum(
        1 if added is None else added
        for added, _ in map(reference_columns, ODD_AGGREGATES.values())
    )
    assert fast.num_rows == min(cap, len(ODD_PLAIN) + len(USERS) + 500 + odd_units)


def test_raw_client_other_calls_are_plain_boto3(moto_endpoint: str, odd_stream: Any) -> None:
    raw = kinesis_client(_options(moto_endpoint), prepare=install_raw_get_records)
    plain = kinesis_client(_options(moto_endpoint))
    assert raw is not plain
    assert raw.list_shards(StreamName=odd_stream[0])["Shards"]
    assert "Records" in plain.get_records(
        ShardIterator=plain.get_shard_iterator(
            StreamName=odd_stream[0], ShardId=odd_stream[1], ShardIteratorType="LATEST"
        )["ShardIterator"]
    )


def _error_code(call: Callable[[], Any]) -> str:
    with pytest.raises(ClientError) as info:
        call()
    return str(info.value.response["Error"]["Code"])


def test_kinesis_errors_raise_the_same_client_error(kinesis: Any, moto_endpoint: str) -> None:
    name = "fast-decode-errors"
    (shard_id,) = create_stream(kinesis, name, 1)
    iterator = kinesis.get_shard_iterator(
        StreamName=name, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    kinesis.delete_stream(StreamName=name)
    raw = kinesis_client(_options(moto_endpoint), prepare=install_raw_get_records)
    for bad in (iterator, "not-an-iterator"):
        want = _error_code(lambda it=bad: kinesis.get_records(ShardIterator=it))
        assert _error_code(lambda it=bad: get_records_body(raw, it, 10)) == want


def test_decoder_option_defaults_to_fast_and_names_valid_values() -> None:
    base = {"streamName": "s", "region": REGION, "checkpointStore": "store"}
    assert parse_options(base).decoder is Decoder.FAST
    assert parse_options({**base, "DECODER": "Boto3"}).decoder is Decoder.BOTO3
    with pytest.raises(OptionError, match="fast, boto3"):
        parse_options({**base, "decoder": "simd"})


# --- the fallbacks log once, and bad bodies get a clear error on both paths ---


def _msgspec_warnings(module: ModuleType, body: bytes, caplog: pytest.LogCaptureFixture) -> Any:
    with caplog.at_level(logging.WARNING, logger="kinesis_source.records.fast_decode"):
        for _ in range(3):
            module.decode_records(body, deaggregate_kpl=True)
    return [r.getMessage() for r in caplog.records if "msgspec" in r.getMessage()]


def test_decoder_without_msgspec_logs_the_fallback_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    empty = json.dumps({"Records": [], "NextShardIterator": "it"}).encode()
    assert _msgspec_warnings(_without_msgspec(monkeypatch), empty, caplog) == [
        "msgspec is not installed: GetRecords bodies are parsed with the json module "
        "(same records, slower); pip install msgspec on the workers for speed"
    ]


def test_bodies_msgspec_rejects_log_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    pytest.importorskip("msgspec")
    import kinesis_source.records.fast_decode as installed

    monkeypatch.setattr(installed, "_warned", set())  # as in a fresh Python worker
    rejected = ODD_BODIES["null Records (msgspec rejects it)"]
    assert _msgspec_warnings(installed, rejected, caplog) == [
        "msgspec rejected a GetRecords body; decoding it with the json module as "
        "botocore would (logged once per process)"
    ]


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"{not json", "not JSON"),
        (b"[1, 2]", "not an object"),
        (b'{"Records": "x\xff"}', "not JSON"),
    ],
)
def test_bad_bodies_raise_a_clear_error(fast: ModuleType, body: bytes, error: str) -> None:
    with pytest.raises(KinesisReadError, match=error):
        fast.decode_records(body, deaggregate_kpl=True)
