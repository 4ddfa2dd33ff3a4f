"""(Driver) the reader schema of ``schemaRegistry=glue``, resolved once, at ``load()``.

``reader_schema`` asks Glue for the schema's latest version (or ``schemaVersionNumber``):
a missing registry or schema, or a schema that is neither Avro nor JSON, fails here,
before any task runs. The version found travels to the executors inside the stream
reader (pickled once at the query's start), so no task asks Glue for the reader schema;
tasks fetch only the writers' versions, each once per process (``aws/glue.py``).

Without ``schemaName`` there is no reader schema: records of JSON-schema versions come
out as their text, and records of Avro versions get a ``decodeError`` saying so.
"""

from __future__ import annotations

import json

import pyarrow as pa

from kinesis_source.aws.clients import schema_registry_client
from kinesis_source.aws.glue import SchemaVersion, reader_version
from kinesis_source.errors import SchemaMismatchError
from kinesis_source.records.avro_types import arrow_type
from kinesis_source.schema import output_arrow_schema
from kinesis_source.source.options import KinesisOptions

# The reader "schema" without schemaName: any JSON-schema version, payloads as text.
ANY_JSON = SchemaVersion(
    version_id="(any JSON schema: no schemaName)", data_format="JSON", definition="{}"
)


def reader_schema(opts: KinesisOptions) -> SchemaVersion | None:
    """The reader schema's version; None when the query does not decode records."""
    wanted = opts.registry_schema
    if wanted is None:
        return None
    if wanted.schema_name is None:
        return ANY_JSON
    glue = schema_registry_client(opts, endpoint_url=opts.schema_registry_endpoint_url)
    return reader_version(
        glue, wanted.registry_name, wanted.schema_name, opts.schema_version_number
    )


def value_type(reader: SchemaVersion) -> pa.DataType:
    """The ``value`` column's Arrow type: the Avro reader schema's, or text for JSON;
    ``SchemaMismatchError`` naming the field that has no Spark type."""
    if reader.data_format != "AVRO":
        return pa.string()
    try:
        definition = json.loads(reader.definition)
    except ValueError as exc:
        raise SchemaMismatchError(
            "", f"schema version {reader.version_id} is not Avro JSON: {exc}"
        ) from None
    return arrow_type(definition)


def output_schema(reader: SchemaVersion) -> pa.Schema:
    """The rows' Arrow schema when decoding with ``reader``."""
    return output_arrow_schema(value_type(reader))
