"""The AWS Glue Schema Registry's record framing. Pure (standard library only, and the
connector's errors).

As the registry's serializer writes it (awslabs/aws-glue-schema-registry,
``SerializationDataEncoder`` and ``GlueSchemaRegistryDeserializerDataParser``):

    byte 0       header version, 3
    byte 1       compression: 0 none, 5 zlib (``java.util.zip.Deflater``: a zlib stream)
    bytes 2-17   the schema version id, a UUID, most significant byte first
    bytes 18-    the payload: Avro binary of one datum (no container header), or JSON text;
                 compressed as a whole when byte 1 is 5

The registry's parser refuses data shorter than the 18 header bytes, another header version
and another compression byte; ``unframe`` refuses the same, each with its own reason, and
also a zlib payload that does not inflate.
"""

from __future__ import annotations

import uuid
import zlib
from dataclasses import dataclass
from enum import Enum

from kinesis_source.errors import OptionError

HEADER_VERSION = 0x03
COMPRESSION_NONE = 0x00
COMPRESSION_ZLIB = 0x05
VERSION_ID_BYTES = 16
HEADER_BYTES = 2 + VERSION_ID_BYTES


class Compression(Enum):
    """How a payload is compressed; the value is the header's byte 1."""

    NONE = COMPRESSION_NONE
    ZLIB = COMPRESSION_ZLIB

    @classmethod
    def parse(cls, option: str, text: str) -> Compression:
        """``none``/``zlib`` (any case) into a ``Compression``, else an ``OptionError`` naming
        ``option`` and the valid values."""
        try:
            return cls[text.strip().upper()]
        except KeyError:
            valid = ", ".join(member.name.lower() for member in cls)
            raise OptionError(option, f"{text!r} is not one of {valid}") from None


class FrameError(ValueError):
    """One record is not a registry-framed record; the message says why (it becomes the
    record's ``decodeError``)."""


@dataclass(frozen=True)
class Header:
    """A record's registry header."""

    version_id: str  # the UUID's canonical text, lower case
    compression: Compression


def parse_header(data: bytes) -> Header:
    """The header of ``data``; ``FrameError`` saying why when it has none."""
    _check(data)
    return Header(version_id_text(data[2:HEADER_BYTES]), Compression(data[1]))


def unframe(data: bytes) -> tuple[bytes, bytes]:
    """The raw 16-byte version id of ``data`` and its payload, inflated when compressed.

    The id is left raw because the page decoder keys its per-page look-up on it, and turns
    each distinct id into text once (``version_id_text``).
    """
    _check(data)
    key = data[2:HEADER_BYTES]
    if data[1] == COMPRESSION_NONE:
        return key, data[HEADER_BYTES:]
    try:
        return key, zlib.decompress(data[HEADER_BYTES:])
    except zlib.error as exc:
        raise FrameError(f"zlib payload does not inflate: {exc}") from None


def _check(data: bytes) -> None:
    if len(data) < HEADER_BYTES:
        if len(data) >= 1 and data[0] != HEADER_VERSION:
            raise FrameError(_no_header(data))
        raise FrameError(
            f"truncated registry header: {len(data)} bytes, the header alone is {HEADER_BYTES}"
        )
    if data[0] != HEADER_VERSION:
        raise FrameError(_no_header(data))
    if data[1] not in (COMPRESSION_NONE, COMPRESSION_ZLIB):
        raise FrameError(
            f"unknown compression byte 0x{data[1]:02x} in the registry header "
            f"(0x{COMPRESSION_NONE:02x} none, 0x{COMPRESSION_ZLIB:02x} zlib)"
        )


def _no_header(data: bytes) -> str:
    return (
        f"no registry header: byte 0 is 0x{data[0]:02x}, a registry header starts with "
        f"0x{HEADER_VERSION:02x}"
    )


def version_id_text(raw: bytes) -> str:
    """16 bytes, most significant first, as the UUID's canonical text."""
    return str(uuid.UUID(bytes=bytes(raw)))


def version_id_bytes(version_id: str) -> bytes:
    """A version id's text (as Glue returns it) as the header's 16 bytes."""
    return uuid.UUID(version_id).bytes


def frame(payload: bytes, version_id: str, compression: Compression = Compression.NONE) -> bytes:
    """``payload`` behind a registry header naming ``version_id``, compressed as asked."""
    return frame_with(payload, version_id_bytes(version_id), compression)


def frame_with(payload: bytes, raw_id: bytes, compression: Compression) -> bytes:
    """``frame`` with the id already as bytes: the sink frames a whole column with one id."""
    if compression is Compression.ZLIB:
        payload = zlib.compress(payload)
    return bytes((HEADER_VERSION, compression.value)) + raw_id + payload
