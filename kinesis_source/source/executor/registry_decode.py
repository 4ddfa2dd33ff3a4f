"""Executor side: a task's rows gain the registry's decoded columns (``schemaRegistry=glue``).

Each batch the shard reads yield keeps its columns and gains ``value``,
``schemaVersionId`` and ``decodeError``, decoded from ``data`` column by column
(``records/glue_decode.py``). One decoder per task; the writers' schema versions come from
the process's cache (``aws/glue.py``): one GetSchemaVersion per version id per Python
worker, however many tasks and pages.

``failOnDecodeError=true``: the first record that cannot be decoded fails the task with a
``RecordDecodeError`` naming its stream, shard and sequence number. It is raised before
the batch holding it is handed to Spark, so the shard's read records no end
(``shard_reader``): a restarted query reads the record again.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator

import pyarrow as pa

from kinesis_source.aws.clients import schema_registry_client
from kinesis_source.aws.glue import SchemaVersion, version_cache
from kinesis_source.errors import RecordDecodeError
from kinesis_source.records.glue_decode import GlueDecoder
from kinesis_source.schema import DECODE_ERROR, VALUE
from kinesis_source.source.options import KinesisOptions


def decode_batches(
    opts: KinesisOptions,
    reader: SchemaVersion,
    arrow_schema: pa.Schema,
    batches: Iterator[pa.RecordBatch],
) -> Generator[pa.RecordBatch, None, None]:
    """``batches`` (the source's columns) with the three decoded columns added, in
    ``arrow_schema`` (the Arrow form of the schema Spark was given)."""
    glue = schema_registry_client(opts, endpoint_url=opts.schema_registry_endpoint_url)
    decoder = GlueDecoder(reader, version_cache(glue).get)
    value_type = arrow_schema.field(VALUE).type
    try:
        for batch in batches:
            columns = decoder.decode(batch.column("data"))
            if opts.fail_on_decode_error and columns.decode_error.null_count < batch.num_rows:
                raise _decode_error(batch, columns.decode_error)
            value = columns.value
            if not value.type.equals(value_type):
                # Spark's Arrow form of the same type may differ in names Arrow compares
                # on some versions (a list's item field): the same data either way.
                value = value.cast(value_type)
            yield pa.RecordBatch.from_arrays(
                [*batch.columns, value, columns.schema_version_id, columns.decode_error],
                schema=arrow_schema,
            )
    finally:
        close = getattr(batches, "close", None)
        if close is not None:
            close()  # the shards' reads stop here and record no end


def _decode_error(batch: pa.RecordBatch, errors: pa.StringArray) -> RecordDecodeError:
    row = next(i for i, error in enumerate(errors.to_pylist()) if error is not None)
    stream = batch.column("streamName")[row].as_py()
    shard = batch.column("shardId")[row].as_py()
    sequence = batch.column("sequenceNumber")[row].as_py()
    sub = batch.column("subSequenceNumber")[row].as_py()
    return RecordDecodeError(
        f"stream {stream!r} shard {shard} record {sequence} (sub-sequence {sub}) cannot be "
        f"decoded: {errors[row].as_py()}. failOnDecodeError=true stops the query here; with "
        f"false the record is read with this reason in the column {DECODE_ERROR}",
        stream=stream,
        shard_id=shard,
        sequence_number=sequence,
    )
