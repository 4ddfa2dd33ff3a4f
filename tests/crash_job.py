"""The streaming job that tests/source/test_crash.py kills: Kinesis into a parquet file sink.

Run as ``python -m tests.crash_job OPTIONS_JSON OUTPUT_DIR CHECKPOINT_DIR``. It starts its
own SparkSession (its own JVM), processes everything available, and exits.
"""

from __future__ import annotations

import json
import os
import sys

from pyspark.sql import SparkSession

from kinesis_source import register
from tests.helpers import start_file_query


def main(argv: list[str]) -> int:
    options, out, checkpoint = json.loads(argv[1]), argv[2], argv[3]
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    spark = (
        SparkSession.builder.master("local[2]")
        .appName("kinesis_source-crash-job")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    register(spark)
    query = start_file_query(spark, options, out, checkpoint)
    try:
        query.processAllAvailable()
    finally:
        query.stop()
        spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
