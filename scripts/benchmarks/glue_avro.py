"""(j) Glue Schema Registry Avro rows per core: our page decoder (registry-framed records
to Arrow columns: value struct, schemaVersionId, decodeError) vs a plain fastavro
``schemaless_reader`` loop over the bare payloads (to dicts, no header, no Arrow).

The record has 10 fields: long, string, double, boolean, int, optional string,
timestamp-millis, array of strings, float, enum. Pages of 10,000 records
(``PAGE_RECORDS``, GetRecords' most), all of one schema version, which is also the reader
schema (the common case); a second line reads records of an older version through schema
resolution (not in the table). Each side gets its natural input: the loop a list of bare
payloads, our decoder a page's ``data`` column as the source hands it over (Arrow).
"""

from __future__ import annotations

import io
import json
import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import fastavro
import pyarrow as pa

from kinesis_source.records.glue_decode import GlueDecoder

from .common import PAGE_RECORDS, figure, report, timed

PAGES = 2
TARGET = 0.7  # x the bare fastavro loop: framing, look-ups and Arrow may cost 30%

SCHEMA: dict[str, Any] = {
    "type": "record",
    "name": "Event",
    "namespace": "bench",
    "fields": [
        {"name": "id", "type": "long"},
        {"name": "user", "type": "string"},
        {"name": "score", "type": "double"},
        {"name": "active", "type": "boolean"},
        {"name": "count", "type": "int"},
        {"name": "city", "type": ["null", "string"], "default": None},
        {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "tags", "type": {"type": "array", "items": "string"}},
        {"name": "ratio", "type": "float"},
        {"name": "kind", "type": {"type": "enum", "name": "Kind", "symbols": ["A", "B", "C"]}},
    ],
}
# The same record one version earlier: without "city" (added with a default).
OLDER: dict[str, Any] = {**SCHEMA, "fields": [f for f in SCHEMA["fields"] if f["name"] != "city"]}
START = datetime(2026, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True)
class _Version:
    version_id: str
    data_format: str
    definition: str


def _payloads(schema: dict[str, Any], rng: random.Random, count: int) -> list[bytes]:
    parsed = fastavro.parse_schema(schema)
    out = []
    for i in range(count):
        record = {
            "id": i,
            "user": f"user-{rng.getrandbits(32):08x}",
            "score": rng.random() * 100,
            "active": bool(i % 2),
            "count": rng.randrange(1_000),
            "city": None if i % 3 else "Lisbon",
            "at": START + timedelta(milliseconds=i),
            "tags": ["a", "bb"][: i % 3],
            "ratio": 0.5,
            "kind": "ABC"[i % 3],
        }
        buffer = io.BytesIO()
        fastavro.schemaless_writer(buffer, parsed, record)
        out.append(buffer.getvalue())
    return out


def _framed(version_id: str, payloads: list[bytes]) -> list[bytes]:
    # The registry's header spelled out: version 3, no compression, the UUID's 16 bytes.
    header = b"\x03\x00" + uuid.UUID(version_id).bytes
    return [header + payload for payload in payloads]


def run(repeat: int) -> None:
    total = PAGE_RECORDS * PAGES
    print(
        f"(j) Glue Schema Registry Avro, {total:,} records of a 10-field record in pages of "
        f"{PAGE_RECORDS:,}, per core (fastavro {fastavro.__version__})"
    )
    rng = random.Random(8)
    current = _Version(str(uuid.UUID(int=rng.getrandbits(128))), "AVRO", json.dumps(SCHEMA))
    older = _Version(str(uuid.UUID(int=rng.getrandbits(128))), "AVRO", json.dumps(OLDER))
    versions = {v.version_id: v for v in (current, older)}
    payloads = _payloads(SCHEMA, rng, total)
    # Our decoder takes a page's data column as the source has it: an Arrow binary array.
    pages = [
        pa.array(_framed(current.version_id, payloads[i : i + PAGE_RECORDS]), pa.binary())
        for i in range(0, total, PAGE_RECORDS)
    ]
    older_pages = [
        pa.array(_framed(older.version_id, page), pa.binary())
        for page in (_payloads(OLDER, rng, PAGE_RECORDS) for _ in range(PAGES))
    ]
    parsed = fastavro.parse_schema(SCHEMA)
    decoder = GlueDecoder(current, versions.get)

    bare_pages = [payloads[i : i + PAGE_RECORDS] for i in range(0, total, PAGE_RECORDS)]

    def loop() -> int:
        # Page by page, as a reader would: each page's dicts are dropped before the next
        # (holding all of them makes the garbage collector's passes longer, about 15%).
        reader = fastavro.schemaless_reader
        rows = 0
        for page in bare_pages:
            rows += len([reader(io.BytesIO(payload), parsed, None) for payload in page])
        return rows

    def ours() -> list[Any]:
        return [decoder.decode(page) for page in pages]

    def ours_resolved() -> list[Any]:
        return [decoder.decode(page) for page in older_pages]

    decoded = ours()
    assert sum(len(c.value) for c in decoded) == total
    assert all(c.decode_error.null_count == len(c.decode_error) for c in decoded)
    reader = fastavro.schemaless_reader
    first = [reader(io.BytesIO(payload), parsed, None) for payload in payloads[:50]]
    assert decoded[0].value.to_pylist()[:50] == first
    loop_rate = report(
        "fastavro schemaless_reader loop (bare payloads, dicts)", total, *timed(loop, repeat)
    )
    our_rate = report(
        "ours: GlueDecoder.decode (framed pages to Arrow)", total, *timed(ours, repeat)
    )
    resolved_rate = report(
        "ours, an older writer version through resolution", total, *timed(ours_resolved, repeat)
    )
    ratio = our_rate / loop_rate
    print(
        f"  ratio ours / fastavro loop: {ratio:.2f}x (target >= {TARGET}x); "
        f"through resolution {resolved_rate / loop_rate:.2f}x"
    )
    figure(
        "j",
        "Glue Avro rows per core (10 fields), ours to Arrow vs fastavro's schemaless_reader loop",
        f"{our_rate:,.0f} vs {loop_rate:,.0f} rows/s: {ratio:.2f}x",
        f">= {TARGET}x",
        ratio >= TARGET,
    )
