"""Running word counts from a Kinesis stream: the counterpart of Spark's KinesisWordCountASL.

With no arguments it starts an embedded Kinesis (moto on 127.0.0.1), creates a stream,
runs a producer thread that writes lines of random words, prints running counts for a
bounded time, and finally checks the counts against what the producer wrote.

Against real Kinesis (credentials from the usual AWS chain)::

    python examples/word_count.py --stream my-stream --region eu-west-1

Options: --duration SECONDS, --lines-per-sec N, --words-per-line M, --shards N (embedded
stream), --checkpoint DIR (the query checkpoint and the connector's store go under it).
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
sys.path.insert(0, str(Path(__file__).resolve().parent))

WORDS = ["spark", "kinesis", "stream", "shard", "record", "batch", "offset", "python"]


def produce(
    client: Any,
    stream: str,
    lines_per_sec: int,
    words_per_line: int,
    stop: threading.Event,
    written: Counter[str],
) -> None:
    """Write ``lines_per_sec`` lines of random words each second until ``stop`` is set."""
    rng = random.Random(7)
    while not stop.is_set():
        started = time.monotonic()
        entries = []
        for _ in range(lines_per_sec):
            line = " ".join(rng.choice(WORDS) for _ in range(words_per_line))
            entries.append({"Data": line.encode(), "PartitionKey": str(rng.randrange(1 << 30))})
        pending = entries
        while pending:
            resp = client.put_records(StreamName=stream, Records=pending)
            failed = [e for e, r in zip(pending, resp["Records"], strict=True) if "ErrorCode" in r]
            for entry, result in zip(pending, resp["Records"], strict=True):
                if "ErrorCode" not in result:
                    written.update(entry["Data"].decode().split(" "))
            pending = failed
        stop.wait(max(0.0, 1.0 - (time.monotonic() - started)))


def run(args: argparse.Namespace, endpoint: str | None, client: Any | None) -> int:
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F

    from kinesis_source import register

    spark = (
        SparkSession.builder.master(args.master)
        .appName("KinesisWordCount")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    register(spark)

    workdir = Path(args.checkpoint or tempfile.mkdtemp(prefix="kinesis-word-count-"))
    reader = (
        spark.readStream.format("kinesis")
        .option("streamName", args.stream)
        .option("region", args.region)
        .option("initialPosition", "trim_horizon" if endpoint else "latest")
        .option("checkpointStore", str(workdir / "store"))
    )
    if endpoint:
        reader = reader.option("endpointUrl", endpoint)
    if client is not None:  # the embedded emulator: its fake credentials, not the caller's
        from local_kinesis import source_credentials

        reader = reader.options(**source_credentials())
    words = (
        reader.load()
        .select(F.explode(F.split(F.col("data").cast("string"), " ")).alias("word"))
        .where(F.col("word") != "")
    )
    counts: dict[str, int] = {}

    def show(batch: Any, batch_id: int) -> None:
        counts.clear()
        counts.update({row["word"]: row["count"] for row in batch.collect()})
        top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
        print(
            f"{time.strftime('%H:%M:%S')} batch {batch_id}: "
            + ", ".join(f"{w}={c}" for w, c in top),
            flush=True,
        )

    query = (
        words.groupBy("word")
        .count()
        .writeStream.outputMode("complete")
        .foreachBatch(show)
        .option("checkpointLocation", str(workdir / "checkpoint"))
        .trigger(processingTime=f"{args.trigger_ms} milliseconds")
        .start()
    )
    stop = threading.Event()
    written: Counter[str] = Counter()
    producer = None
    if client is not None:
        producer = threading.Thread(
            target=produce,
            args=(client, args.stream, args.lines_per_sec, args.words_per_line, stop, written),
            daemon=True,
        )
        producer.start()
    try:
        query.awaitTermination(args.duration)
    finally:
        stop.set()
        if producer is not None:
            producer.join()
            query.processAllAvailable()  # read the producer's last lines too
        query.stop()
        spark.stop()
    if client is None:
        return 0
    if Counter(counts) != written:
        print(f"MISMATCH: counted {dict(counts)} but the producer wrote {dict(written)}")
        return 1
    print(f"OK: the counts of {sum(written.values())} words match what the producer wrote")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stream", help="stream name (default: an embedded local stream)")
    parser.add_argument("--region", default=os.environ.get("AWS_REGION", "us-east-1"))
    parser.add_argument("--endpoint-url", help="Kinesis endpoint (default: AWS's)")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds to run")
    parser.add_argument("--lines-per-sec", type=int, default=100)
    parser.add_argument("--words-per-line", type=int, default=10)
    parser.add_argument("--shards", type=int, default=2, help="shards of the embedded stream")
    parser.add_argument("--trigger-ms", type=int, default=2000)
    parser.add_argument("--checkpoint", help="directory for checkpoint and store")
    parser.add_argument("--master", default="local[2]")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if args.stream:
        return run(args, args.endpoint_url, None)
    from local_kinesis import DEFAULT_REGION, embedded_kinesis

    args.stream, args.region = "word-count", DEFAULT_REGION
    with embedded_kinesis(args.stream, args.shards) as (endpoint, client):
        return run(args, endpoint, client)


if __name__ == "__main__":
    sys.exit(main())
