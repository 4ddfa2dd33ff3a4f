"""A Glue Schema Registry on moto for the tests that read and write registry records:
Avro schema ``clicks`` (versions V1 and V2, V2 adding a field with a default), JSON schema
``events``, Protobuf ``protos`` and Avro ``unions`` (a union Spark has no type for)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any

import boto3

from tests.helpers import REGION, avro_bytes

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
