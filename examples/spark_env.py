"""The SparkSession the examples run in: local by default, the submitter's under spark-submit."""

from __future__ import annotations

import os
import sys
from typing import Any

DEFAULT_LOCAL_MASTER = "local[2]"


def get_spark(app_name: str, master: str | None = None) -> Any:
    """A SparkSession with the ``kinesis`` format registered and the session zone UTC.

    UTC because the examples derive partition names (``ot=yyyyMMddHH``) from timestamps,
    and those must not depend on the machine's zone.
    """
    # Without this, Python workers start whichever python3 is first on PATH, which may
    # lack pyarrow and kinesis_source.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    from kinesis_source import register

    builder = SparkSession.builder.appName(app_name).config("spark.sql.session.timeZone", "UTC")
    # Under spark-submit the master comes from the submitter (the JVM started us and set
    # the gateway port); run directly, the example runs in local mode.
    if master or "PYSPARK_GATEWAY_PORT" not in os.environ:
        builder = builder.master(master or DEFAULT_LOCAL_MASTER)
    spark = builder.getOrCreate()
    register(spark)
    return spark
