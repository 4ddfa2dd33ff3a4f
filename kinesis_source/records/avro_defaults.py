"""Reader-schema defaults as the values the decoder's Arrow types take. Pure.

When a writer lacks a field of the reader schema, fastavro hands back the field's default
as written in the schema's JSON, not as a decoded value: a ``bytes`` default stays a
string, a ``decimal`` default a string of bytes, a ``timestamp-millis`` default a number of
milliseconds. Arrow then refuses the first two and would read the third as microseconds.
``set_python_defaults`` replaces such defaults, in a schema fastavro has parsed (so its
checks of the JSON defaults have passed), by the values fastavro would have decoded.
A default that is already right (null, numbers, strings, enums) is left alone.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_LOCAL_EPOCH = datetime(1970, 1, 1)
_EPOCH_DAY = date(1970, 1, 1)


def set_python_defaults(parsed: Any) -> Any:
    """``parsed`` (a fastavro-parsed reader schema) with its fields' defaults decoded, in
    place; returns it."""
    _walk(parsed, {})
    return parsed


def _walk(schema: Any, names: dict[str, Any]) -> None:
    if isinstance(schema, list):
        for branch in schema:
            _walk(branch, names)
        return
    if not isinstance(schema, dict):
        return
    if "name" in schema and schema.get("type") in ("record", "error", "enum", "fixed"):
        names[str(schema["name"])] = schema
    kind = schema.get("type")
    if kind in ("record", "error"):
        for field in schema.get("fields", []):
            _walk(field["type"], names)
            if "default" in field:
                field["default"] = python_value(field["type"], field["default"], names)
    elif kind == "array":
        _walk(schema.get("items"), names)
    elif kind == "map":
        _walk(schema.get("values"), names)


def python_value(schema: Any, value: Any, names: dict[str, Any]) -> Any:
    """A default ``value`` of ``schema`` as written in JSON, as fastavro decodes such a value
    (with ``avro_types.decoder_schema``'s plain uuid and time types)."""
    if value is None:
        return None
    if isinstance(schema, list):  # a union's default is of its first branch
        return python_value(schema[0], value, names) if schema else value
    if isinstance(schema, str):
        if schema == "bytes":
            return _bytes(value)
        if schema in names:
            return python_value(names[schema], value, names)
        return value
    kind = schema.get("type")
    if not isinstance(kind, str):
        return python_value(kind, value, names)
    logical = schema.get("logicalType")
    if kind in ("bytes", "fixed"):
        raw = _bytes(value)
        if logical == "decimal":
            unscaled = int.from_bytes(raw, "big", signed=True)
            return Decimal(unscaled).scaleb(-int(schema.get("scale", 0)))
        return raw
    if logical == "date" and kind == "int":
        return _EPOCH_DAY + timedelta(days=value)
    if kind == "long" and logical in _TIMESTAMPS:
        epoch, unit = _TIMESTAMPS[logical]
        return epoch + timedelta(**{unit: value})
    if kind in ("record", "error") and isinstance(value, dict):
        return {
            field["name"]: python_value(field["type"], value.get(field["name"]), names)
            for field in schema.get("fields", [])
            if field["name"] in value
        }
    if kind == "array" and isinstance(value, list):
        return [python_value(schema.get("items"), item, names) for item in value]
    if kind == "map" and isinstance(value, dict):
        return {key: python_value(schema.get("values"), item, names) for key, item in value.items()}
    if kind in names:  # {"type": "SomeNamedType"}
        return python_value(names[kind], value, names)
    return value


_TIMESTAMPS = {
    "timestamp-millis": (_EPOCH, "milliseconds"),
    "timestamp-micros": (_EPOCH, "microseconds"),
    "local-timestamp-millis": (_LOCAL_EPOCH, "milliseconds"),
    "local-timestamp-micros": (_LOCAL_EPOCH, "microseconds"),
}


def _bytes(value: Any) -> Any:
    # The Avro spec: a bytes or fixed default is a string whose code points 0-255 are the
    # bytes.
    return value.encode("latin-1") if isinstance(value, str) else value
