"""The sink's encoder: a struct column into registry-framed Avro records. Read back here
by hand (the documented header, fastavro's ``schemaless_reader``), then by our decoder."""

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

from kinesis_source.errors import SinkInputError
from kinesis_source.records.avro_check import check_fits
from kinesis_source.records.avro_types import arrow_type
from kinesis_source.records.glue_decode import GlueDecoder
from kinesis_source.records.glue_encode import AvroEncoder
from kinesis_source.records.glue_format import Compression

pytestmark = pytest.mark.lowest  # also on the lowest fastavro (scripts/test.sh)

SCHEMA = {
    "type": "record",
    "name": "Reading",
    "fields": [
        {"name": "sensor", "type": "string"},
        {"name": "value", "type": ["null", "double"], "default": None},
        {"name": "at", "type": {"type": "long", "logicalType": "timestamp-micros"}},
        {"name": "day", "type": {"type": "int", "logicalType": "date"}},
        {
            "name": "cost",
            "type": {"type": "bytes", "logicalType": "decimal", "precision": 8, "scale": 3},
        },
        {"name": "ref", "type": {"type": "string", "logicalType": "uuid"}},
        {"name": "labels", "type": {"type": "map", "values": {"type": "array", "items": "int"}}},
        {"name": "level", "type": {"type": "enum", "name": "Level", "symbols": ["LOW", "HIGH"]}},
    ],
}
VERSION = "c0ffee00-1234-4abc-8def-000000000001"
AT = datetime(2025, 6, 1, 8, 0, 0, 250, tzinfo=timezone.utc)
ROWS: list[dict[str, Any]] = [
    {
        "sensor": f"s{n}",
        "value": None if n == 1 else n / 4,
        "at": AT,
        "day": date(2025, 6, n + 1),
        "cost": Decimal(f"{n}.125"),
        "ref": str(uuid.UUID(int=n)),
        "labels": [("a", [n, n + 1])] if n else [],
        "level": "HIGH" if n % 2 else "LOW",
    }
    for n in range(3)
]


@dataclass(frozen=True)
class Version:
    version_id: str
    data_format: str
    definition: str


def column() -> pa.StructArray:
    # What Spark hands the sink: its own Arrow types, every field nullable.
    data_type = pa.struct([pa.field(f.name, f.type) for f in arrow_type(SCHEMA)])
    check_fits(data_type, SCHEMA)
    return pa.array(ROWS, type=data_type)


def read_by_hand(record: bytes) -> tuple[str, dict[str, Any]]:
    assert record[0] == 3 and record[1] in (0, 5)
    payload = zlib.decompress(record[18:]) if record[1] == 5 else record[18:]
    schema = fastavro.parse_schema(SCHEMA)
    return str(uuid.UUID(bytes=record[2:18])), fastavro.schemaless_reader(
        io.BytesIO(payload), schema, None
    )


@pytest.mark.parametrize("compression", [Compression.NONE, Compression.ZLIB])
def test_rows_are_framed_avro_the_registry_reads(compression: Compression) -> None:
    records = AvroEncoder(VERSION, json.dumps(SCHEMA), compression).encode(column())
    assert [r[1] for r in records] == [compression.value] * 3
    read = [read_by_hand(record) for record in records]
    assert [version for version, _ in read] == [VERSION] * 3
    for row, (_, value) in zip(ROWS, read, strict=True):
        assert value == {
            **row,
            "ref": uuid.UUID(row["ref"]),  # fastavro's reader makes uuid strings UUIDs
            "labels": dict(row["labels"]),
        }


def test_a_round_trip_through_our_decoder_gives_the_rows() -> None:
    records = AvroEncoder(VERSION, json.dumps(SCHEMA), Compression.ZLIB).encode(column())
    version = Version(VERSION, "AVRO", json.dumps(SCHEMA))
    decoded = GlueDecoder(version, {VERSION: version}.get).decode(records)
    assert decoded.decode_error.to_pylist() == [None] * 3
    assert decoded.value.to_pylist() == ROWS


def test_a_row_that_does_not_fit_names_the_column_row_and_field() -> None:
    data_type = column().type
    rows = [ROWS[0], {**ROWS[1], "sensor": None}]
    encoder = AvroEncoder(VERSION, json.dumps(SCHEMA))
    with pytest.raises(SinkInputError, match=r"column 'value', row 1 .* on field sensor"):
        encoder.encode(pa.array(rows, type=data_type))
    bad_enum = [{**ROWS[0], "level": "MEDIUM"}]
    with pytest.raises(SinkInputError, match=r"row 0 .*MEDIUM"):
        encoder.encode(pa.array(bad_enum, type=data_type))
