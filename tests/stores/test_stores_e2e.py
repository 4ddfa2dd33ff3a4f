"""Restart and replay through Spark, once per checkpoint store (file, S3, DynamoDB).

The S3 and DynamoDB stores live on the moto server at 127.0.0.1, which the executors'
Python workers (separate processes) reach over HTTP like the driver does.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers import create_stream, put, source_options, store_options

pytestmark = [pytest.mark.spark, pytest.mark.lowest]

BatchFn = Callable[[Any, int], None]


class Collected:
    """Rows handed to foreachBatch, by Spark batch id; the last attempt of a batch wins."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.batches: dict[int, list[bytes]] = {}

    def sink(self, df: Any, batch_id: int) -> None:
        rows = [bytes(r["data"]) for r in df.select("data").collect()]
        with self.lock:
            self.batches[batch_id] = rows

    def all_rows(self) -> list[bytes]:
        with self.lock:
            return [row for rows in self.batches.values() for row in rows]


def _run(
    spark: Any, options: dict[str, str], checkpoint: Path, each_batch: BatchFn
) -> Exception | None:
    """Run the query until it has processed everything available; return its failure."""
    query = (
        spark.readStream.format("kinesis")
        .options(**options)
        .load()
        .writeStream.foreachBatch(each_batch)
        .option("checkpointLocation", str(checkpoint))
        .start()
    )
    try:
        query.processAllAvailable()
    except Exception as exc:  # the query failed on purpose: hand the failure back
        return exc
    finally:
        query.stop()
    return None


def _records(prefix: str, n: int) -> list[tuple[str, bytes]]:
    return [(f"key-{i % 7}", f"{prefix}-{i}".encode()) for i in range(n)]


@pytest.fixture
def options(kinesis: Any, moto_endpoint: str, stream_name: str, store_uri: str) -> dict[str, str]:
    """A fresh two-shard stream, read with a fresh store of each kind."""
    create_stream(kinesis, stream_name, 2)
    return source_options(
        moto_endpoint, stream_name, store_uri, **store_options(store_uri, moto_endpoint)
    )


def test_restart_after_more_data_reads_each_record_once(
    spark: Any, kinesis: Any, options: dict[str, str], stream_name: str, tmp_path: Path
) -> None:
    checkpoint = tmp_path / "checkpoint"
    out = Collected()
    first = put(kinesis, stream_name, _records("first", 12))

    assert _run(spark, options, checkpoint, out.sink) is None
    assert sorted(out.all_rows()) == sorted(r["data"] for r in first)

    second = put(kinesis, stream_name, _records("second", 9))
    assert _run(spark, options, checkpoint, out.sink) is None

    assert sorted(out.all_rows()) == sorted(r["data"] for r in first + second)


def test_failed_batch_is_replayed_with_exactly_its_records(
    spark: Any, kinesis: Any, options: dict[str, str], stream_name: str, tmp_path: Path
) -> None:
    checkpoint = tmp_path / "checkpoint"
    out = Collected()
    failed: dict[int, list[bytes]] = {}

    def fail_once(df: Any, batch_id: int) -> None:
        rows = [bytes(r["data"]) for r in df.select("data").collect()]
        if rows and not failed:
            failed[batch_id] = rows
            raise RuntimeError(f"sink failure injected into batch {batch_id}")
        out.sink(df, batch_id)

    first = put(kinesis, stream_name, _records("first", 10))
    error = _run(spark, options, checkpoint, fail_once)
    assert error is not None and "sink failure injected" in str(error)
    ((failed_id, failed_rows),) = failed.items()
    assert sorted(failed_rows) == sorted(r["data"] for r in first)

    # More data arrives before the restart; the replay must not pick it up.
    second = put(kinesis, stream_name, _records("second", 8))
    assert _run(spark, options, checkpoint, fail_once) is None

    assert sorted(out.batches[failed_id]) == sorted(failed_rows)
    assert sorted(out.all_rows()) == sorted(r["data"] for r in first + second)
