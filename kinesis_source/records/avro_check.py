"""Does a column's Arrow type fit an Avro schema? Pure (pyarrow only).

The sink calls ``check_fits`` on the driver with the Arrow form of its ``value`` column's
Spark type (``pyspark.sql.pandas.types.to_arrow_type``), before any task runs, so that a
mismatch is one error naming the field rather than a failed task per row.

What fits, field by field (each is what fastavro's writer takes for the Avro type):
- a struct fits a record when it has every field of the record that has no default, and
  no field the record lacks (it would be dropped without a word);
- integers fit ``int``/``long`` when no wider than them; ``float`` takes float32,
  ``double`` float32 and float64; strings fit ``string``, ``enum`` and ``uuid`` (an enum
  symbol is checked per row by the writer); binaries fit ``bytes`` and ``fixed``;
- decimals fit a decimal that keeps every digit (scale and integer digits no smaller);
- a timestamp with a time zone fits ``timestamp-*``, one without fits
  ``local-timestamp-*``; dates fit ``date``;
- lists, maps (string keys) and structs fit by their items.

Nullability is not compared: Spark marks most columns nullable whether or not they hold a
null. A null where the schema has none fails that row when the sink encodes it
(``glue_encode``), with the field's name.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from kinesis_source.errors import SchemaMismatchError
from kinesis_source.records.avro_types import arrow_type_with_defaults


def check_fits(column: pa.DataType, schema: Any, *, name: str = "value") -> None:
    """``SchemaMismatchError`` naming the field (``name`` first) where ``column`` does not
    fit the Avro ``schema``; also when the schema itself has no Spark type."""
    expected, defaults = arrow_type_with_defaults(schema)
    _fit(column, expected, "", defaults, name)


def _fit(
    actual: pa.DataType, expected: pa.DataType, path: str, defaults: frozenset[str], name: str
) -> None:
    where = f"{name}.{path}" if path else name
    if pa.types.is_struct(expected):
        if not pa.types.is_struct(actual):
            raise _mismatch(where, actual, expected)
        have = {field.name: field for field in actual}
        extra = [field.name for field in actual if expected.get_field_index(field.name) < 0]
        if extra:
            raise SchemaMismatchError(
                f"{where}.{extra[0]}" if where else extra[0],
                "is not a field of the schema's record (its fields: "
                f"{', '.join(field.name for field in expected)})",
            )
        for field in expected:
            field_path = f"{path}.{field.name}" if path else field.name
            if field.name not in have:
                if field_path in defaults:
                    continue
                raise SchemaMismatchError(
                    f"{name}.{field_path}", "is missing: the schema's field has no default"
                )
            _fit(have[field.name].type, field.type, field_path, defaults, name)
        return
    if pa.types.is_list(expected):
        if not (pa.types.is_list(actual) or pa.types.is_large_list(actual)):
            raise _mismatch(where, actual, expected)
        _fit(actual.value_type, expected.value_type, f"{path}[]", defaults, name)
        return
    if pa.types.is_map(expected):
        if not pa.types.is_map(actual):
            raise _mismatch(where, actual, expected)
        if not _is_string(actual.key_type):
            raise SchemaMismatchError(where, f"map keys are {actual.key_type}; Avro's are strings")
        _fit(actual.item_type, expected.item_type, f"{path}{{}}", defaults, name)
        return
    if not _scalar_fits(actual, expected):
        raise _mismatch(where, actual, expected)


def _scalar_fits(actual: pa.DataType, expected: pa.DataType) -> bool:
    if actual == expected:
        return True
    if pa.types.is_integer(expected):
        return bool(pa.types.is_integer(actual)) and _int_fits(actual, expected.bit_width)
    if expected == pa.float64():
        return bool(actual in (pa.float32(), pa.float16()))
    if expected == pa.float32():
        return bool(actual == pa.float16())
    if pa.types.is_string(expected):
        return _is_string(actual)
    if pa.types.is_binary(expected):
        return bool(
            pa.types.is_binary(actual)
            or pa.types.is_large_binary(actual)
            or pa.types.is_fixed_size_binary(actual)
        )
    if pa.types.is_decimal(expected):
        return bool(
            pa.types.is_decimal(actual)
            and actual.scale <= expected.scale
            and actual.precision - actual.scale <= expected.precision - expected.scale
        )
    if pa.types.is_timestamp(expected):
        return bool(pa.types.is_timestamp(actual)) and (actual.tz is None) == (expected.tz is None)
    return False


def _int_fits(actual: pa.DataType, bits: int) -> bool:
    if pa.types.is_signed_integer(actual):
        return bool(actual.bit_width <= bits)
    return bool(actual.bit_width < bits)  # unsigned: one bit fewer than the signed type


def _is_string(data_type: pa.DataType) -> bool:
    return bool(pa.types.is_string(data_type) or pa.types.is_large_string(data_type))


def _mismatch(where: str, actual: pa.DataType, expected: pa.DataType) -> SchemaMismatchError:
    return SchemaMismatchError(
        where, f"the column's type {actual} does not fit the schema's {expected}"
    )
