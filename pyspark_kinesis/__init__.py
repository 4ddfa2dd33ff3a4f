"""Auto-registration hook: PySpark imports top-level ``pyspark_*`` modules on the first data
source look-up and registers their ``DefaultSource``, so ``format("kinesis")`` works with no
``register`` call."""

from __future__ import annotations

from kinesis_source.data_source import KinesisDataSource as DefaultSource

__all__ = ["DefaultSource"]
