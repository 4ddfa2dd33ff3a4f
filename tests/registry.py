"""A Glue Schema Registry on moto for the tests that read and write registry records:
Avro schema ``clicks`` (versions V1 and V2, V2 adding a field with a default), JSON schema
``events``, Protobuf ``protos`` and Avro ``unions`` (a union Spark has no type for); and
reading a stream with ``schemaRegistry=glue`` into rows."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import boto3
from pyspark.sql import functions as F

from tests.helpers import REGION, BatchCollector, avro_bytes, source_options, start_query

V1 = {
    "type": "record",
    "name": "Click",
    "namespace": "shop",
    "fields": [
        {"name": "user", "type": "string"},
        {"name": "count", "type": "long"},
        {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
    ],
}
# Version 2 adds a field with a default: records of version 1 read it as the default.
V2 = {
    **V1,
    "fields": [*V1["fields"], {"name": "page", "type": ["null", "string"], "default": None}],
}
AT = datetime(2025, 3, 1, 12, 30, 15, 123000, tzinfo=timezone.utc)
AT_MICROS = int(AT.timestamp()) * 1_000_000 + AT.microsecond
SCHEMAS = ("clicks", "events", "protos", "unions")


def click(n: int, schema: dict[str, Any] = V1, **extra: Any) -> bytes:
    """Click ``n`` encoded by fastavro's own writer with ``schema``."""
    return avro_bytes(schema, {"user": f"u{n}", "count": n, "at": AT, **extra})


@contextmanager
def glue_registry(endpoint: str) -> Iterator[dict[str, str]]:
    """A fresh registry: yields its ``name`` and the version ids ``v1``, ``v2``, ``json``."""
    glue = boto3.client("glue", region_name=REGION, endpoint_url=endpoint)
    name = f"reg-{uuid.uuid4().hex[:8]}"
    glue.create_registry(RegistryName=name)

    def create(schema: str, data_format: str, definition: str) -> str:
        made = glue.create_schema(
            RegistryId={"RegistryName": name},
            SchemaName=schema,
            DataFormat=data_format,
            Compatibility="NONE",
            SchemaDefinition=definition,
        )
        return str(made["SchemaVersionId"])

    ids = {
        "name": name,
        "v1": create("clicks", "AVRO", json.dumps(V1)),
        "json": create("events", "JSON", json.dumps({"type": "object"})),
    }
    ids["v2"] = glue.register_schema_version(
        SchemaId={"RegistryName": name, "SchemaName": "clicks"}, SchemaDefinition=json.dumps(V2)
    )["SchemaVersionId"]
    create("protos", "PROTOBUF", 'syntax = "proto3";\nmessage P { int64 n = 1; }')
    union = {"type": "record", "name": "U", "fields": [{"name": "u", "type": ["int", "string"]}]}
    create("unions", "AVRO", json.dumps(union))
    try:
        yield ids
    finally:
        for schema in SCHEMAS:
            glue.delete_schema(SchemaId={"RegistryName": name, "SchemaName": schema})
        glue.delete_registry(RegistryId={"RegistryName": name})


def registry_options(
    endpoint: str, stream: str, store: str, registry: str, **extra: str
) -> dict[str, str]:
    return source_options(
        endpoint,
        stream,
        store,
        schemaRegistry="glue",
        registryName=registry,
        schemaRegistryEndpointUrl=endpoint,
        **extra,
    )


class Collector(BatchCollector):
    """Rows as plain dicts; ``value.at`` (if any) also as epoch microseconds, which do not
    depend on the session's time zone."""

    def __call__(self, df: Any, batch_id: int) -> None:
        if "at" in df.schema["value"].dataType.simpleString():
            df = df.withColumn("atMicros", F.expr("unix_micros(value.at)"))
        self.batches[batch_id] = [row.asDict(recursive=True) for row in df.collect()]


def read_all(spark: Any, options: dict[str, str], tmp_path: Path) -> list[dict[str, Any]]:
    sink = Collector()
    query = start_query(spark, options, str(tmp_path / "checkpoint"), sink, "availableNow")
    assert query.awaitTermination(120), "the availableNow query did not finish"
    rows = sink.rows()
    return sorted(rows, key=lambda r: (int(r["sequenceNumber"]), r["subSequenceNumber"]))
