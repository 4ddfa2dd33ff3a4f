"""kinesis_source: a Spark Structured Streaming source for Amazon Kinesis Data Streams."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kinesis_source.data_source import KinesisDataSource

logging.getLogger(__name__).addHandler(logging.NullHandler())

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
    """Register the ``kinesis`` format with ``spark`` (a SparkSession)."""
    from kinesis_source.data_source import KinesisDataSource

    spark.dataSource.register(KinesisDataSource)
