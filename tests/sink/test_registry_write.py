"""The sink with ``schemaRegistry=glue`` on moto's Kinesis and Glue: rows of a struct
column ``value`` written as registry-framed Avro (checked by hand: the header spelled out
from the documented layout, the payload read by fastavro's own reader), read back through
our source as the same rows; a struct that does not fit the schema fails on the driver."""

from __future__ import annotations

import io
import uuid
import zlib
from datetime import datetime
from pathlib import Path
from typing import Any

import fastavro
import pytest

from tests.helpers import REGION, create_stream, read_stream
from tests.registry import V2, read_all, registry_options

pytestmark = pytest.mark.spark

VALUE = "user string, count bigint, at timestamp, page string"


def rows_of(first: int, last: int) -> list[tuple[Any, ...]]:
    return [
        (f"k{n}", (f"u{n}", n, datetime(2025, 3, 1, 12, 0, n), None if n % 3 else f"/p{n}"))
        for n in range(first, last)
    ]


def write(spark: Any, rows: list[tuple[Any, ...]], options: dict[str, str]) -> None:
    df = spark.createDataFrame(rows, f"partitionKey string, value struct<{VALUE}>").coalesce(1)
    df.write.format("kinesis").options(**options).mode("append").save()


def sink_options(endpoint: str, stream: str, registry: str, **extra: str) -> dict[str, str]:
    return {
        "streamName": stream,
        "region": REGION,
        "endpointUrl": endpoint,
        "schemaRegistry": "glue",
        "registryName": registry,
        "schemaName": "clicks",
        "schemaRegistryEndpointUrl": endpoint,
        **extra,
    }


def by_hand(data: bytes) -> tuple[int, str, dict[str, Any]]:
    """(compression byte, version id, record) of one framed record, read by hand."""
    assert data[0] == 3
    body = zlib.decompress(data[18:]) if data[1] == 5 else data[18:]
    record = fastavro.schemaless_reader(io.BytesIO(body), fastavro.parse_schema(V2), None)
    return data[1], str(uuid.UUID(bytes=data[2:18])), record


def test_rows_written_framed_zlib_and_aggregated_read_back_as_the_same_rows(
    spark: Any,
    kinesis: Any,
    moto_endpoint: str,
    stream_name: str,
    tmp_path: Path,
    registry: dict[str, str],
) -> None:
    create_stream(kinesis, stream_name, 1)
    rows = rows_of(0, 30)
    options = sink_options(
        moto_endpoint, stream_name, registry["name"], compression="zlib", aggregate="true"
    )
    write(spark, rows, options)

    found = read_stream(kinesis, stream_name)
    assert [r["subSequenceNumber"] for r in found] == list(range(30)), "one KPL aggregate"
    framed = [by_hand(r["data"]) for r in found]
    assert [(c, v) for c, v, _ in framed] == [(5, registry["v2"])] * 30
    assert [
        (r["partitionKey"], record["user"], record["page"])
        for r, (_, _, record) in zip(found, framed, strict=True)
    ] == [(key, value[0], value[3]) for key, value in rows]

    options = registry_options(
        moto_endpoint, stream_name, str(tmp_path / "store"), registry["name"], schemaName="clicks"
    )
    read = sorted(
        (r["partitionKey"], tuple(r["value"].values()), r["schemaVersionId"], r["decodeError"])
        for r in read_all(spark, options, tmp_path)
    )
    assert read == sorted((key, value, registry["v2"], None) for key, value in rows)


def test_a_struct_that_does_not_fit_the_schema_fails_naming_the_field(
    spark: Any, moto_endpoint: str, registry: dict[str, str]
) -> None:
    df = spark.createDataFrame(
        [("k", ("u", "not a number"))],
        "partitionKey string, value struct<user string, count string>",
    )
    with pytest.raises(Exception) as info:
        df.write.format("kinesis").options(
            **sink_options(moto_endpoint, "never-written", registry["name"])
        ).mode("append").save()
    message = str(info.value)
    assert (
        "field 'value.count': the column's type string does not fit the schema's int64" in message
    )
    assert f"schema 'clicks' in registry '{registry['name']}', version 2" in message


def test_a_json_schema_is_refused_by_the_sink(
    spark: Any, moto_endpoint: str, registry: dict[str, str]
) -> None:
    df = spark.createDataFrame([("k", ("u",))], "partitionKey string, value struct<user string>")
    options = sink_options(moto_endpoint, "never-written", registry["name"], schemaName="events")
    with pytest.raises(Exception, match="is JSON; the sink encodes Avro schemas"):
        df.write.format("kinesis").options(**options).mode("append").save()
