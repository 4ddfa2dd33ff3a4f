"""A job for the standalone-cluster tests, run by spark-submit with --py-files ZIP.

Argument: JSON ``{"queries": [...]}``; each query has ``options`` (the source's options),
``out`` (a Parquet directory), ``checkpoint``, and optionally ``after`` (a file to wait for
before starting) and ``done`` (a file written when the query has stopped). Each query runs
with Trigger.AvailableNow, one after the other. Prints one line ``REPORT {json}``: where
the connector was imported from on the driver and on an executor, and whether msgspec was.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

from pyspark.sql import SparkSession

import kinesis_source


def origins(_: Any = None) -> dict[str, Any]:
    import importlib.util

    import kinesis_source

    return {
        "kinesis_source": kinesis_source.__file__,
        "msgspec": importlib.util.find_spec("msgspec") is not None,
    }


def wait_for_file(path: str, timeout_s: float = 300.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} did not appear within {timeout_s}s")
        time.sleep(0.1)


def main(job: dict[str, Any]) -> None:
    spark = SparkSession.builder.appName("kinesis-source-cluster-test").getOrCreate()
    kinesis_source.register(spark)
    for query in job["queries"]:
        if query.get("after"):
            wait_for_file(query["after"])
        running = (
            spark.readStream.format("kinesis")
            .options(**query["options"])
            .load()
            .writeStream.format("parquet")
            .option("path", query["out"])
            .option("checkpointLocation", query["checkpoint"])
            .trigger(availableNow=True)
            .start()
        )
        running.awaitTermination()
        if query.get("done"):
            with open(query["done"], "w") as marker:
                marker.write("done\n")
    executor = spark.sparkContext.parallelize([0], 1).map(origins).collect()[0]
    print("REPORT " + json.dumps({"driver": origins(), "executor": executor}), flush=True)
    spark.stop()


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
