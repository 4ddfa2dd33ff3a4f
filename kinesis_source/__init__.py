"""kinesis_source: a Spark Structured Streaming source for Amazon Kinesis Data Streams."""

from __future__ import annotations

import logging
from typing import Any

from kinesis_source.data_source import KinesisDataSource

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = ["KinesisDataSource", "register"]
__version__ = "0.1.0"


def register(spark: Any) -> None:
    """Register the ``kinesis`` format with ``spark`` (a SparkSession)."""
    spark.dataSource.register(KinesisDataSource)
