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
times faster than fastavro decodes. An Arrow column (the source's) is read through one
stream over its value buffer rather than a ``BytesIO`` per record. Each writer/reader pair
is prepared once per decoder (``parse_schema``, and no reader schema when the two are
equal: fastavro compares them on every call, which costs a quarter of the decode when they
are equal but distinct objects).
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


class _Columns(NamedTuple):
    """The three columns of a page as they are built, row by row."""

    values: list[Any]
    ids: list[str | None]
    errors: list[str | None]


# A value fastavro never returns: "this record did not decode on the hot path".
_FAILED = object()


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
        out = _Columns([], [], [])
        if isinstance(data, pa.ChunkedArray):
            data = data.combine_chunks()
        elif not isinstance(data, pa.Array):
            data = pa.array(data, pa.binary())  # one path for both: Arrow copies bytes fast
        if self.reader.data_format == AVRO:
            self._decode_avro_buffer(data, out)
        else:
            for raw in data.to_pylist():
                self._decode_one(raw, out)
        value_column = self._arrow(out.values, out.errors)  # may turn values into errors
        return DecodedColumns(
            value_column, pa.array(out.ids, pa.string()), pa.array(out.errors, pa.string())
        )

    def _decode_avro_buffer(self, data: pa.Array, out: _Columns) -> None:
        """The hot path: an Arrow column's records read from its one value buffer.

        One stream over the page's bytes, moved to each record's payload, instead of a
        bytes object and a ``BytesIO`` per record (a tenth of the decode). A record read
        to exactly its end is done; anything else (zlib, no header, an unknown version, a
        payload that fails or reads past its end) goes through ``_decode_one``, which says
        why.
        """
        if data.null_count or not (pa.types.is_binary(data.type) or pa.types.is_string(data.type)):
            for raw in data.to_pylist():
                self._decode_one(raw, out)
            return
        _, offsets_buffer, values_buffer = data.buffers()
        offsets = pa.Array.from_buffers(
            pa.int32(), len(data) + 1, [None, offsets_buffer], offset=data.offset
        ).to_pylist()
        page = values_buffer.to_pybytes() if values_buffer is not None else b""
        stream = io.BytesIO(page)
        seek, tell = stream.seek, stream.tell
        reader_fn = fastavro.schemaless_reader
        writers = self._writers
        values, ids, errors = out
        for index in range(len(data)):
            start, end = offsets[index], offsets[index + 1]
            if (
                end - start >= HEADER_BYTES
                and page[start] == HEADER_VERSION
                and not page[start + 1]
            ):
                key = page[start + 2 : start + HEADER_BYTES]
                writer = writers.get(key)
                if writer is None:
                    writer = self._remember(key)
                if writer.error is None:
                    seek(start + HEADER_BYTES)
                    value: Any
                    try:
                        value = reader_fn(stream, writer.schema, writer.reader)
                    except Exception:  # _decode_one below reads it again and says why
                        value = _FAILED
                    if value is not _FAILED and tell() == end:
                        values.append(value)
                        ids.append(writer.version_id)
                        errors.append(None)
                        continue
            self._decode_one(page[start:end], out)

    def _decode_one(self, raw: bytes, out: _Columns) -> None:
        """One record into ``out``: its value, version id and error."""
        values, ids, errors = out
        try:
            key, payload = unframe(raw)
        except FrameError as exc:
            values.append(None)
            ids.append(None)
            errors.append(str(exc))
            return
        writer = self._writers.get(key)
        if writer is None:
            writer = self._remember(key)
        ids.append(writer.version_id)
        if writer.error is not None:
            values.append(None)
            errors.append(writer.error)
            return
        try:
            if self.reader.data_format == AVRO:
                stream = io.BytesIO(payload)
                value = fastavro.schemaless_reader(stream, writer.schema, writer.reader)
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
            return
        except Exception as exc:  # fastavro raises many types; any of them is this record's
            values.append(None)
            errors.append(f"bad {self.reader.data_format} payload: {_describe(exc)}")
            return
        values.append(value)
        errors.append(None)

    def _remember(self, key: bytes) -> _Writer:
        if len(self._writers) >= MAX_VERSIONS:
            self._writers.clear()  # ids from garbage headers must not grow it for ever
        writer = self._writers[key] = self._writer(key)
        return writer

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
