"""A streaming job in its own JVM for tests/source/test_efo_read.py: Kinesis into a parquet
file sink at a 1 s processingTime trigger for a given time after its first batch (which starts
the Python workers and registers the consumer). It prints a line when the query has started and
one with the batches it ran in that time, how long the longest of them took, and how many shard
reads progress reported as read by GetRecords after a refused SubscribeToShard
(``efoFallbackReads``, over the whole run; the last batch's figure is reported only when the
next batch is planned, so it may be missing).

Run as ``python -m tests.efo_job OPTIONS_JSON OUTPUT_DIR CHECKPOINT_DIR SECONDS``. Its own
SparkSession has a fresh pool of Python workers, as a newly started application does.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from typing import Any

from pyspark.sql import SparkSession
from pyspark.sql.streaming import StreamingQueryListener

from kinesis_source import register


class FirstBatch(StreamingQueryListener):
    """Knows when the query's first trigger has ended (or the query has)."""

    def __init__(self) -> None:
        self.ended = threading.Event()
        self.batch_id = -1

    def onQueryStarted(self, event: Any) -> None:
        pass

    def onQueryProgress(self, event: Any) -> None:
        if not self.ended.is_set():
            self.batch_id = event.progress.batchId
            self.ended.set()

    def onQueryIdle(self, event: Any) -> None:
        pass

    def onQueryTerminated(self, event: Any) -> None:
        self.ended.set()


def main(argv: list[str]) -> int:
    options, out, checkpoint = json.loads(argv[1]), argv[2], argv[3]
    seconds = float(argv[4])
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
    first = FirstBatch()
    spark.streams.addListener(first)
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
        # After the first batch, run for ``seconds`` (raising at once if the query fails).
        if not first.ended.wait(300):
            raise TimeoutError("the query ran no batch in 300 s")
        query.awaitTermination(seconds)
        timed = [p for p in query.recentProgress if p["batchId"] > first.batch_id]
        fallbacks: dict[int, int] = {}
        for progress in query.recentProgress:
            lag = json.loads(progress["sources"][0]["latestOffset"] or "null")
            if lag:
                fallbacks[lag["batch"]] = lag.get("efoFallbackReads", 0)
        report = {
            "batches": len({p["batchId"] for p in timed}),
            "longestMs": max((p["durationMs"]["triggerExecution"] for p in timed), default=0),
            "fallbackReads": sum(fallbacks.values()),
        }
        print(json.dumps(report), flush=True)
    finally:
        query.stop()
        spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
