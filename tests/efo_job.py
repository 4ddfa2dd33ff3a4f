"""A streaming job in its own JVM for tests/source/test_efo_read.py: Kinesis into a parquet
file sink at a 1 s processingTime trigger, until it has run a number of batches (at most a given
time). It prints a line when the query has started and one with the batches it ran.

Run as ``python -m tests.efo_job OPTIONS_JSON OUTPUT_DIR CHECKPOINT_DIR BATCHES SECONDS``. Its own
SparkSession has a fresh pool of Python workers, as a newly started application does.
"""

from __future__ import annotations

import json
import os
import sys
import time

from pyspark.sql import SparkSession

from kinesis_source import register


def main(argv: list[str]) -> int:
    options, out, checkpoint = json.loads(argv[1]), argv[2], argv[3]
    batches, seconds = int(argv[4]), float(argv[5])
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    spark = (
        SparkSession.builder.master("local[2]")
        .appName("kinesis_source-efo-job")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    register(spark)
    reader = spark.readStream.format("kinesis")
    for key, value in options.items():
        reader = reader.option(key, value)
    query = (
        reader.load()
        .writeStream.format("parquet")
        .option("path", out)
        .option("checkpointLocation", checkpoint)
        .trigger(processingTime="1 second")
        .start()
    )
    print(json.dumps({"started": True}), flush=True)
    try:
        # Until the query has run ``batches`` batches (or ``seconds`` passed), then stop.
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            progress = query.lastProgress
            if progress is not None and progress["batchId"] + 1 >= batches:
                break
            time.sleep(0.2)
        done = query.lastProgress
        print(json.dumps({"batches": 0 if done is None else done["batchId"] + 1}), flush=True)
    finally:
        query.stop()
        spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
