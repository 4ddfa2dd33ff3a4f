"""A Spark Connect server for test_spark_connect.py, on 127.0.0.1 at the port given.

A classic local[2] session with Spark's Connect plugin: the server a notebook or a thin
client talks to. Its own process, so the client is a pure Connect client with no JVM, and
on a port of the test's choosing, so that two runs on one machine never meet on Spark's
fixed default 15002. Prints "READY" once it listens and stops when its stdin closes.
"""

from __future__ import annotations

import sys

from pyspark.sql import SparkSession


def main(port: int) -> None:
    spark = (
        SparkSession.builder.master("local[2]")
        .config("spark.plugins", "org.apache.spark.sql.connect.SparkConnectPlugin")
        .config("spark.connect.grpc.binding.address", "127.0.0.1")
        .config("spark.connect.grpc.binding.port", str(port))
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.ui.enabled", "false")
        .getOrCreate()
    )
    print("READY", flush=True)
    sys.stdin.read()
    spark.stop()


if __name__ == "__main__":
    main(int(sys.argv[1]))
