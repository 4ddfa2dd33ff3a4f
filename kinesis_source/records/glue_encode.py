"""A column of rows into registry-framed Avro records, for the sink. Pure (fastavro, pyarrow).

The driver has checked the column's type against the schema (``avro_check.check_fits``);
each task encodes its rows with fastavro's ``schemaless_writer`` (Avro binary of one datum,
no container header, as the registry's serializer writes it) and frames them with the
schema version's id (``glue_format.frame_with``), compressed when asked.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

import fastavro
import pyarrow as pa

from kinesis_source.errors import SinkInputError
from kinesis_source.records.avro_types import decoder_schema
from kinesis_source.records.glue_format import Compression, frame_with, version_id_bytes

Convert = Callable[[Any], Any]


class AvroEncoder:
    """Encodes rows with one schema version: its id and definition (Avro JSON text)."""

    def __init__(
        self, version_id: str, definition: str, compression: Compression = Compression.NONE
    ) -> None:
        self.version_id = version_id
        self.compression = compression
        self._raw_id = version_id_bytes(version_id)
        # As the decoder does: uuid and time-* are written from their plain values
        # (strings, integers), which is what the Arrow types of avro_types hold.
        self._schema = fastavro.parse_schema(decoder_schema(json.loads(definition)))
        self._converters: dict[pa.DataType, Convert | None] = {}

    def encode(self, column: pa.Array | pa.ChunkedArray, *, name: str = "value") -> list[bytes]:
        """Each row of ``column`` as one framed record; ``SinkInputError`` naming the column,
        the row and fastavro's reason (which names the field) for a row that does not fit."""
        convert = self._converter(column.type)
        rows = column.to_pylist()
        out: list[bytes] = []
        writer = fastavro.schemaless_writer
        schema = self._schema
        for index, row in enumerate(rows):
            buffer = io.BytesIO()
            try:
                writer(buffer, schema, convert(row) if convert is not None else row)
            except Exception as exc:  # fastavro raises many types; each names the field
                raise SinkInputError(
                    f"column '{name}', row {index} does not fit schema version "
                    f"{self.version_id}: {type(exc).__name__}: {exc}"
                ) from exc
            out.append(frame_with(buffer.getvalue(), self._raw_id, self.compression))
        return out

    def _converter(self, data_type: pa.DataType) -> Convert | None:
        if data_type not in self._converters:
            self._converters[data_type] = python_converter(data_type)
        return self._converters[data_type]


def python_converter(data_type: pa.DataType) -> Convert | None:
    """What turns ``to_pylist``'s values of ``data_type`` into what fastavro writes, or
    None when they are already that: Arrow gives maps as lists of (key, value) pairs,
    fastavro wants dicts."""
    if pa.types.is_map(data_type):
        inner = python_converter(data_type.item_type)
        if inner is None:
            return lambda pairs: None if pairs is None else dict(pairs)
        return lambda pairs: None if pairs is None else {k: inner(v) for k, v in pairs}
    if pa.types.is_list(data_type) or pa.types.is_large_list(data_type):
        item = python_converter(data_type.value_type)
        if item is None:
            return None
        return lambda items: None if items is None else [item(v) for v in items]
    if pa.types.is_struct(data_type):
        fields = [(f.name, python_converter(f.type)) for f in data_type]
        converted = [(n, c) for n, c in fields if c is not None]
        if not converted:
            return None

        def struct(row: Any) -> Any:
            if row is None:
                return None
            out = dict(row)
            for field_name, convert in converted:
                out[field_name] = convert(out[field_name])
            return out

        return struct
    return None
