"""(Driver) ``schemaRegistry=glue`` for the sink: the schema version that encodes ``value``.

Once per write or query, before any task runs: the schema's latest version, refused unless
it is Avro, and the ``value`` column's type checked against it (``avro_check``), so that a
mismatch is one error naming the field, not a failed task per row. The version (id and
definition) travels to the tasks in the ``SinkPlan``; tasks never ask Glue.
"""

from __future__ import annotations

import json

from pyspark.sql.pandas.types import to_arrow_type
from pyspark.sql.types import DataType

from kinesis_source.aws.clients import schema_registry_client
from kinesis_source.aws.glue import SchemaVersion, version_by_name
from kinesis_source.errors import SchemaMismatchError, SchemaRegistryError
from kinesis_source.records.avro_check import check_fits
from kinesis_source.sink.options import SinkOptions


def writer_schema(options: SinkOptions, column: str, column_type: DataType) -> SchemaVersion:
    """The latest version of the sink's schema, checked against the column's type."""
    wanted = options.registry_schema
    assert wanted is not None and wanted.schema_name is not None
    glue = schema_registry_client(options, endpoint_url=options.schema_registry_endpoint_url)
    version = version_by_name(glue, wanted.registry_name, wanted.schema_name)
    where = (
        f"schema '{wanted.schema_name}' in registry '{wanted.registry_name}', version "
        f"{version.version_number} ({version.version_id})"
    )
    if version.data_format != "AVRO":
        raise SchemaRegistryError(
            f"{where} is {version.data_format}; the sink encodes Avro schemas (frame other "
            "records yourself and write them as the data column, without schemaRegistry)"
        )
    try:
        check_fits(
            to_arrow_type(column_type, timezone="UTC"), json.loads(version.definition), name=column
        )
    except SchemaMismatchError as exc:
        raise SchemaMismatchError(exc.field, f"{exc.reason} ({where})") from None
    return version
