"""Registry-framed pages decoded into the ``value``/``schemaVersionId``/``decodeError``
columns. Pure: the schema versions come from a dict here (the registry is tests/aws').

Records are written the way a registry producer writes them, independently of the code
under test: fastavro's ``schemaless_writer`` for the payload, the header spelled out from
the documented layout (``registry_frame``), ``zlib.compress`` for compressed ones.
"""

from __future__ import annotations

import io
import json
import uuid
import zlib
from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any

import fastavro
import pyarrow as pa
import pytest

from kinesis_source.errors import SchemaMismatchError
from kinesis_source.records.aggregation import AggregateBuilder
from kinesis_source.records.glue_decode import GlueDecoder
from kinesis_source.records.records_page import page_from_response

pytestmark = pytest.mark.lowest  # also on the lowest fastavro (scripts/test.sh)

V1 = {
    "type": "record",
    "name": "Click",
    "fields": [
        {"name": "user", "type": "string"},
        {"name": "count", "type": "long"},
        {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
    ],
}
# Version 2 adds a field with a default (a BACKWARD-compatible change).
V2 = {
    **V1,
    "fields": [
        *V1["fields"],
        {"name": "page", "type": ["null", "string"], "default": None},
        {
            "name": "amount",
            "type": {"type": "bytes", "logicalType": "decimal", "precision": 9, "scale": 2},
            "default": "\u0000",
        },
    ],
}
ID1 = "6f1b2a3c-0d4e-4f50-8a61-7b8c9d0e1f20"
ID2 = "a0b1c2d3-e4f5-4a6b-9c7d-8e9f00112233"
JSON_ID = "11111111-2222-4333-8444-555555555555"
PROTO_ID = "99999999-8888-4777-8666-555555555555"
AT = datetime(2025, 3, 1, 12, 30, 15, 123000, tzinfo=timezone.utc)


@dataclass(frozen=True)
class Version:
    version_id: str
    data_format: str
    definition: str


REGISTRY = {
    ID1: Version(ID1, "AVRO", json.dumps(V1)),
    ID2: Version(ID2, "AVRO", json.dumps(V2)),
    JSON_ID: Version(JSON_ID, "JSON", json.dumps({"type": "object"})),
    PROTO_ID: Version(PROTO_ID, "PROTOBUF", 'syntax = "proto3"; message M {}'),
}


class Lookups:
    """The registry as a dict, counting look-ups."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def __call__(self, version_id: str) -> Version | None:
        self.asked.append(version_id)
        return REGISTRY.get(version_id)


def registry_frame(payload: bytes, version_id: str, *, compress: bool = False) -> bytes:
    """Header version 3, compression 0 or 5, the UUID's 16 bytes, the (zlib) payload."""
    body = zlib.compress(payload) if compress else payload
    return bytes([3, 5 if compress else 0]) + uuid.UUID(version_id).bytes + body


def avro(schema: dict[str, Any], record: dict[str, Any]) -> bytes:
    out = io.BytesIO()
    fastavro.schemaless_writer(out, fastavro.parse_schema(schema), record)
    return out.getvalue()


def click(n: int, schema: dict[str, Any] = V1, **extra: Any) -> bytes:
    return avro(schema, {"user": f"u{n}", "count": n, "at": AT, **extra})


def decoded(columns: Any) -> list[tuple[Any, Any, Any]]:
    return list(
        zip(
            columns.value.to_pylist(),
            columns.schema_version_id.to_pylist(),
            columns.decode_error.to_pylist(),
            strict=True,
        )
    )


def test_two_versions_read_into_the_newest_schema_zlib_and_plain_mixed() -> None:
    lookups = Lookups()
    decoder = GlueDecoder(REGISTRY[ID2], lookups)
    page = [
        registry_frame(click(1), ID1),
        registry_frame(click(2, V2, page="/home", amount=Decimal("12.34")), ID2, compress=True),
        registry_frame(click(3), ID1, compress=True),
        registry_frame(click(4, V2, page=None, amount=Decimal("-0.50")), ID2),
    ]
    columns = decoder.decode(page)
    assert columns.value.type == pa.struct(
        [
            pa.field("user", pa.string(), nullable=False),
            pa.field("count", pa.int64(), nullable=False),
            pa.field("at", pa.timestamp("us", tz="UTC"), nullable=False),
            pa.field("page", pa.string()),
            pa.field("amount", pa.decimal128(9, 2), nullable=False),
        ]
    )
    zero = Decimal("0.00")
    assert decoded(columns) == [
        ({"user": "u1", "count": 1, "at": AT, "page": None, "amount": zero}, ID1, None),
        (
            {"user": "u2", "count": 2, "at": AT, "page": "/home", "amount": Decimal("12.34")},
            ID2,
            None,
        ),
        ({"user": "u3", "count": 3, "at": AT, "page": None, "amount": zero}, ID1, None),
        (
            {"user": "u4", "count": 4, "at": AT, "page": None, "amount": Decimal("-0.50")},
            ID2,
            None,
        ),
    ]
    # Each version is looked up once per decoder, however many records carry it.
    assert sorted(lookups.asked) == sorted([ID1, ID2])
    decoder.decode(page)
    assert len(lookups.asked) == 2


def test_an_older_reader_drops_the_newer_writers_field() -> None:
    decoder = GlueDecoder(REGISTRY[ID1], Lookups())
    page = [registry_frame(click(5, V2, page="/x", amount=Decimal("1.00")), ID2)]
    assert decoded(decoder.decode(page)) == [({"user": "u5", "count": 5, "at": AT}, ID2, None)]


@pytest.mark.parametrize("arrow", [False, True], ids=["list", "arrow"])
def test_undecodable_records_get_a_reason_and_a_null_value_the_rest_decode(arrow: bool) -> None:
    unknown = "00000000-0000-4000-8000-000000000000"
    decoder = GlueDecoder(REGISTRY[ID1], Lookups())
    page: Any = [
        b'{"user": "no header"}',
        registry_frame(click(1), unknown),
        registry_frame(b"\x02\xff", ID1),  # a string length longer than the payload
        registry_frame(click(2) + b"\x00\x00", ID1),  # bytes after the record
        registry_frame(b"{}", JSON_ID),
        registry_frame(click(3), ID1),
        b"\x03\x05" + uuid.UUID(ID1).bytes + b"not zlib",
    ]
    if arrow:  # the source's column, a slice of a page: its offsets do not start at 0
        page = pa.array([b"before", *page], pa.binary()).slice(1)
    rows = decoded(decoder.decode(page))
    assert [value for value, _, _ in rows] == [None] * 5 + [
        {"user": "u3", "count": 3, "at": AT},
        None,
    ]
    assert [version for _, version, _ in rows] == [None, unknown, ID1, ID1, JSON_ID, ID1, None]
    errors = [error for _, _, error in rows]
    assert errors[0].startswith("no registry header: byte 0 is 0x7b")
    assert errors[1] == f"unknown schema version {unknown}"
    assert errors[2].startswith("bad AVRO payload: ")
    assert errors[3] == "bad AVRO payload: ValueError: 2 bytes left after the record"
    assert errors[4] == f"schema version {JSON_ID} is JSON, the reader schema AVRO"
    assert errors[5] is None
    assert errors[6].startswith("zlib payload does not inflate")


def test_json_schema_payloads_come_out_as_strings() -> None:
    decoder = GlueDecoder(REGISTRY[JSON_ID], Lookups())
    texts = ['{"user": "u1", "count": 1}', '{"name": "caf\u00e9"}']
    page = [
        registry_frame(texts[0].encode(), JSON_ID),
        registry_frame(texts[1].encode(), JSON_ID, compress=True),
        registry_frame(b"\xff\xfe", JSON_ID),
        registry_frame(click(1), ID1),
    ]
    rows = decoded(decoder.decode(page))
    assert rows[:2] == [(texts[0], JSON_ID, None), (texts[1], JSON_ID, None)]
    assert rows[2][0] is None and rows[2][2].startswith("bad JSON payload: UnicodeDecodeError")
    assert rows[3] == (None, ID1, f"schema version {ID1} is AVRO, the reader schema JSON")


def test_a_protobuf_reader_schema_is_refused() -> None:
    with pytest.raises(SchemaMismatchError, match="is PROTOBUF; the decoder reads AVRO and JSON"):
        GlueDecoder(REGISTRY[PROTO_ID], Lookups())


def test_kpl_aggregates_of_framed_records() -> None:
    """Framed records packed by the sink's KPL aggregator, read back by the reference page
    decoder (which deaggregates), then decoded: same rows, in order."""
    users = [registry_frame(click(n), ID1, compress=n % 2 == 0) for n in range(5)]
    builder = AggregateBuilder(1024 * 1024)
    for n, data in enumerate(users[:4]):
        assert builder.add(f"key{n}", None, data)
    response = {
        "Records": [
            {
                "SequenceNumber": "1",
                "ApproximateArrivalTimestamp": AT,
                "Data": builder.build(),
                "PartitionKey": "key0",
            },
            {
                "SequenceNumber": "2",
                "ApproximateArrivalTimestamp": AT,
                "Data": users[4],
                "PartitionKey": "key4",
            },
        ],
        "NextShardIterator": "next",
        "MillisBehindLatest": 0,
    }
    page = page_from_response(response, deaggregate_kpl=True)
    assert page.unit_count == 5
    rows = decoded(GlueDecoder(REGISTRY[ID1], Lookups()).decode(page.data))
    assert rows == [({"user": f"u{n}", "count": n, "at": AT}, ID1, None) for n in range(5)]


def test_an_arrow_data_column_decodes_like_a_list() -> None:
    page = [registry_frame(click(n), ID1, compress=n == 1) for n in range(3)]
    decoder = GlueDecoder(REGISTRY[ID1], Lookups())
    assert decoded(decoder.decode(pa.array(page, pa.binary()))) == decoded(decoder.decode(page))


def test_logical_types_come_out_as_their_arrow_types() -> None:
    schema = {
        "type": "record",
        "name": "L",
        "fields": [
            {"name": "day", "type": {"type": "int", "logicalType": "date"}},
            {"name": "us", "type": {"type": "long", "logicalType": "timestamp-micros"}},
            {"name": "local", "type": {"type": "long", "logicalType": "local-timestamp-millis"}},
            {"name": "ref", "type": {"type": "string", "logicalType": "uuid"}},
            {"name": "clock", "type": {"type": "long", "logicalType": "time-micros"}},
            {
                "name": "cents",
                "type": {
                    "type": "fixed",
                    "name": "Cents",
                    "size": 8,
                    "logicalType": "decimal",
                    "precision": 18,
                    "scale": 2,
                },
            },
            {"name": "kind", "type": {"type": "enum", "name": "K", "symbols": ["A", "B"]}},
            {"name": "attrs", "type": {"type": "map", "values": "int"}},
            {"name": "tags", "type": {"type": "array", "items": ["null", "string"]}},
        ],
    }
    version = "12345678-1234-4234-8234-123456789abc"
    lookup = {version: Version(version, "AVRO", json.dumps(schema))}
    ref = uuid.UUID("87654321-4321-4321-8321-cba987654321")
    at = datetime(2024, 2, 29, 23, 59, 59, 999999, tzinfo=timezone.utc)
    record = {
        "day": date(2024, 2, 29),
        "us": at,
        "local": datetime(2024, 2, 29, 8, 0, 0, 1000),
        "ref": ref,
        "clock": 3_600_000_001,
        "cents": Decimal("-123.45"),
        "kind": "B",
        "attrs": {"a": 1},
        "tags": ["x", None],
    }
    columns = GlueDecoder(lookup[version], lookup.get).decode(
        [registry_frame(avro(schema, record), version)]
    )
    (value,) = columns.value.to_pylist()
    assert value == {
        **record,
        "ref": str(ref),
        "attrs": [("a", 1)],  # Arrow's Python form of a map
    }
    assert columns.value.type.field("clock").type == pa.int64()
    assert columns.value.type.field("local").type == pa.timestamp("us")


def test_defaults_of_fields_the_writer_lacks_read_as_their_values() -> None:
    """fastavro hands back a missing field's JSON default as written; the decoder gives the
    value (bytes, decimal, timestamp, date, nested), as if the writer had written it."""
    old = {"type": "record", "name": "E", "fields": [{"name": "id", "type": "long"}]}
    new = {
        "type": "record",
        "name": "E",
        "fields": [
            {"name": "id", "type": "long"},
            {"name": "blob", "type": "bytes", "default": "\u00ff\u0001"},
            {
                "name": "price",
                "type": {"type": "bytes", "logicalType": "decimal", "precision": 6, "scale": 2},
                "default": "\u0004\u00d2",  # 1234 -> 12.34
            },
            {
                "name": "seen",
                "type": {"type": "long", "logicalType": "timestamp-millis"},
                "default": 1_700_000_000_123,
            },
            {"name": "day", "type": {"type": "int", "logicalType": "date"}, "default": 19_000},
            {
                "name": "box",
                "type": {
                    "type": "record",
                    "name": "Box",
                    "fields": [
                        {"name": "tag", "type": {"type": "fixed", "name": "Two", "size": 2}}
                    ],
                },
                "default": {"tag": "ab"},
            },
            {"name": "maybe", "type": ["null", "bytes"], "default": None},
            {"name": "n", "type": "int", "default": 7},
        ],
    }
    old_id, new_id = "0000000a-0000-4000-8000-00000000000a", "0000000b-0000-4000-8000-00000000000b"
    versions = {
        old_id: Version(old_id, "AVRO", json.dumps(old)),
        new_id: Version(new_id, "AVRO", json.dumps(new)),
    }
    columns = GlueDecoder(versions[new_id], versions.get).decode(
        [registry_frame(avro(old, {"id": 1}), old_id)]
    )
    assert columns.decode_error.to_pylist() == [None]
    assert columns.value.to_pylist() == [
        {
            "id": 1,
            "blob": b"\xff\x01",
            "price": Decimal("12.34"),
            "seen": datetime(2023, 11, 14, 22, 13, 20, 123000, tzinfo=timezone.utc),
            "day": date(2022, 1, 8),
            "box": {"tag": b"ab"},
            "maybe": None,
            "n": 7,
        }
    ]


def test_a_writer_version_the_reader_cannot_resolve_says_so() -> None:
    clash_id = "0000000c-0000-4000-8000-00000000000c"
    clash = {**V1, "fields": [{"name": "user", "type": "long"}]}
    versions = {ID1: REGISTRY[ID1], clash_id: Version(clash_id, "AVRO", json.dumps(clash))}
    rows = decoded(
        GlueDecoder(REGISTRY[ID1], versions.get).decode(
            [registry_frame(avro(clash, {"user": 5}), clash_id), registry_frame(click(1), ID1)]
        )
    )
    assert rows[0][:2] == (None, clash_id)
    assert rows[0][2].startswith(f"schema version {clash_id} cannot be read as the reader schema")
    assert rows[1] == ({"user": "u1", "count": 1, "at": AT}, ID1, None)
