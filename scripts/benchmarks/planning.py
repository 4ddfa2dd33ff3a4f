"""(d) planning time of one trigger (``latestOffset`` on the driver)."""

from __future__ import annotations

import os
import statistics
import tempfile
import time

from kinesis_source.options import parse_options

from .common import REGION, figure, kinesis, moto_kinesis, new_stream

PLANNING_SHARDS = 200
PLANNING_TRIGGERS = 10


def run(repeat: int) -> None:
    from pyspark.sql.streaming.datasource import ReadAllAvailable

    from kinesis_source.source.stream_reader import KinesisStreamReader

    print(
        f"(d) planning one trigger with no new data, {PLANNING_SHARDS} shards on moto "
        f"(subprocess, 127.0.0.1), {PLANNING_TRIGGERS} triggers after one warm-up"
    )
    with moto_kinesis() as endpoint, tempfile.TemporaryDirectory() as tmp:
        client = kinesis(endpoint)
        stream = new_stream(client, PLANNING_SHARDS)
        opts = parse_options(
            {
                "streamName": stream,
                "region": REGION,
                "endpointUrl": endpoint,
                "checkpointStore": os.path.join(tmp, "store"),
                "initialPosition": "trim_horizon",
                # Probe every shard on every trigger: the full cost, not the paced one.
                "fetchIntervalMs": "0",
            }
        )
        reader = KinesisStreamReader(opts)
        start = reader.initialOffset()
        assert reader.latestOffset(start, ReadAllAvailable()) is start
        times = []
        for _ in range(PLANNING_TRIGGERS):
            begin = time.perf_counter()
            assert reader.latestOffset(start, ReadAllAvailable()) is start
            times.append(time.perf_counter() - begin)
    times.sort()
    print(f"  latestOffset, median {statistics.median(times):.3f} s, max {times[-1]:.3f} s")
    median = statistics.median(times)
    print(f"  planning per trigger: {median:.3f} s (target < 1 s)")
    figure(
        "d",
        f"planning one idle trigger, {PLANNING_SHARDS} shards",
        f"median {median:.3f} s",
        "< 1 s",
        median < 1,
    )
