"""A Spark Connect client for test_spark_connect.py: it connects to the server of
connect_server.py, registers the source through the client and runs the same query twice
to a Parquet sink with Trigger.AvailableNow.

Argument: JSON ``{"remote": "sc://127.0.0.1:PORT", "options": {...}, "out": DIR,
"checkpoint": DIR}``. Prints "RUN 1" when
the first run has stopped, waits for a line on stdin (more records have arrived), runs
again from the same checkpoint and prints "RUN 2".
"""

from __future__ import annotations

import json
import sys
from typing import Any

from pyspark.sql import SparkSession

from kinesis_source import register


def run(spark: Any, job: dict[str, Any]) -> None:
    query = (
        spark.readStream.format("kinesis")
        .options(**job["options"])
        .load()
        .writeStream.format("parquet")
        .option("path", job["out"])
        .option("checkpointLocation", job["checkpoint"])
        .trigger(availableNow=True)
        .start()
    )
    query.awaitTermination()


def main(job: dict[str, Any]) -> None:
    spark = SparkSession.builder.remote(job["remote"]).getOrCreate()
    assert not hasattr(spark, "sparkContext")  # a Connect client, not a classic session
    register(spark)
    run(spark, job)
    print("RUN 1", flush=True)
    sys.stdin.readline()
    run(spark, job)
    print("RUN 2", flush=True)
    spark.stop()


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
