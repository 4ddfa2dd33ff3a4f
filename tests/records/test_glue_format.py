"""The Glue Schema Registry's framing, against the layout its serializer writes.

Expected bytes are spelled out here from the documented layout (header version 3,
compression 0 or 5, the version UUID most significant byte first, the payload), never
taken from the module under test.
"""

from __future__ import annotations

import uuid
import zlib

import pytest

from kinesis_source.errors import OptionError
from kinesis_source.records.glue_format import (
    Compression,
    FrameError,
    frame,
    parse_header,
    unframe,
)

VERSION = "0f8e1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b"
ID_BYTES = bytes.fromhex("0f8e1a2b3c4d4e5f8a9b0c1d2e3f4a5b")


def test_frame_writes_the_serializers_layout() -> None:
    assert frame(b"payload", VERSION) == b"\x03\x00" + ID_BYTES + b"payload"
    zipped = frame(b"payload" * 20, VERSION, Compression.ZLIB)
    assert zipped[:18] == b"\x03\x05" + ID_BYTES
    assert zlib.decompress(zipped[18:]) == b"payload" * 20


def test_header_and_payload_read_back_plain_and_zlib() -> None:
    plain = b"\x03\x00" + ID_BYTES + b"abc"
    zipped = b"\x03\x05" + ID_BYTES + zlib.compress(b"abc")
    assert parse_header(plain).version_id == VERSION
    assert parse_header(plain).compression is Compression.NONE
    assert parse_header(zipped).compression is Compression.ZLIB
    assert unframe(plain) == (ID_BYTES, b"abc")
    assert unframe(zipped) == (ID_BYTES, b"abc")
    # A header with an empty payload is a header (the registry checks 18 bytes, no more).
    assert unframe(b"\x03\x00" + ID_BYTES) == (ID_BYTES, b"")
    assert str(uuid.UUID(bytes=ID_BYTES)) == VERSION


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b'{"json": "without a header"}', "no registry header: byte 0 is 0x7b"),
        (b"", "truncated registry header: 0 bytes"),
        (b"\x03\x00" + ID_BYTES[:10], "truncated registry header: 12 bytes"),
        (b"\x02\x00" + ID_BYTES + b"x", "no registry header: byte 0 is 0x02"),
        (b"\x01", "no registry header: byte 0 is 0x01"),
        (b"\x03\x01" + ID_BYTES + b"x", "unknown compression byte 0x01"),
        (b"\x03\x05" + ID_BYTES + b"not zlib", "zlib payload does not inflate"),
    ],
)
def test_records_that_are_not_framed_say_why(data: bytes, reason: str) -> None:
    with pytest.raises(FrameError, match=reason):
        unframe(data)


def test_compression_option_names_the_valid_values() -> None:
    assert Compression.parse("compression", "ZLib") is Compression.ZLIB
    with pytest.raises(OptionError, match=r"option 'compression': 'gzip' is not one of none, zlib"):
        Compression.parse("compression", "gzip")
