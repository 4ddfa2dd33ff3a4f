"""Registry-framed records of one page into Arrow columns. Pure: the schema versions come
from a look-up the caller passes (``aws/glue.py``'s per-process cache on executors).

A page's ``data`` values become three columns:

- ``value``: for an Avro reader schema, the record read through Avro schema resolution
  from its writer's version into the reader schema (a field added with a default reads as
  the default), as the Arrow type of ``avro_types.arrow_type``; for a JSON schema, the
  payload as a string. Null when the record cannot be decoded.
- ``schemaVersionId``: the version id from the header (null without a header).
- ``decodeError``: null, or why the record could not be decoded: no header, unknown
  version, a version of another data format, a payload that does not decode.

Speed: fastavro's ``schemaless_reader`` per record is the floor (a container block of the
same records reads no faster); what is added is one dict look-up per record for its
version and one ``pa.array`` over the page's dicts, which Arrow converts in C++ about five
times faster than fastavro decodes. Each writer/reader pair is prepared once per decoder
(``parse_schema``, and no reader schema when the two are equal: fastavro compares them on
every call, which costs a quarter of the decode when they are equal but distinct objects).
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, Protocol

import fastavro
import pyarrow as pa
from fastavro.read import SchemaResolutionError

from kinesis_source.errors import SchemaMismatchError
from kinesis_source.records.avro_defaults import set_python_defaults
from kinesis_source.records.avro_types import arrow_type, decoder_schema
from kinesis_source.records.glue_format import (
    HEADER_BYTES,
    HEADER_VERSION,
    FrameError,
    unframe,
    version_id_text,
)

AVRO = "AVRO"
JSON = "JSON"
FORMATS = (AVRO, JSON)
# Versions a decoder keeps prepared; a stream rarely has more than a few dozen.
MAX_VERSIONS = 1000


class SchemaVersion(Protocol):
    """One version of a registry schema, as GetSchemaVersion returns it
    (``aws.glue.SchemaVersion`` is one)."""

    @property
    def version_id(self) -> str: ...
    @property
    def data_format(self) -> str: ...  # AVRO, JSON or PROTOBUF
    @property
    def definition(self) -> str: ...


class DecodedColumns(NamedTuple):
    value: pa.Array
    schema_version_id: pa.StringArray
    decode_error: pa.StringArray


# The look-up: a version by its id, None when the registry has no such version.
Lookup = Callable[[str], "SchemaVersion | None"]


class _Writer(NamedTuple):
    """What a version id resolves to within one decoder."""

    version_id: str
    schema: Any  # fastavro-parsed writer schema (AVRO), else None
    reader: Any  # fastavro-parsed reader schema, None when equal to the writer's
    error: str | None  # why records of this version cannot be decoded


class GlueDecoder:
    """Decodes pages for one reader schema; keeps the versions it met (by raw id)."""

    def __init__(self, reader: SchemaVersion, lookup: Lookup) -> None:
        if reader.data_format not in FORMATS:
            raise SchemaMismatchError(
                "",
                f"schema version {reader.version_id} is {reader.data_format}; "
                f"the decoder reads {' and '.join(FORMATS)}",
            )
        self.reader = reader
        self._lookup = lookup
        self._writers: dict[bytes, _Writer] = {}
        if reader.data_format == AVRO:
            definition = json.loads(reader.definition)
            self.value_type = arrow_type(definition)
            self._reader_plain = decoder_schema(definition)
            self._reader_parsed = set_python_defaults(fastavro.parse_schema(self._reader_plain))
        else:
            self.value_type = pa.string()

    def decode(self, data: Sequence[bytes] | pa.Array | pa.ChunkedArray) -> DecodedColumns:
        """The three columns of ``data`` (a page's records), row for row."""
        if isinstance(data, (pa.Array, pa.ChunkedArray)):
            data = data.to_pylist()
        values: list[Any] = []
        ids: list[str | None] = []
        errors: list[str | None] = []
        avro = self.reader.data_format == AVRO
        reader_fn = fastavro.schemaless_reader
        writers = self._writers
        for raw in data:
            # The common case inline (a tenth of the time per record); unframe does the
            # rest: zlib, and saying why a record is not framed.
            if len(raw) >= HEADER_BYTES and raw[0] == HEADER_VERSION and raw[1] == 0:
                key = raw[2:HEADER_BYTES]
                payload = raw[HEADER_BYTES:]
            else:
                try:
                    key, payload = unframe(raw)
                except FrameError as exc:
                    values.append(None)
                    ids.append(None)
                    errors.append(str(exc))
                    continue
            writer = writers.get(key)
            if writer is None:
                if len(writers) >= MAX_VERSIONS:
                    writers.clear()  # ids from garbage headers must not grow it for ever
                writer = writers[key] = self._writer(key)
            ids.append(writer.version_id)
            if writer.error is not None:
                values.append(None)
                errors.append(writer.error)
                continue
            try:
                if avro:
                    stream = io.BytesIO(payload)
                    value = reader_fn(stream, writer.schema, writer.reader)
                    left = len(payload) - stream.tell()
                    if left:
                        raise ValueError(f"{left} bytes left after the record")
                else:
                    value = payload.decode("utf-8")
            except SchemaResolutionError as exc:
                values.append(None)
                errors.append(
                    f"schema version {writer.version_id} cannot be read as the reader schema "
                    f"{self.reader.version_id}: {exc}"
                )
                continue
            except Exception as exc:  # fastavro raises many types; any of them is this record's
                values.append(None)
                errors.append(f"bad {self.reader.data_format} payload: {_describe(exc)}")
                continue
            values.append(value)
            errors.append(None)
        value_column = self._arrow(values, errors)  # may turn values into errors
        return DecodedColumns(
            value_column, pa.array(ids, pa.string()), pa.array(errors, pa.string())
        )

    def _writer(self, key: bytes) -> _Writer:
        version_id = version_id_text(key)
        found = self._lookup(version_id)
        if found is None:
            return _Writer(version_id, None, None, f"unknown schema version {version_id}")
        if found.data_format != self.reader.data_format:
            return _Writer(
                version_id,
                None,
                None,
                f"schema version {version_id} is {found.data_format}, the reader schema "
                f"{self.reader.data_format}",
            )
        if found.data_format != AVRO:
            return _Writer(version_id, None, None, None)
        try:
            plain = decoder_schema(json.loads(found.definition))
            parsed = fastavro.parse_schema(plain)
        except Exception as exc:  # a bad writer schema fails its own records only
            return _Writer(version_id, None, None, f"schema version {version_id}: {_describe(exc)}")
        same = plain == self._reader_plain
        return _Writer(version_id, parsed, None if same else self._reader_parsed, None)

    def _arrow(self, values: list[Any], errors: list[str | None]) -> pa.Array:
        try:
            return pa.array(values, type=self.value_type)
        except (pa.ArrowException, TypeError, ValueError, OverflowError):
            pass
        # Some value has no Arrow form (say a decimal wider than the reader's precision):
        # find it row by row and make it that record's error, rather than fail the page.
        for i, value in enumerate(values):
            if value is None:
                continue
            try:
                pa.array([value], type=self.value_type)
            except (pa.ArrowException, TypeError, ValueError, OverflowError) as exc:
                values[i] = None
                errors[i] = f"value does not fit {self.value_type}: {_describe(exc)}"
        return pa.array(values, type=self.value_type)


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
