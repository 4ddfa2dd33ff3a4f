"""kinesis_source: a Spark Structured Streaming source and sink for Amazon Kinesis Data Streams.

Use: ``spark.readStream.format("kinesis")`` (``register`` is only needed for a
``--py-files`` zip), ``spark.read.format("kinesis")`` over a bounded range,
``df.write.format("kinesis")``, ``df.writeStream.format("kinesis")``.

The map, with the process that runs each part:

- ``data_source``: the ``DataSource`` Spark builds (driver): parses the options, gives the
  schema, builds the reader or the writers.
- ``source/``: the stream and batch readers; ``source/driver/`` plans batches on the driver,
  ``source/executor/`` reads shards in ``read()`` on executors.
- ``sink/``: the writers (driver) and their tasks (executors).
- ``stores/``: checkpoint stores (both).
- ``records/``: decoding, KPL deaggregation and aggregation (executors).
- ``aws/``: the boto3 seam: clients, retries, Kinesis control calls (both).
- ``options``: option names, value parsers, the connection options (driver).
- ``streams``: stream names and ARNs (driver).
- ``schema``: the output schema (both).
- ``limits``: the service's quotas and the connector's defaults (both).
- ``logs``: the connector's log lines to each process's stderr, and ``logLevel`` (both).
- ``errors``: the exception family (both).

Errors, all in ``kinesis_source.errors``, for users who catch them:

- ``KinesisSourceError``: the base of every error raised on purpose; carries ``stream``,
  ``shard_id`` and ``sequence_number`` where they matter.
- ``OptionError`` (also a ``ValueError``): an option is missing, unknown or bad; names it.
- ``StreamNotFoundError``: the stream does not exist where the options say.
- ``CredentialsError``: the configured credentials cannot be obtained.
- ``KinesisReadError``: a read's Kinesis call kept failing after the retries.
- ``DataLossError``: records the query should have read are gone (``failOnDataLoss``).
- ``CheckpointStoreError``: the checkpoint store cannot be read or written;
  ``CheckpointConflictError``, another attempt recorded the same read first (Spark
  retries the task, which then replays).
- ``KclLeaseError``: the KCL lease table cannot be read or holds no leases.
- ``ConsumerError``: an enhanced fan-out consumer cannot be registered, found or used.
- ``KinesisWriteError``: the sink's records could not be written after the retries.
- ``SinkInputError`` (also a ``ValueError``): a column or row the sink cannot write.
- ``SchemaRegistryError``: a Glue Schema Registry, schema or version cannot be used
  (``schemaRegistry=glue``); ``SchemaMismatchError`` (also a ``ValueError``), a schema
  with no Spark type, or a column that does not fit the schema, naming the field.
- ``RecordDecodeError`` (a ``KinesisReadError``): a registry record cannot be decoded and
  ``failOnDecodeError=true``; names the stream, shard and sequence number.

docs/design.md holds the design the code follows.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kinesis_source.data_source import KinesisDataSource

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

__all__ = ["KinesisDataSource", "register"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    # Spark is imported on first use of the data source, not by importing the package: the
    # pure modules (stop rules, planning, lineage, ...) then load without Spark or boto3.
    if name == "KinesisDataSource":
        from kinesis_source.data_source import KinesisDataSource

        return KinesisDataSource
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def register(spark: Any) -> None:
    """Register the ``kinesis`` format with ``spark`` (a SparkSession).

    Imported from a ``--py-files`` zip, the package is on the Python driver's path but not
    on the path of the Python processes the driver JVM starts by itself (PySpark's
    streaming source runner among them), which then cannot unpickle the source. The zip
    is put on the PYTHONPATH that Spark hands to those processes with this registration,
    through the same environment as ``spark.executorEnv.PYTHONPATH``.
    """
    from kinesis_source.data_source import KinesisDataSource

    archive = _zip_archive()
    # Spark Connect sessions have no SparkContext (PySparkAttributeError, an AttributeError).
    context = getattr(spark, "sparkContext", None) if archive else None
    if archive is None or context is None:
        spark.dataSource.register(KinesisDataSource)
        return
    environment: dict[str, str] = context.environment
    before = environment.get("PYTHONPATH")
    environment["PYTHONPATH"] = os.pathsep.join(p for p in (archive, before) if p)
    log.info("kinesis_source comes from %s: on the PYTHONPATH of Spark's Python workers", archive)
    try:
        # PySpark copies the environment into the registered data source here.
        spark.dataSource.register(KinesisDataSource)
    finally:
        if before is None:
            del environment["PYTHONPATH"]
        else:
            environment["PYTHONPATH"] = before


def _zip_archive() -> str | None:
    """The zip this package was imported from (zipimport), or None."""
    archive = getattr(__spec__.loader, "archive", None) if __spec__ else None
    return os.path.abspath(archive) if isinstance(archive, str) else None
