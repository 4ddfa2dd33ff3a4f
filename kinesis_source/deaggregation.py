"""KPL aggregate parsing: one aggregated Kinesis record into its user records.

Format (amazon-kinesis-producer's aggregation-format.md): 4 magic bytes, a protobuf
``AggregatedRecord``, and the MD5 of that protobuf (16 bytes). Checked in that order; a
record that has the magic but fails the MD5 or the protobuf is returned as None, so the
caller emits it as the plain record it is.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
from typing import NamedTuple

import aws_kinesis_agg
from google.protobuf.message import DecodeError

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


def deaggregate(data: bytes) -> list[UserRecord] | None:
    """The user records of a KPL aggregate, or None if ``data`` is not a valid aggregate."""
    if not is_aggregate(data):
        return None
    body = data[len(KPL_MAGIC) : -_DIGEST_BYTES]
    if hashlib.md5(body).digest() != data[-_DIGEST_BYTES:]:
        log.debug("KPL magic present but MD5 mismatch; emitting the record as it is")
        return None
    message = messages_pb2.AggregatedRecord()
    try:
        message.ParseFromString(body)
    except DecodeError:
        log.debug("KPL magic and MD5 present but protobuf invalid; emitting as it is")
        return None
    keys = list(message.partition_key_table)
    hash_keys = list(message.explicit_hash_key_table)
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
