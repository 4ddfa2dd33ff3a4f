"""Avro schemas as Arrow and Spark types. Pure (pyarrow only, no Spark, no Avro library).

``arrow_type(schema)`` maps a parsed Avro schema (the JSON of a registry's schema version)
to the Arrow type the page decoder builds, and ``spark_ddl`` writes that type as Spark DDL
for the output schema:

    record -> struct (field order kept)   array -> list      map -> map<string, ...>
    enum -> string                        fixed, bytes -> binary
    [null, T] or [T, null] -> T, nullable (any other union: ``SchemaMismatchError``)
    date -> date32                        timestamp-millis/-micros -> timestamp[us, UTC]
    local-timestamp-millis/-micros -> timestamp[us] (Spark's TIMESTAMP_NTZ)
    decimal (bytes or fixed) -> decimal128(p, s)
    uuid -> string                        time-millis -> int32, time-micros -> int64

Timestamps are all microseconds because Spark's are. Spark has no time-of-day type, so
time-millis and time-micros stay numbers (``decoder_schema`` has the decoder leave them so).
A logical type on a base type the Avro spec does not allow it on is ignored, as the spec
says, and as fastavro does. A field is nullable only when its union admits null.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from kinesis_source.errors import SchemaMismatchError

PRIMITIVES: dict[str, pa.DataType] = {
    "null": pa.null(),
    "boolean": pa.bool_(),
    "int": pa.int32(),
    "long": pa.int64(),
    "float": pa.float32(),
    "double": pa.float64(),
    "bytes": pa.binary(),
    "string": pa.string(),
}
# (logical type, base type) -> Arrow type; decimal is apart (it has parameters).
LOGICAL: dict[tuple[str, str], pa.DataType] = {
    ("date", "int"): pa.date32(),
    ("timestamp-millis", "long"): pa.timestamp("us", tz="UTC"),
    ("timestamp-micros", "long"): pa.timestamp("us", tz="UTC"),
    ("local-timestamp-millis", "long"): pa.timestamp("us"),
    ("local-timestamp-micros", "long"): pa.timestamp("us"),
    ("uuid", "string"): pa.string(),
}
# Logical types the decoder reads as their base type: fastavro would hand back objects
# (datetime.time, uuid.UUID) that the Arrow types above do not take.
PLAIN_LOGICAL = frozenset({"uuid", "time-millis", "time-micros"})
# Spark's DecimalType holds at most 38 digits.
MAX_DECIMAL_PRECISION = 38
NAMED = ("record", "enum", "fixed")


class _Names:
    """Named types met so far, by full name, for references by name."""

    def __init__(self) -> None:
        self.types: dict[str, Any] = {}
        self.open: set[str] = set()  # records being mapped: a reference to one is a cycle


def full_name(name: str, namespace: str | None) -> str:
    if "." in name or not namespace:
        return name
    return f"{namespace}.{name}"


def arrow_type(schema: Any) -> pa.DataType:
    """The Arrow type of values of the Avro ``schema``; ``SchemaMismatchError`` naming the
    field when one has no Spark type (a union of two non-null types, a recursive record, a
    decimal over 38 digits)."""
    return _Mapper().type_of(schema, "", None)[0]


def arrow_type_with_defaults(schema: Any) -> tuple[pa.DataType, frozenset[str]]:
    """``arrow_type`` and the dotted paths of the record fields that have a default (a
    writer may leave them out)."""
    mapper = _Mapper()
    found = mapper.type_of(schema, "", None)[0]
    return found, frozenset(mapper.defaults)


class _Mapper:
    def __init__(self) -> None:
        self.names = _Names()
        self.defaults: set[str] = set()

    def type_of(self, schema: Any, path: str, namespace: str | None) -> tuple[pa.DataType, bool]:
        """(type, nullable) of ``schema`` at ``path``."""
        if isinstance(schema, list):
            return self._union(schema, path, namespace)
        if isinstance(schema, str):
            if schema in PRIMITIVES:
                return PRIMITIVES[schema], schema == "null"
            return self._reference(schema, path, namespace), False
        if not isinstance(schema, dict) or "type" not in schema:
            raise SchemaMismatchError(path, f"not an Avro schema: {schema!r}")
        kind = schema["type"]
        if isinstance(kind, (dict, list)):  # {"type": {"type": "array", ...}}
            return self.type_of(kind, path, namespace)
        logical = self._logical(schema, kind, path, namespace)
        if logical is not None:
            return logical, False
        if kind in NAMED:
            return self._named(schema, kind, path, namespace), False
        if kind == "array":
            item, nullable = self.type_of(schema.get("items"), _join(path, "[]"), namespace)
            return pa.list_(pa.field("item", item, nullable=nullable)), False
        if kind == "map":
            value, nullable = self.type_of(schema.get("values"), _join(path, "{}"), namespace)
            return pa.map_(pa.string(), pa.field("value", value, nullable=nullable)), False
        return self.type_of(kind, path, namespace)

    def _union(
        self, branches: list[Any], path: str, namespace: str | None
    ) -> tuple[pa.DataType, bool]:
        others = [b for b in branches if b != "null"]
        nullable = len(others) < len(branches)
        if not others:
            return pa.null(), True
        if len(others) > 1:
            shown = ", ".join(_type_name(b) for b in branches)
            raise SchemaMismatchError(
                path,
                f"the union [{shown}] has no Spark type: only a union of one type with "
                "null (an optional field) is supported",
            )
        found, inner_nullable = self.type_of(others[0], path, namespace)
        return found, nullable or inner_nullable

    def _logical(
        self, schema: dict[str, Any], kind: Any, path: str, namespace: str | None
    ) -> pa.DataType | None:
        logical = schema.get("logicalType")
        if logical is None or not isinstance(kind, str):
            return None
        if logical == "decimal" and kind in ("bytes", "fixed"):
            precision = schema.get("precision")
            scale = schema.get("scale", 0)
            if not isinstance(precision, int) or not 0 < precision <= MAX_DECIMAL_PRECISION:
                raise SchemaMismatchError(
                    path,
                    f"decimal precision {precision!r}: Spark's decimals hold 1 to "
                    f"{MAX_DECIMAL_PRECISION} digits",
                )
            if not isinstance(scale, int) or not 0 <= scale <= precision:
                raise SchemaMismatchError(path, f"decimal scale {scale!r} is not 0 to {precision}")
            if kind == "fixed":
                self._register(schema, path, namespace)
            return pa.decimal128(precision, scale)
        return LOGICAL.get((logical, kind))

    def _named(
        self, schema: dict[str, Any], kind: str, path: str, namespace: str | None
    ) -> pa.DataType:
        name = self._register(schema, path, namespace)
        if kind == "enum":
            return pa.string()
        if kind == "fixed":
            return pa.binary()
        inner_namespace = name.rpartition(".")[0] or None
        self.names.open.add(name)
        fields = []
        for field in schema.get("fields", []):
            field_path = _join(path, field["name"])
            if "default" in field:
                self.defaults.add(field_path)
            field_type, nullable = self.type_of(field["type"], field_path, inner_namespace)
            fields.append(pa.field(field["name"], field_type, nullable=nullable))
        self.names.open.discard(name)
        return pa.struct(fields)

    def _register(self, schema: dict[str, Any], path: str, namespace: str | None) -> str:
        name = full_name(str(schema.get("name", "")), schema.get("namespace", namespace))
        self.names.types[name] = schema
        return name

    def _reference(self, name: str, path: str, namespace: str | None) -> pa.DataType:
        for candidate in (full_name(name, namespace), name):
            if candidate in self.names.open:
                raise SchemaMismatchError(
                    path, f"the record {candidate} contains itself; Spark types cannot recurse"
                )
            found = self.names.types.get(candidate)
            if found is not None:
                candidate_namespace = candidate.rpartition(".")[0] or None
                return self.type_of(found, path, candidate_namespace)[0]
        raise SchemaMismatchError(path, f"unknown type {name!r}")


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _type_name(schema: Any) -> str:
    if isinstance(schema, dict):
        return str(schema.get("name") or schema.get("type"))
    return str(schema)


def decoder_schema(schema: Any) -> Any:
    """``schema`` with the logical types in ``PLAIN_LOGICAL`` removed, for the writer side
    of the decoder (fastavro converts by the writer's logical type)."""
    if isinstance(schema, list):
        return [decoder_schema(branch) for branch in schema]
    if not isinstance(schema, dict):
        return schema
    out = {
        key: decoder_schema(value) if key in ("type", "items", "values") else value
        for key, value in schema.items()
        if not (key == "logicalType" and value in PLAIN_LOGICAL)
    }
    if "fields" in schema:
        out["fields"] = [{**f, "type": decoder_schema(f["type"])} for f in schema["fields"]]
    return out


def spark_ddl(data_type: pa.DataType) -> str:
    """An Arrow type of ``arrow_type`` as a Spark DDL type (``STRUCT<`a`: BIGINT, ...>``)."""
    if pa.types.is_struct(data_type):
        fields = []
        for field in data_type:
            name = field.name.replace("`", "``")
            null = "" if field.nullable else " NOT NULL"
            fields.append(f"`{name}`: {spark_ddl(field.type)}{null}")
        return f"STRUCT<{', '.join(fields)}>"
    if pa.types.is_map(data_type):
        return f"MAP<STRING, {spark_ddl(data_type.item_type)}>"
    if pa.types.is_list(data_type):
        return f"ARRAY<{spark_ddl(data_type.value_type)}>"
    if pa.types.is_decimal(data_type):
        return f"DECIMAL({data_type.precision}, {data_type.scale})"
    if pa.types.is_timestamp(data_type):
        return "TIMESTAMP" if data_type.tz is not None else "TIMESTAMP_NTZ"
    for arrow, ddl in _SPARK_NAMES:
        if data_type == arrow:
            return ddl
    raise SchemaMismatchError("", f"the Arrow type {data_type} has no Spark DDL here")


_SPARK_NAMES = (
    (pa.null(), "VOID"),
    (pa.bool_(), "BOOLEAN"),
    (pa.int32(), "INT"),
    (pa.int64(), "BIGINT"),
    (pa.float32(), "FLOAT"),
    (pa.float64(), "DOUBLE"),
    (pa.binary(), "BINARY"),
    (pa.string(), "STRING"),
    (pa.date32(), "DATE"),
)
