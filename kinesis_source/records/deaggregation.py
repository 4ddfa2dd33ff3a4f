"""KPL aggregate parsing: one aggregated Kinesis record into its user records.

Format (amazon-kinesis-producer's aggregation-format.md): 4 magic bytes, a protobuf
``AggregatedRecord``, and the MD5 of that protobuf (16 bytes). Checked in that order; a
record that has the magic but fails the MD5 or the protobuf is returned as None, so the
caller emits it as the plain record it is.

``deaggregate`` returns a list of ``UserRecord``s and is the reference. The hot paths give
exactly what it gives: ``deaggregate_arrow`` (the fast decoder's) returns one aggregate's
user records as Arrow columns. How it parses depends on the protobuf backend:

- upb or cpp (the default of protobuf >= 4.21 wheels): the aggregate is parsed twice in C.
  Once with the generated ``messages_pb2`` classes, as the reference does, and once with a
  message type of our own (``_COLUMNS``) that declares the records field as ONE message of
  repeated fields: protobuf merges every occurrence of a singular message field into one,
  so upb hands back all the records' key indexes, hash key indexes and data as three
  lists, with no per-record Python. The columns line up with the records only if each
  record holds exactly one of each field in the form the reference reads (none packed);
  ``_aligned_columns`` proves that from the list lengths, the record count and the
  required fields (``ByteSize``, in C), and says why that is enough. Anything else is read
  record by record from the reference message. Where keys are distinct (key indexes 0, 1,
  2, ...: one byte comparison), the key table is the key column. What is left is mostly
  the MD5 check (about a third) and making one Python object per user record and key.
- pure-Python protobuf: a hand-written reader of the wire layout every KPL writer produces
  (key tables, then records of fields 1, [2,] 3 without tags), several times faster than
  the generated Python code there. Anything else (tags, other field order, unknown fields,
  truncation, a bad index, a key that is not UTF-8) goes to ``deaggregate``, so the two
  never disagree.
"""

from __future__ import annotations

import hashlib
import logging
from functools import cache
from typing import NamedTuple

import pyarrow as pa
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.internal import api_implementation
from google.protobuf.message import DecodeError, EncodeError, Message

from kinesis_source.records.kpl_format import DIGEST_BYTES as _DIGEST_BYTES
from kinesis_source.records.kpl_format import KPL_MAGIC
from kinesis_source.records.kpl_messages import messages_pb2

log = logging.getLogger(__name__)


class UserRecord(NamedTuple):
    data: bytes
    partition_key: str
    explicit_hash_key: str | None
    sub_sequence_number: int


def is_aggregate(data: bytes) -> bool:
    return len(data) > len(KPL_MAGIC) + _DIGEST_BYTES and data[:4] == KPL_MAGIC


def _all_str(values: list[str]) -> bool:
    # str.join raises TypeError on a non-str item: a C loop, ~7x faster than isinstance
    # in a generator, which was a third of the fast path's time on KPL's random keys.
    try:
        "".join(values)
    except TypeError:
        return False
    return True


_Parsed = tuple["messages_pb2.AggregatedRecord", list[str], list[str], memoryview]


def _parse(data: bytes) -> _Parsed | None:
    """Magic, then MD5, then protobuf: (message, key table, hash key table, protobuf bytes),
    or None."""
    if not is_aggregate(data):
        return None
    body = memoryview(data)[len(KPL_MAGIC) : -_DIGEST_BYTES]
    if hashlib.md5(body).digest() != data[-_DIGEST_BYTES:]:
        log.debug("KPL magic present but MD5 mismatch; emitting the record as it is")
        return None
    message = messages_pb2.AggregatedRecord()
    try:
        message.ParseFromString(body)
    except (DecodeError, UnicodeDecodeError):
        # The pure-Python backend raises UnicodeDecodeError for a key that is not UTF-8.
        log.debug("KPL magic and MD5 present but protobuf invalid; emitting as it is")
        return None
    # A slice is a list built in C (a fifth faster than list() on upb's containers).
    keys: list[str] = message.partition_key_table[:]
    hash_keys: list[str] = message.explicit_hash_key_table[:]
    # proto2 strings are not checked for UTF-8: the upb backend hands back bytes for a key
    # that is not valid UTF-8. That cannot be a partition key, so this is no aggregate.
    if not _all_str(keys) or not _all_str(hash_keys):
        log.debug("KPL aggregate has a key that is not UTF-8; emitting as it is")
        return None
    return message, keys, hash_keys, body


def deaggregate(data: bytes) -> list[UserRecord] | None:
    """The user records of a KPL aggregate, or None if ``data`` is not a valid aggregate."""
    parsed = _parse(data)
    if parsed is None:
        return None
    message, keys, hash_keys, _ = parsed
    out: list[UserRecord] = []
    try:
        for sub, rec in enumerate(message.records):
            ehk = (
                hash_keys[rec.explicit_hash_key_index]
                if rec.HasField("explicit_hash_key_index")
                else None
            )
            out.append(UserRecord(rec.data, keys[rec.partition_key_index], ehk, sub))
    except IndexError:
        log.debug("KPL aggregate points outside its key tables; emitting as it is")
        return None
    return out


def _records_into(
    message: messages_pb2.AggregatedRecord,
    keys: list[str],
    hash_keys: list[str],
    out_data: list[bytes],
    out_keys: list[str],
    out_hash_keys: list[str | None],
) -> int | None:
    """The parsed aggregate's records read one by one: what ``deaggregate`` does, minus the
    per-record tuple."""
    start = len(out_data)
    add_data, add_key, add_hash_key = out_data.append, out_keys.append, out_hash_keys.append
    try:
        for rec in message.records:
            add_hash_key(
                hash_keys[rec.explicit_hash_key_index]
                if rec.HasField("explicit_hash_key_index")
                else None
            )
            add_key(keys[rec.partition_key_index])
            add_data(rec.data)
    except IndexError:
        log.debug("KPL aggregate points outside its key tables; emitting as it is")
        del out_data[start:], out_keys[start:], out_hash_keys[start:]
        return None
    return len(out_data) - start


def _columns_class() -> type[Message] | None:
    """``AggregatedRecord`` with its records field read as one message of three lists.

    Built at run time in a private descriptor pool (nothing to generate, nothing added to
    the default pool). None where this protobuf cannot build it: the record-by-record
    parser is used there.
    """
    field = descriptor_pb2.FieldDescriptorProto
    try:
        proto = descriptor_pb2.FileDescriptorProto(
            name="kinesis_source_kpl_columns.proto", package="kinesis_source_kpl", syntax="proto2"
        )
        columns = proto.message_type.add(name="Columns")
        for name, number, field_type in (
            ("partition_key_index", 1, field.TYPE_UINT64),
            ("explicit_hash_key_index", 2, field.TYPE_UINT64),
            ("data", 3, field.TYPE_BYTES),
        ):
            columns.field.add(name=name, number=number, label=field.LABEL_REPEATED, type=field_type)
        proto.message_type.add(name="AggregateColumns").field.add(
            name="records",
            number=3,
            label=field.LABEL_OPTIONAL,  # singular: every record merges into this one message
            type=field.TYPE_MESSAGE,
            type_name=".kinesis_source_kpl.Columns",
        )
        pool = descriptor_pool.DescriptorPool()
        pool.Add(proto)
        descriptor = pool.FindMessageTypeByName("kinesis_source_kpl.AggregateColumns")
        get_class = getattr(message_factory, "GetMessageClass", None)  # protobuf >= 4.22
        if get_class is not None:
            return get_class(descriptor)  # type: ignore[no-any-return]
        factory = message_factory.MessageFactory(pool)
        return factory.GetPrototype(descriptor)  # type: ignore[no-any-return]
    except Exception:  # an old or unusual protobuf: the record-by-record path still works
        log.debug("cannot build the KPL columns message; reading aggregates record by record")
        return None


_COLUMNS = _columns_class()


def _encoded_size(message: Message) -> int | None:
    try:
        return int(message.ByteSize())
    except EncodeError:  # upb: a record lacks a required field (the reference reads a default)
        return None


def _size_checks_required() -> bool:
    """Whether ``ByteSize`` raises EncodeError for a record without its required fields.

    upb's does (it encodes to measure); where it does not, ``IsInitialized`` (twice the
    time on upb) says the same.
    """
    try:
        messages_pb2.AggregatedRecord.FromString(b"\x1a\x00").ByteSize()
    except EncodeError:
        return True
    return False


_SIZE_CHECKS_REQUIRED = _size_checks_required()


def _records_complete(message: Message) -> bool:
    """Whether every record holds its required key index and data."""
    if _SIZE_CHECKS_REQUIRED:
        return _encoded_size(message) is not None
    return bool(message.IsInitialized())


def _aligned_columns(message: Message, body: memoryview, count: int) -> Message | None:
    """The aggregate's records as one ``Columns`` message whose lists line up with the
    records (entry i of each list is record i's field), or None where that is not proven.

    Why the checks below prove it. The reference reads a record's key index (field 1),
    hash key index (2) and data (3) only from fields of the wire type it declares (varint,
    varint, length-delimited); a field of another wire type is an unknown field to it, and
    of a field present twice it keeps the last. ``Columns`` declares the same numbers as
    repeated fields of the same types, and all records merge into its one message, so upb
    appends every such field of every record, in body order, to three lists; as protobuf
    parsers must for repeated numbers, it also reads key indexes packed into a
    length-delimited field 1 or 2, which the reference ignores. Any other wire type is
    unknown to both. So the lists line up exactly when each record holds one such field
    of each kind, and nothing packed:

    - key index and data: every record holds at least one in the reference's wire type
      (they are required: ``_records_complete``), and columns counts each of those, plus
      any packed entries; a total of ``count`` then leaves exactly one per record and no
      packed entry.
    - hash key index (optional, so nothing says each record has one): an empty list means
      no record has one in the reference's form either (it would have been counted). A
      full list (``count`` entries) is taken only with the reference re-encoding, unknown
      fields dropped, to exactly the aggregate's length: no record held a field twice
      (the reference keeps one, so it would encode shorter) nor anything unknown (no
      packed entry), so at most one per record, and ``count`` of them means one each.
      Some records with a hash key and some without: record by record.

    Checking sizes alone would not do: moving a field from one record to the next keeps
    every length and every list, and changes the reference's answer.
    """
    if _COLUMNS is None:
        return None
    try:
        columns = _COLUMNS.FromString(body).records
    except DecodeError:  # a packed field that does not parse: an unknown field to the reference
        return None
    if not len(columns.partition_key_index) == count == len(columns.data):
        return None
    hash_count = len(columns.explicit_hash_key_index)
    if hash_count == 0:
        return columns if _records_complete(message) else None
    if hash_count == count:
        message.DiscardUnknownFields()
        return columns if _encoded_size(message) == len(body) else None
    return None


_Aligned = tuple["messages_pb2.AggregatedRecord", list[str], list[str], Message | None]


def _parse_aligned(data: bytes) -> _Aligned | None:
    """``_parse``, and the columns where ``_aligned_columns`` proves them (else None)."""
    parsed = _parse(data)
    if parsed is None:
        return None
    message, keys, hash_keys, body = parsed
    return message, keys, hash_keys, _aligned_columns(message, body, len(message.records))


class UnitColumns(NamedTuple):
    """One aggregate's user records as Arrow columns, in ``schema.ARROW_SCHEMA``'s types."""

    data: pa.BinaryArray
    partition_keys: pa.StringArray
    explicit_hash_keys: pa.StringArray


# Key indexes 0, 1, 2, ... encoded as ``Columns`` encodes its key index list (unpacked):
# each record's own key, as the KPL writes an aggregate of distinct keys. Every prefix of
# it that ends on a whole entry is the encoding of 0 .. n-1 for some n.
_IDENTITY_ENTRIES = 1 << 14


@cache
def _identity_encoding() -> bytes:
    assert _COLUMNS is not None
    record_type = type(_COLUMNS().records)
    return bytes(record_type(partition_key_index=range(_IDENTITY_ENTRIES)).SerializeToString())


def _key_column(keys: list[str], columns: Message, count: int) -> pa.StringArray:
    """Each record's partition key. Raises IndexError for an index outside the table."""
    if count <= min(len(keys), _IDENTITY_ENTRIES):
        columns.ClearField("data")
        columns.ClearField("explicit_hash_key_index")
        # The list holds ``count`` entries (checked): equal to the start of the identity's
        # encoding means it is 0 .. count-1, and the table's first ``count`` keys are the
        # column, with no index per record to look up. Unknown fields the records held are
        # encoded too, but never look like an entry (an entry's tag, 0x08, is field 1 as a
        # varint, which is no unknown field): they can only make the comparison fail.
        if _identity_encoding().startswith(columns.SerializeToString()):
            return pa.array(keys if len(keys) == count else keys[:count], pa.string())
    return pa.array(list(map(keys.__getitem__, columns.partition_key_index)), pa.string())


class _Lists:
    """Column lists for the record-by-record parsers, then as ``UnitColumns``."""

    def __init__(self) -> None:
        self.data: list[bytes] = []
        self.keys: list[str] = []
        self.hash_keys: list[str | None] = []

    def arrow(self) -> UnitColumns:
        return UnitColumns(
            pa.array(self.data, pa.binary()),
            pa.array(self.keys, pa.string()),
            pa.array(self.hash_keys, pa.string()),
        )


def deaggregate_arrow(data: bytes) -> UnitColumns | None:
    """The user records of aggregate ``data`` as Arrow columns, or None if ``data`` is not a
    valid aggregate. Same answer as ``deaggregate``; sub-sequence numbers are 0, 1, ...

    One aggregate's columns at a time, not a page's: the Python objects each column is built
    from are let go before the next aggregate's are made, so they stay in the CPU's cache
    (a page's worth held at once made the same work about 15% slower).
    """
    if PROTOBUF_BACKEND == "python":
        out = _Lists()
        if _deaggregate_wire_into(data, out.data, out.keys, out.hash_keys) is None:
            return None
        return out.arrow()
    return _deaggregate_columns(data)


def _deaggregate_columns(data: bytes) -> UnitColumns | None:
    """``deaggregate_arrow`` with every record's fields read as three lists, in C."""
    parsed = _parse_aligned(data)
    if parsed is None:
        return None
    message, keys, hash_keys, columns = parsed
    if columns is None:
        # Some records with a hash key and some without, or a layout the checks refused.
        out = _Lists()
        if _records_into(message, keys, hash_keys, out.data, out.keys, out.hash_keys) is None:
            return None
        return out.arrow()
    count = len(columns.data)
    try:
        hash_indexes = columns.explicit_hash_key_index
        hash_column = (
            pa.array(list(map(hash_keys.__getitem__, hash_indexes)), pa.string())
            if hash_indexes
            else pa.nulls(count, pa.string())
        )
        data_column = pa.array(columns.data[:], pa.binary())
        key_column = _key_column(keys, columns, count)
    except IndexError:
        log.debug("KPL aggregate points outside its key tables; emitting as it is")
        return None
    return UnitColumns(data_column, key_column, hash_column)


class _Unusual(Exception):
    """The aggregate is not in the common KPL layout: let the reference parser decide."""


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    """A base-128 varint starting at ``pos``: (value, position after it)."""
    value = 0
    shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise _Unusual


# Wire tags (field number << 3 | wire type) of the KPL messages.
_TAG_PARTITION_KEY_TABLE = 0x0A  # AggregatedRecord.1, length-delimited
_TAG_EXPLICIT_HASH_KEY_TABLE = 0x12  # AggregatedRecord.2, length-delimited
_TAG_RECORDS = 0x1A  # AggregatedRecord.3, length-delimited
_TAG_PARTITION_KEY_INDEX = 0x08  # Record.1, varint
_TAG_EXPLICIT_HASH_KEY_INDEX = 0x10  # Record.2, varint
_TAG_DATA = 0x1A  # Record.3, length-delimited


def _deaggregate_wire_into(
    data: bytes,
    out_data: list[bytes],
    out_keys: list[str],
    out_hash_keys: list[str | None],
) -> int | None:
    """The user records of aggregate ``data`` appended to three column lists, reading the
    wire format itself (for pure-Python protobuf). Returns how many were appended, or None
    (lists untouched) if ``data`` is not a valid aggregate."""
    if len(data) <= len(KPL_MAGIC) + _DIGEST_BYTES or data[:4] != KPL_MAGIC:
        return None
    body = data[len(KPL_MAGIC) : -_DIGEST_BYTES]
    if hashlib.md5(body).digest() != data[-_DIGEST_BYTES:]:
        log.debug("KPL magic present but MD5 mismatch; emitting the record as it is")
        return None
    start = len(out_data)
    add_data = out_data.append
    add_key = out_keys.append
    add_hash_key = out_hash_keys.append
    keys: list[str] = []
    hash_keys: list[str] = []
    pos = 0
    end = len(body)
    try:
        while pos < end:
            tag = body[pos]
            size = body[pos + 1]
            if size < 0x80:
                pos += 2
            else:
                size, pos = _varint(body, pos + 1)
            if tag == _TAG_RECORDS:
                record_end = pos + size
                if body[pos] != _TAG_PARTITION_KEY_INDEX:
                    raise _Unusual
                key_index = body[pos + 1]
                if key_index < 0x80:
                    pos += 2
                else:
                    key_index, pos = _varint(body, pos + 1)
                field = body[pos]
                hash_key = None
                if field == _TAG_EXPLICIT_HASH_KEY_INDEX:
                    hash_index = body[pos + 1]
                    if hash_index < 0x80:
                        pos += 2
                    else:
                        hash_index, pos = _varint(body, pos + 1)
                    hash_key = hash_keys[hash_index]
                    field = body[pos]
                if field != _TAG_DATA:
                    raise _Unusual
                size = body[pos + 1]
                if size < 0x80:
                    pos += 2
                else:
                    size, pos = _varint(body, pos + 1)
                pos += size
                if pos != record_end:
                    raise _Unusual
                add_data(body[pos - size : pos])
                add_key(keys[key_index])
                add_hash_key(hash_key)
            elif tag == _TAG_PARTITION_KEY_TABLE:
                keys.append(body[pos : pos + size].decode("utf-8"))
                pos += size
            elif tag == _TAG_EXPLICIT_HASH_KEY_TABLE:
                hash_keys.append(body[pos : pos + size].decode("utf-8"))
                pos += size
            else:
                raise _Unusual
        if pos != end:
            raise _Unusual
    except (_Unusual, IndexError, UnicodeDecodeError):
        del out_data[start:], out_keys[start:], out_hash_keys[start:]
        users = deaggregate(data)
        if users is None:
            return None
        for user in users:
            add_data(user.data)
            add_key(user.partition_key)
            add_hash_key(user.explicit_hash_key)
        return len(users)
    return len(out_data) - start


PROTOBUF_BACKEND = api_implementation.Type()
