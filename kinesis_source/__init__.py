"""kinesis_source: a Spark Structured Streaming source for Amazon Kinesis Data Streams."""

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
