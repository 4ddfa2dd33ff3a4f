"""The Glue Schema Registry seam against moto's registry (CreateRegistry, CreateSchema,
RegisterSchemaVersion, GetSchemaVersion): the driver's reader schema, its named errors,
and the executors' per-process cache, counted in GetSchemaVersion calls.

moto's GetSchemaVersion answers as AWS documents it: SchemaVersionId, SchemaDefinition,
DataFormat, SchemaArn, VersionNumber, Status, CreatedTime; an unknown id is an
EntityNotFoundException.
"""

from __future__ import annotations

import io
import json
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import fastavro
import pytest

from kinesis_source.aws.clients import schema_registry_client
from kinesis_source.aws.glue import (
    SchemaVersionCache,
    reader_version,
    version_by_id,
    version_cache,
)
from kinesis_source.errors import SchemaRegistryError
from kinesis_source.options import ConnectionOptions
from kinesis_source.records.glue_decode import GlueDecoder
from tests.helpers import REGION, wait_for

pytestmark = pytest.mark.lowest  # also on the lowest fastavro (scripts/test.sh)

V1 = {"type": "record", "name": "Ping", "fields": [{"name": "n", "type": "long"}]}
V2 = {
    **V1,
    "fields": [*V1["fields"], {"name": "from", "type": "string", "default": "?"}],
}


@pytest.fixture
def glue(moto_endpoint: str) -> Any:
    """Our cached registry client on moto."""
    opts = ConnectionOptions(stream_name="unused", region=REGION)
    return schema_registry_client(opts, endpoint_url=moto_endpoint)


@pytest.fixture
def registry(moto_endpoint: str) -> Iterator[tuple[str, str, list[str]]]:
    """A registry holding schema ``pings`` (Avro, versions V1 and V2) and ``protos``
    (Protobuf); yields (registry, schema, [id of V1, id of V2])."""
    admin = boto3.client("glue", region_name=REGION, endpoint_url=moto_endpoint)
    name = f"reg-{uuid.uuid4().hex[:8]}"
    admin.create_registry(RegistryName=name)
    first = admin.create_schema(
        RegistryId={"RegistryName": name},
        SchemaName="pings",
        DataFormat="AVRO",
        Compatibility="BACKWARD",
        SchemaDefinition=json.dumps(V1),
    )
    second = admin.register_schema_version(
        SchemaId={"RegistryName": name, "SchemaName": "pings"}, SchemaDefinition=json.dumps(V2)
    )
    admin.create_schema(
        RegistryId={"RegistryName": name},
        SchemaName="protos",
        DataFormat="PROTOBUF",
        Compatibility="NONE",
        SchemaDefinition='syntax = "proto3";\nmessage P { int64 n = 1; }',
    )
    yield name, "pings", [first["SchemaVersionId"], second["SchemaVersionId"]]
    for schema in ("pings", "protos"):
        admin.delete_schema(SchemaId={"RegistryName": name, "SchemaName": schema})
    admin.delete_registry(RegistryId={"RegistryName": name})


class CallCounter:
    """Counts GetSchemaVersion calls a client makes (botocore's before-call event)."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.calls: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def __call__(self, params: dict[str, Any], **_: Any) -> None:
        with self._lock:
            self.calls.append(params.get("body", params))

    def __enter__(self) -> CallCounter:
        self.client.meta.events.register("before-call.glue.GetSchemaVersion", self)
        return self

    def __exit__(self, *_: object) -> None:
        self.client.meta.events.unregister("before-call.glue.GetSchemaVersion", self)


def frame(version_id: str, schema: dict[str, Any], record: dict[str, Any]) -> bytes:
    out = io.BytesIO()
    fastavro.schemaless_writer(out, fastavro.parse_schema(schema), record)
    return b"\x03\x00" + uuid.UUID(version_id).bytes + out.getvalue()


def test_reader_schema_is_the_latest_version_or_the_pinned_one(
    glue: Any, registry: tuple[str, str, list[str]]
) -> None:
    name, schema, ids = registry
    latest = reader_version(glue, name, schema)
    assert (latest.version_id, latest.version_number, latest.data_format) == (ids[1], 2, "AVRO")
    assert json.loads(latest.definition) == V2
    pinned = reader_version(glue, name, schema, 1)
    assert (pinned.version_id, json.loads(pinned.definition)) == (ids[0], V1)


@pytest.mark.parametrize(
    ("which", "message"),
    [
        (
            {"registry": "no-such-registry"},
            r"schema 'pings' in registry 'no-such-registry', its latest version: "
            r"GetSchemaVersion failed \(EntityNotFoundException\); check the options",
        ),
        (
            {"schema": "no-such-schema"},
            r"schema 'no-such-schema' in registry 'reg-.*', its latest version: "
            r"GetSchemaVersion failed \(EntityNotFoundException\)",
        ),
        (
            {"version_number": 7},
            r"schema 'pings' in registry 'reg-.*', version 7: GetSchemaVersion failed "
            r"\(EntityNotFoundException\)",
        ),
        ({"schema": "protos"}, r"is PROTOBUF; the connector reads AVRO and JSON"),
    ],
)
def test_a_missing_or_unreadable_schema_is_a_named_error(
    glue: Any, registry: tuple[str, str, list[str]], which: dict[str, Any], message: str
) -> None:
    name, schema, _ = registry
    args = {"registry": name, "schema": schema, "version_number": None, **which}
    with pytest.raises(SchemaRegistryError, match=message):
        reader_version(glue, args["registry"], args["schema"], args["version_number"])


def test_an_unknown_version_id_is_none_not_an_error(glue: Any) -> None:
    assert version_by_id(glue, str(uuid.uuid4())) is None


def test_each_version_is_fetched_once_per_process_however_many_pages_and_tasks(
    glue: Any, registry: tuple[str, str, list[str]]
) -> None:
    name, schema, ids = registry
    unknown = str(uuid.uuid4())
    # Even records written with V1, odd ones with V2 (which adds "from", default "?").
    page = [
        frame(ids[1], V2, {"n": n, "from": f"h{n}"}) if n % 2 else frame(ids[0], V1, {"n": n})
        for n in range(50)
    ]
    page.append(frame(unknown, V1, {"n": 99}))
    with CallCounter(glue) as counter:
        reader = reader_version(glue, name, schema)  # the driver's one call
        assert len(counter.calls) == 1
        # Tasks on several threads of one Python worker, each with its own decoder.
        results: list[Any] = []

        def task() -> None:
            decoder = GlueDecoder(reader, version_cache(glue).get)
            results.extend(decoder.decode(page) for _ in range(3))

        threads = [threading.Thread(target=task) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        # One call per version id met (two known, one unknown), on top of the driver's.
        assert len(counter.calls) == 1 + 3
    assert len(results) == 12
    expected = [{"n": n, "from": f"h{n}" if n % 2 else "?"} for n in range(50)]
    for columns in results:
        assert columns.value.to_pylist() == [*expected, None]
        errors = columns.decode_error.to_pylist()
        assert errors[:50] == [None] * 50
        assert errors[50] == f"unknown schema version {unknown}"


def test_concurrent_asks_for_one_id_make_one_call() -> None:
    calls: list[str] = []
    release = threading.Event()

    def slow_fetch(version_id: str) -> None:
        calls.append(version_id)
        release.wait(5)

    cache = SchemaVersionCache(slow_fetch)  # type: ignore[arg-type]
    threads = [threading.Thread(target=cache.get, args=("v",)) for _ in range(6)]
    for thread in threads:
        thread.start()
    wait_for(lambda: bool(calls), 5, "the first fetch")  # the other threads asked by now
    release.set()
    for thread in threads:
        thread.join()
    assert calls == ["v"]


def test_the_cache_is_bounded_least_recently_used_out() -> None:
    fetched: list[str] = []
    cache = SchemaVersionCache(lambda v: fetched.append(v), max_entries=2)  # type: ignore[arg-type, func-returns-value]
    for version in ("a", "b", "a", "c", "a", "b"):
        cache.get(version)
    # "b" was least recently used when "c" came, so it is fetched again; "a" stayed.
    assert fetched == ["a", "b", "c", "b"]
    assert len(cache) == 2
