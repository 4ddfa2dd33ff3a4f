"""A Spark Connect client for test_spark_connect.py: it connects to the server of
connect_server.py, registers the source through the client and runs the same query twice
to a Parquet sink with Trigger.AvailableNow, then reads the stream in batch.

Argument: JSON ``{"remote": "sc://127.0.0.1:PORT", "options": {...}, "out": DIR,
"checkpoint": DIR}``. Prints "RUN 1" when
the first run has stopped, waits for a line on stdin (more records have arrived), runs
again from the same checkpoint and prints "RUN 2". Then a batch read with the same options:
prints "COUNT n" after its first action, waits for a line on stdin (more records again),
prints "ROWS" and the JSON of the rows' (shardId, sequenceNumber) of a second action on
the same DataFrame, and "VIEW" and the JSON of a SQL view's count per partition key.
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
    batch_read(spark, job)
    spark.stop()


def batch_read(spark: Any, job: dict[str, Any]) -> None:
    df = spark.read.format("kinesis").options(**job["options"]).load()
    print(f"COUNT {df.count()}", flush=True)
    sys.stdin.readline()
    rows = sorted([r["shardId"], r["sequenceNumber"]] for r in df.collect())
    print(f"ROWS {json.dumps(rows)}", flush=True)
    options = ", ".join(f"{key} '{value}'" for key, value in job["options"].items())
    spark.sql(f"CREATE TEMPORARY VIEW orders USING kinesis OPTIONS ({options})")
    counts = spark.sql("SELECT partitionKey, count(*) AS n FROM orders GROUP BY 1").collect()
    print(f"VIEW {json.dumps(dict(sorted((r[0], r[1]) for r in counts)))}", flush=True)


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
