"""Avro schemas as the Arrow and Spark types the decoder builds; sink columns checked
against a schema. Pure: no Spark, no server."""

from __future__ import annotations

import re
from typing import Any

import pyarrow as pa
import pytest

from kinesis_source.errors import SchemaMismatchError
from kinesis_source.records.avro_check import check_fits
from kinesis_source.records.avro_types import arrow_type, spark_ddl

ORDER: dict[str, Any] = {
    "type": "record",
    "name": "Order",
    "namespace": "shop",
    "fields": [
        {"name": "id", "type": "long"},
        {"name": "note", "type": ["null", "string"], "default": None},
        {"name": "qty", "type": "int"},
        {"name": "price", "type": "double"},
        {"name": "weight", "type": "float"},
        {"name": "paid", "type": "boolean"},
        {"name": "raw", "type": "bytes"},
        {"name": "md5", "type": {"type": "fixed", "name": "MD5", "size": 16}},
        {"name": "state", "type": {"type": "enum", "name": "State", "symbols": ["NEW", "PAID"]}},
        {"name": "day", "type": {"type": "int", "logicalType": "date"}},
        {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "at_us", "type": {"type": "long", "logicalType": "timestamp-micros"}},
        {"name": "local", "type": {"type": "long", "logicalType": "local-timestamp-millis"}},
        {
            "name": "amount",
            "type": {"type": "bytes", "logicalType": "decimal", "precision": 10, "scale": 2},
        },
        {"name": "ref", "type": {"type": "string", "logicalType": "uuid"}},
        {"name": "clock", "type": {"type": "int", "logicalType": "time-millis"}},
        {"name": "tags", "type": {"type": "array", "items": "string"}},
        {"name": "attrs", "type": {"type": "map", "values": ["long", "null"]}},
        {
            "name": "ship",
            "type": {
                "type": "record",
                "name": "Address",
                "fields": [{"name": "city", "type": "string"}],
            },
        },
        {"name": "bill", "type": ["null", "shop.Address"]},
        {"name": "back", "type": "Address"},  # short name, in the enclosing namespace
        {"name": "md5_again", "type": "MD5"},
    ],
}

ADDRESS = pa.struct([pa.field("city", pa.string(), nullable=False)])
ORDER_ARROW = pa.struct(
    [
        pa.field("id", pa.int64(), nullable=False),
        pa.field("note", pa.string()),
        pa.field("qty", pa.int32(), nullable=False),
        pa.field("price", pa.float64(), nullable=False),
        pa.field("weight", pa.float32(), nullable=False),
        pa.field("paid", pa.bool_(), nullable=False),
        pa.field("raw", pa.binary(), nullable=False),
        pa.field("md5", pa.binary(), nullable=False),
        pa.field("state", pa.string(), nullable=False),
        pa.field("day", pa.date32(), nullable=False),
        pa.field("at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("at_us", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("local", pa.timestamp("us"), nullable=False),
        pa.field("amount", pa.decimal128(10, 2), nullable=False),
        pa.field("ref", pa.string(), nullable=False),
        pa.field("clock", pa.int32(), nullable=False),
        pa.field("tags", pa.list_(pa.field("item", pa.string(), nullable=False)), nullable=False),
        pa.field("attrs", pa.map_(pa.string(), pa.field("value", pa.int64())), nullable=False),
        pa.field("ship", ADDRESS, nullable=False),
        pa.field("bill", ADDRESS),
        pa.field("back", ADDRESS, nullable=False),
        pa.field("md5_again", pa.binary(), nullable=False),
    ]
)


def test_every_avro_type_maps_to_its_arrow_type() -> None:
    found = arrow_type(ORDER)
    assert found == ORDER_ARROW
    # Nullability is part of the type (pa.DataType equality ignores it on fields).
    assert [f.nullable for f in found] == [f.nullable for f in ORDER_ARROW]
    assert found.field("attrs").type.item_field.nullable
    assert not found.field("tags").type.value_field.nullable


def test_spark_ddl_of_the_mapped_type() -> None:
    ddl = spark_ddl(arrow_type(ORDER))
    assert ddl.startswith("STRUCT<`id`: BIGINT NOT NULL, `note`: STRING, `qty`: INT NOT NULL,")
    for part in (
        "`md5`: BINARY NOT NULL",
        "`state`: STRING NOT NULL",
        "`day`: DATE NOT NULL",
        "`at`: TIMESTAMP NOT NULL",
        "`local`: TIMESTAMP_NTZ NOT NULL",
        "`amount`: DECIMAL(10, 2) NOT NULL",
        "`tags`: ARRAY<STRING> NOT NULL",
        "`attrs`: MAP<STRING, BIGINT> NOT NULL",
        "`bill`: STRUCT<`city`: STRING NOT NULL>,",
    ):
        assert part in ddl


def test_the_ddl_says_what_pysparks_own_arrow_mapping_says() -> None:
    # pyspark's from_arrow_type is pure Python (no JVM): the output schema may use either.
    from pyspark.sql.pandas.types import from_arrow_type

    spark_type = from_arrow_type(arrow_type(ORDER))
    ddl = spark_ddl(arrow_type(ORDER))
    simple = ddl.replace("`", "").replace(" NOT NULL", "").replace(": ", ":").replace(", ", ",")
    assert simple.lower() == spark_type.simpleString()
    assert not spark_type["id"].nullable
    assert spark_type["note"].nullable


@pytest.mark.parametrize(
    ("schema", "field", "reason"),
    [
        (
            {"type": "record", "name": "R", "fields": [{"name": "u", "type": ["int", "string"]}]},
            "u",
            r"the union \[int, string\] has no Spark type",
        ),
        (
            {
                "type": "record",
                "name": "Node",
                "fields": [{"name": "next", "type": ["null", "Node"]}],
            },
            "next",
            "the record Node contains itself",
        ),
        (
            {
                "type": "record",
                "name": "R",
                "fields": [
                    {
                        "name": "big",
                        "type": {"type": "bytes", "logicalType": "decimal", "precision": 40},
                    }
                ],
            },
            "big",
            "decimal precision 40",
        ),
        (
            {"type": "record", "name": "R", "fields": [{"name": "x", "type": "Nowhere"}]},
            "x",
            "unknown type 'Nowhere'",
        ),
    ],
)
def test_schemas_without_a_spark_type_name_the_field(
    schema: dict[str, Any], field: str, reason: str
) -> None:
    with pytest.raises(SchemaMismatchError, match=f"field '{field}': {reason}") as caught:
        arrow_type(schema)
    assert caught.value.field == field


def test_a_struct_column_that_fits_passes() -> None:
    # Spark's Arrow types: every field nullable, int64 for a long, timestamps with a zone.
    column = pa.struct(
        [pa.field(f.name, f.type) for f in ORDER_ARROW if f.name not in ("note", "qty")]
        + [pa.field("qty", pa.int16())]
    )
    check_fits(column, ORDER)  # note has a default; int16 fits int


@pytest.mark.parametrize(
    ("change", "field", "reason"),
    [
        ({"qty": pa.int64()}, "value.qty", "int64 does not fit the schema's int32"),
        ({"price": pa.string()}, "value.price", "string does not fit"),
        ({"at": pa.timestamp("us")}, "value.at", "does not fit"),
        ({"amount": pa.decimal128(12, 2)}, "value.amount", "does not fit"),
        ({"tags": pa.list_(pa.int64())}, "value.tags[]", "int64 does not fit"),
        (
            {"ship": pa.struct([("town", pa.string())])},
            "value.ship.town",
            "is not a field of the schema's record",
        ),
        ({"id": None}, "value.id", "is missing: the schema's field has no default"),
        ({"extra": pa.int32()}, "value.extra", "is not a field of the schema's record"),
    ],
)
def test_a_column_that_does_not_fit_names_the_field(
    change: dict[str, pa.DataType | None], field: str, reason: str
) -> None:
    fields = {f.name: f.type for f in ORDER_ARROW}
    for name, data_type in change.items():
        if data_type is None:
            del fields[name]
        else:
            fields[name] = data_type
    with pytest.raises(SchemaMismatchError, match=f"field '{re.escape(field)}'.*{reason}"):
        check_fits(pa.struct(list(fields.items())), ORDER)
