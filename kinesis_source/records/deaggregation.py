"""KPL aggregate parsing: one aggregated Kinesis record into its user records.

Format (amazon-kinesis-producer's aggregation-format.md): 4 magic bytes, a protobuf
``AggregatedRecord``, and the MD5 of that protobuf (16 bytes). Checked in that order; a
record that has the magic but fails the MD5 or the protobuf is returned as None, so the
caller emits it as the plain record it is.

``deaggregate`` returns a list of ``UserRecord``s and is the reference. ``deaggregate_into``
is the hot path: it appends user records straight to column lists, and gives exactly what
``deaggregate`` gives. How it parses depends on the protobuf backend:

- upb or cpp (the default of protobuf >= 4.21 wheels): the aggregate is parsed twice in C.
  Once with the generated ``messages_pb2`` classes, as the reference does, and once with a
  message type of our own (``_COLUMNS``) that declares the records field as ONE message of
  repeated fields: protobuf merges every occurrence of a singular message field into one,
  so upb hands back all the records' key indexes, hash key indexes and data as three
  lists, with no per-record Python. Reading three attributes per record from the generated
  classes was most of the time before (about 3x aws_kinesis_agg's deaggregator; about 4x
  now, where the MD5 check is a third of what is left). The columns line up with the
  records only if each record holds each field at most once and no field in a form the
  reference ignores (a packed key index, for one): the reference message, once its
  unknown fields are discarded, re-encodes to exactly the aggregate's length only then,
  and that is checked (``ByteSize``, in C) before the columns are used. Anything else is
  read record by record from the reference message.
- pure-Python protobuf: a hand-written reader of the wire layout every KPL writer produces
  (key tables, then records of fields 1, [2,] 3 without tags), several times faster than
  the generated Python code there. Anything else (tags, other field order, unknown fields,
  truncation, a bad index, a key that is not UTF-8) goes to ``deaggregate``, so the two
  never disagree.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
from typing import NamedTuple

import aws_kinesis_agg
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.internal import api_implementation
from google.protobuf.message import DecodeError, EncodeError, Message

# aws_kinesis_agg's generated messages_pb2 does ``import config_pb2`` as a top-level module;
# its own deaggregator puts the package folder first on sys.path for that. We append it
# instead, so that nothing else on the path is shadowed.
_AGG_DIR = os.path.dirname(aws_kinesis_agg.__file__)
if _AGG_DIR not in sys.path:
    sys.path.append(_AGG_DIR)
from aws_kinesis_agg import messages_pb2  # noqa: E402

KPL_MAGIC = b"\xf3\x89\x9a\xc2"
_DIGEST_BYTES = 16

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
    keys = list(message.partition_key_table)
    hash_keys = list(message.explicit_hash_key_table)
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


def _deaggregate_columns_into(
    data: bytes,
    out_data: list[bytes],
    out_keys: list[str],
    out_hash_keys: list[str | None],
) -> int | None:
    """``deaggregate_into`` with every record's fields read as three lists, in C."""
    parsed = _parse(data)
    if parsed is None:
        return None
    message, keys, hash_keys, body = parsed
    count = len(message.records)
    # Without unknown fields, the reference message re-encodes to the aggregate's own length
    # only if no record holds a field twice (the reference keeps the last one) or in a form
    # it ignores, and every varint is minimal: then each record gave the columns at most
    # one of each field, and counts of ``count`` mean exactly one, in record order.
    message.DiscardUnknownFields()
    if _COLUMNS is not None and _encoded_size(message) == len(body):
        columns = _COLUMNS.FromString(body).records
        key_indexes = columns.partition_key_index
        hash_indexes = columns.explicit_hash_key_index
        if len(key_indexes) == count == len(columns.data) and len(hash_indexes) in (0, count):
            start = len(out_keys)
            try:
                out_keys.extend(map(keys.__getitem__, key_indexes))
                if hash_indexes:
                    out_hash_keys.extend(map(hash_keys.__getitem__, hash_indexes))
                else:
                    out_hash_keys.extend([None] * count)
            except IndexError:
                log.debug("KPL aggregate points outside its key tables; emitting as it is")
                del out_keys[start:], out_hash_keys[start:]
                return None
            out_data.extend(columns.data)
            return count
    # Some records with a hash key and some without, or a layout the check refused.
    return _records_into(message, keys, hash_keys, out_data, out_keys, out_hash_keys)


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
    """``deaggregate_into`` reading the wire format itself (for pure-Python protobuf)."""
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


def deaggregate_into(
    data: bytes,
    out_data: list[bytes],
    out_keys: list[str],
    out_hash_keys: list[str | None],
) -> int | None:
    """Append the user records of aggregate ``data`` to the three column lists.

    Returns how many were appended, or None (lists untouched) if ``data`` is not a valid
    aggregate, in which case the caller emits it as a plain record. Same answer as
    ``deaggregate``; sub-sequence numbers are 0, 1, ... in append order.
    """
    return _DEAGGREGATE_INTO(data, out_data, out_keys, out_hash_keys)


PROTOBUF_BACKEND = api_implementation.Type()
_DEAGGREGATE_INTO = (
    _deaggregate_wire_into if PROTOBUF_BACKEND == "python" else _deaggregate_columns_into
)
