"""Glue Schema Registry records read end to end: real Spark, moto's Kinesis and Glue over
HTTP on 127.0.0.1 (``schemaRegistryEndpointUrl``).

Records are framed by ``tests.helpers.registry_frame`` from the documented layout and
encoded by fastavro's own writer, independently of the code under test; the registry's
schemas are those of tests/registry.py.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from pyspark.errors import AnalysisException, StreamingQueryException

from tests.helpers import aggregate, create_stream, put, registry_frame, start_query
from tests.registry import AT_MICROS, V2, Collector, click, read_all, registry_options


# Also on the lowest versions (scripts/test.sh): pyarrow's and pyspark's Arrow schemas agree.
@pytest.mark.lowest
def test_two_versions_zlib_plain_kpl_and_unframed_records_in_one_stream(
    spark: Any,
    kinesis: Any,
    moto_endpoint: str,
    stream_name: str,
    tmp_path: Path,
    registry: dict[str, str],
) -> None:
    create_stream(kinesis, stream_name, 1)
    unknown = str(uuid.uuid4())
    records = [
        ("a", registry_frame(click(1), registry["v1"])),
        ("b", registry_frame(click(2, V2, page="/home"), registry["v2"], compress=True)),
        ("c", registry_frame(click(3), registry["v1"], compress=True)),
        ("d", b"plain bytes, no registry header"),
        ("e", registry_frame(click(4), unknown)),
        (
            "f",
            aggregate(
                [
                    ("k5", registry_frame(click(5), registry["v1"])),
                    ("k6", registry_frame(click(6, V2, page=None), registry["v2"], compress=True)),
                ]
            ),
        ),
    ]
    put(kinesis, stream_name, records)
    options = registry_options(
        moto_endpoint, stream_name, str(tmp_path / "store"), registry["name"], schemaName="clicks"
    )
    rows = read_all(spark, options, tmp_path)

    def expected(n: int, page: str | None = None) -> dict[str, Any]:
        return {"user": f"u{n}", "count": n, "at": None, "page": page}

    got = [
        (
            r["partitionKey"],
            None if r["value"] is None else {**r["value"], "at": None},
            r.get("atMicros"),
            r["schemaVersionId"],
            r["decodeError"],
        )
        for r in rows
    ]
    v1, v2 = registry["v1"], registry["v2"]
    assert got[:3] == [
        ("a", expected(1), AT_MICROS, v1, None),
        ("b", expected(2, "/home"), AT_MICROS, v2, None),
        ("c", expected(3), AT_MICROS, v1, None),
    ]
    key, value, _, version, error = got[3]
    assert (key, value, version) == ("d", None, None)
    assert error.startswith("no registry header: byte 0 is 0x70")
    assert got[4][:4] == ("e", None, None, unknown)
    assert got[4][4] == f"unknown schema version {unknown}"
    assert got[5:] == [
        ("k5", expected(5), AT_MICROS, v1, None),
        ("k6", expected(6), AT_MICROS, v2, None),
    ]
    # The record's bytes stay as they came, header and all.
    assert [bytes(r["data"]) for r in rows[:4]] == [data for _, data in records[:4]]
    # A batch read (spark.read) of the same stream decodes the same rows.
    batch = spark.read.format("kinesis").options(**options).load()
    batch_rows = batch.selectExpr(
        "partitionKey", "value.user", "value.count", "schemaVersionId", "decodeError"
    ).collect()
    assert [tuple(r) for r in batch_rows] == [
        (
            key,
            None if value is None else value["user"],
            None if value is None else value["count"],
            version,
            error,
        )
        for key, value, _, version, error in got
    ]


def test_a_json_schema_stream_gives_the_payload_as_text(
    spark: Any,
    kinesis: Any,
    moto_endpoint: str,
    stream_name: str,
    tmp_path: Path,
    registry: dict[str, str],
) -> None:
    create_stream(kinesis, stream_name, 1)
    put(
        kinesis,
        stream_name,
        [
            ("a", registry_frame(b'{"n": 1}', registry["json"])),
            ("b", registry_frame('{"n": 2, "é": true}'.encode(), registry["json"], compress=True)),
            ("c", registry_frame(click(3), registry["v1"])),
        ],
    )
    options = registry_options(
        moto_endpoint, stream_name, str(tmp_path / "store"), registry["name"], schemaName="events"
    )
    rows = read_all(spark, options, tmp_path)
    assert [(r["value"], r["schemaVersionId"], r["decodeError"]) for r in rows] == [
        ('{"n": 1}', registry["json"], None),
        ('{"n": 2, "é": true}', registry["json"], None),
        (None, registry["v1"], f"schema version {registry['v1']} is AVRO, the reader schema JSON"),
    ]


def test_fail_on_decode_error_stops_the_query_naming_shard_and_sequence_number(
    spark: Any,
    kinesis: Any,
    moto_endpoint: str,
    stream_name: str,
    tmp_path: Path,
    registry: dict[str, str],
) -> None:
    create_stream(kinesis, stream_name, 1)
    puts = put(
        kinesis,
        stream_name,
        [("a", registry_frame(click(1), registry["v1"])), ("b", b"\x03\x00 too short")],
    )
    options = registry_options(
        moto_endpoint,
        stream_name,
        str(tmp_path / "store"),
        registry["name"],
        schemaName="clicks",
        failOnDecodeError="true",
    )
    sink = Collector()
    query = start_query(spark, options, str(tmp_path / "checkpoint"), sink, "availableNow")
    with pytest.raises(StreamingQueryException) as err:
        query.awaitTermination(120)
    message = str(err.value)
    bad = puts[1]
    assert (
        f"stream '{stream_name}' shard {bad['shardId']} record {bad['sequenceNumber']}" in message
    )
    assert "truncated registry header" in message
    assert not sink.rows(), "the batch with the undecodable record reached the sink"


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        ({"registryName": "no-such-registry", "schemaName": "clicks"}, "EntityNotFoundException"),
        ({"schemaName": "no-such-schema"}, "schema 'no-such-schema' in registry"),
        ({"schemaName": "protos"}, "is PROTOBUF; the connector reads AVRO and JSON"),
        ({"schemaName": "unions"}, r"field 'u': the union \[int, string\] has no Spark type"),
    ],
)
def test_bad_registry_input_fails_at_load(
    spark: Any,
    kinesis: Any,
    moto_endpoint: str,
    stream_name: str,
    tmp_path: Path,
    registry: dict[str, str],
    options: dict[str, str],
    reason: str,
) -> None:
    create_stream(kinesis, stream_name, 1)
    opts = registry_options(moto_endpoint, stream_name, str(tmp_path), registry["name"])
    opts.update(options)
    reader = spark.readStream.format("kinesis")
    for key, value in opts.items():
        reader = reader.option(key, value)
    with pytest.raises(AnalysisException, match=reason):
        reader.load()
