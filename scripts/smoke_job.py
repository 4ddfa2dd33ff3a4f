"""A small streaming job for scripts/smoke_zip.sh: read a stream to its end, report what
was read and where every connector module was imported from (driver and executors).

Usage: smoke_job.py ENDPOINT_URL STREAM STORE CHECKPOINT_DIR [register|auto]
  STREAM    one stream, or several (a,b,...): then the query runs again from its checkpoint
            with the first stream only, and the driver logs that the others were dropped
  register  call kinesis_source.register(spark), as a job shipped with --py-files should
  auto      no register call: format("kinesis") resolves through pyspark_kinesis, which
            the driver JVM finds only when the zip is on its own PYTHONPATH
Prints one line: ``SMOKE {json}``.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from pyspark.sql import SparkSession

# One module of each subpackage too: the report then shows that the zip carries them.
MODULES = (
    "kinesis_source",
    "kinesis_source.source.executor.shard_reader",
    "kinesis_source.source.stream_reader",
    "kinesis_source.stores.dynamodb",
    "kinesis_source.aws.clients",
    "kinesis_source.records.fast_decode",
    "pyspark_kinesis",
    "aws_kinesis_agg",
)


def module_files(_: Any = None) -> dict[str, str]:
    import importlib

    return {name: str(importlib.import_module(name).__file__) for name in MODULES}


def main(endpoint: str, stream: str, store: str, checkpoint: str, mode: str = "register") -> None:
    spark = SparkSession.builder.appName("kinesis-source-zip-smoke").getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    rows: list[str] = []

    def collect(df: Any, _batch_id: int) -> None:
        rows.extend(r["value"] for r in df.selectExpr("CAST(data AS STRING) AS value").collect())

    if mode == "register":
        import kinesis_source

        kinesis_source.register(spark)
    runs = [stream] if "," not in stream else [stream, stream.split(",")[0]]
    for streams in runs:
        query = (
            spark.readStream.format("kinesis")
            .option("streamName", streams)
            .option("region", "us-east-1")
            .option("endpointUrl", endpoint)
            .option("checkpointStore", store)
            .option("initialPosition", "trim_horizon")
            .option("fetchIntervalMs", "0")
            .load()
            .writeStream.foreachBatch(collect)
            .option("checkpointLocation", checkpoint)
            .start()
        )
        try:
            query.processAllAvailable()
        finally:
            query.stop()
    executors = spark.sparkContext.parallelize([0], 1).map(module_files).collect()[0]
    report = {"rows": sorted(rows), "driver": module_files(), "executor": executors}
    print("SMOKE " + json.dumps(report), flush=True)
    spark.stop()


if __name__ == "__main__":
    main(*sys.argv[1:6])
