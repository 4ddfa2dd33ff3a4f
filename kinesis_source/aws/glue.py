"""The AWS Glue Schema Registry's control calls, and each process's cache of schema versions.

(Driver) once at query start: ``reader_version`` checks that the registry and schema exist
and hold Avro or JSON, and returns the reader schema: the schema's latest version, or the
pinned ``schemaVersionNumber``.
(Executor) per page: the decoder asks ``version_cache(client).get(id)`` for each schema
version id it meets; each id costs one GetSchemaVersion per Python worker process, however
many tasks and threads ask, and an id the registry does not know is remembered as unknown.

Retries are botocore's (the client's standard mode); what still fails is a
``SchemaRegistryError`` naming the registry, schema or version and the error code. Only
"no such version" on the executor is an answer rather than an error: the records carrying
that id get it as their ``decodeError``.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from kinesis_source.errors import SchemaRegistryError

logger = logging.getLogger(__name__)

# GetSchemaVersion's answer when the id, registry, schema or version number does not exist.
NOT_FOUND = "EntityNotFoundException"
# The data formats the decoder reads (the registry also holds PROTOBUF).
READABLE_FORMATS = ("AVRO", "JSON")
# Schema versions one process keeps; a stream rarely carries more than a few dozen, and
# each entry is one schema definition (Glue caps a definition at 170,000 characters).
CACHE_ENTRIES = 1000


@dataclass(frozen=True)
class SchemaVersion:
    """One version of a registry schema, as GetSchemaVersion returns it."""

    version_id: str
    data_format: str  # AVRO, JSON or PROTOBUF
    definition: str
    version_number: int | None = None
    schema_arn: str | None = None


def _version(response: dict[str, Any]) -> SchemaVersion:
    return SchemaVersion(
        version_id=response["SchemaVersionId"],
        data_format=response["DataFormat"],
        definition=response["SchemaDefinition"],
        version_number=response.get("VersionNumber"),
        schema_arn=response.get("SchemaArn"),
    )


def _code(exc: BotoCoreError | ClientError) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", "ClientError"))
    return type(exc).__name__


def version_by_id(glue: Any, version_id: str) -> SchemaVersion | None:
    """The version ``version_id``, None when the registry has no such version."""
    try:
        response = glue.get_schema_version(SchemaVersionId=version_id)
    except ClientError as exc:
        if _code(exc) == NOT_FOUND:
            return None
        raise SchemaRegistryError(
            f"GetSchemaVersion of schema version {version_id} failed ({_code(exc)})"
        ) from exc
    except BotoCoreError as exc:
        raise SchemaRegistryError(
            f"GetSchemaVersion of schema version {version_id} failed ({_code(exc)})"
        ) from exc
    return _version(response)


def version_by_name(
    glue: Any, registry: str, schema: str, version_number: int | None = None
) -> SchemaVersion:
    """Version ``version_number`` of ``registry``/``schema``, or its latest when None."""
    number: dict[str, Any] = (
        {"LatestVersion": True} if version_number is None else {"VersionNumber": version_number}
    )
    which = "its latest version" if version_number is None else f"version {version_number}"
    try:
        response = glue.get_schema_version(
            SchemaId={"RegistryName": registry, "SchemaName": schema}, SchemaVersionNumber=number
        )
    except (BotoCoreError, ClientError) as exc:
        raise SchemaRegistryError(
            f"schema '{schema}' in registry '{registry}', {which}: GetSchemaVersion failed "
            f"({_code(exc)}); check the options registryName, schemaName and "
            "schemaVersionNumber, and the registry's region"
        ) from exc
    return _version(response)


def reader_version(
    glue: Any, registry: str, schema: str, version_number: int | None = None
) -> SchemaVersion:
    """(Driver) the reader schema: ``version_by_name``, refused unless it is Avro or JSON."""
    found = version_by_name(glue, registry, schema, version_number)
    if found.data_format not in READABLE_FORMATS:
        raise SchemaRegistryError(
            f"schema '{schema}' in registry '{registry}' is {found.data_format}; the "
            f"connector reads {' and '.join(READABLE_FORMATS)}"
        )
    return found


class SchemaVersionCache:
    """Schema versions by id, each fetched once: thread-safe, least recently used first out.

    Threads asking for the same missing id wait for one fetch; different ids are fetched
    in parallel. A failed fetch is not cached (the next ask tries again).
    """

    def __init__(
        self, fetch: Callable[[str], SchemaVersion | None], max_entries: int = CACHE_ENTRIES
    ) -> None:
        self._fetch = fetch
        self._max_entries = max_entries
        self._found: OrderedDict[str, SchemaVersion | None] = OrderedDict()
        self._fetching: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._found)

    def get(self, version_id: str) -> SchemaVersion | None:
        with self._lock:
            if version_id in self._found:
                self._found.move_to_end(version_id)
                return self._found[version_id]
            fetching = self._fetching.setdefault(version_id, threading.Lock())
        with fetching:
            with self._lock:
                if version_id in self._found:  # another thread fetched it meanwhile
                    return self._found[version_id]
            try:
                found = self._fetch(version_id)
            except BaseException:
                with self._lock:
                    self._fetching.pop(version_id, None)
                raise
            if found is None:
                logger.warning("schema version %s is not in the registry", version_id)
            with self._lock:
                # Stored and unmarked at once: a thread arriving between the two would
                # otherwise fetch the same id again.
                self._found[version_id] = found
                self._fetching.pop(version_id, None)
                while len(self._found) > self._max_entries:
                    self._found.popitem(last=False)
            return found


_CACHES: dict[int, tuple[Any, SchemaVersionCache]] = {}
_CACHES_LOCK = threading.Lock()


def version_cache(glue: Any) -> SchemaVersionCache:
    """(Executor) the process's cache for ``glue`` (a client of ``clients.
    schema_registry_client``, itself cached per settings, so one cache per settings)."""
    with _CACHES_LOCK:
        entry = _CACHES.get(id(glue))
        if entry is None or entry[0] is not glue:
            entry = _CACHES[id(glue)] = (glue, SchemaVersionCache(lambda v: version_by_id(glue, v)))
        return entry[1]
