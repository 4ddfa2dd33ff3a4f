"""The connector on a real standalone cluster: two workers, executors in their own
processes, the job submitted with ``spark-submit --py-files kinesis_source.zip``, and every
Python (driver, driver-side runners, executors) a virtual environment with only the
documented minimum (pyarrow, boto3, protobuf): the connector comes from the zip alone.

Kinesis is moto behind tests/fault_proxy.py, which delays chosen GetRecords reads: that
keeps a batch's reads under way long enough to kill an executor in the middle of one, and
slows one shard so that speculation starts a second attempt of its task.
"""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import subprocess
import uuid
from pathlib import Path
from typing import Any

import boto3
from conftest import Cluster, committed_rows, submit

from tests.fault_proxy import FaultProxy
from tests.helpers import (
    REGION,
    create_stream,
    expected_keys,
    put,
    record_keys,
    source_options,
    wait_for,
)

RECORDS = 300
JOB_TIMEOUT_S = 300


def is_read_of(shard_id: str | None = None) -> Any:
    """Match a task's GetRecords (not the driver's Limit=1 probe), of one shard or any.

    moto's shard iterators are base64 of "stream:shard:position"."""

    def match(body: dict[str, Any]) -> bool:
        if int(body.get("Limit", 0)) <= 1:
            return False
        return shard_id is None or shard_id in base64.b64decode(body["ShardIterator"]).decode()

    return match


def filled_stream(kinesis: Any, name: str) -> tuple[list[str], list[dict[str, str]]]:
    shards = create_stream(kinesis, name, 2)
    sent = put(kinesis, name, [(f"key-{i % 17}", f"record-{i}".encode()) for i in range(RECORDS)])
    assert {p["shardId"] for p in sent} == set(shards)
    return shards, sent


def kill_an_executor_mid_batch(
    cluster: Cluster, proxy: FaultProxy, checkpoint: Path, job: subprocess.Popen[bytes]
) -> str:
    """Wait until batch 0 is planned and both of its shard reads are under way, kill -9 one
    executor's JVM, and check that the batch had not been committed when the kill landed."""
    planned, committed = checkpoint / "offsets" / "0", checkpoint / "commits" / "0"

    def reading() -> bool:
        assert job.poll() is None, "the job ended before its batch was read"
        return planned.exists() and proxy.in_flight["GetRecords delayed"] >= 2

    wait_for(reading, timeout_s=JOB_TIMEOUT_S, what="both shard reads of batch 0")
    executors = cluster.executors()
    assert len(executors) == 2, executors
    victim = min(executors)
    os.kill(executors[victim], signal.SIGKILL)
    assert not committed.exists(), "batch 0 was committed before the kill: it landed too late"
    return victim


def finish(job: subprocess.Popen[bytes], work: Path) -> tuple[dict[str, Any], str]:
    try:
        job.wait(timeout=JOB_TIMEOUT_S)
    finally:
        if job.poll() is None:
            job.kill()
            job.wait()
    log = (work / "driver.log").read_text(errors="replace")
    assert job.returncode == 0, log[-5000:]
    (line,) = [x for x in (work / "report.txt").read_text().splitlines() if x.startswith("REPORT ")]
    report = json.loads(line.removeprefix("REPORT "))
    for side in ("driver", "executor"):
        assert "kinesis_source.zip/kinesis_source/" in report[side]["kinesis_source"], report
        assert report[side]["orjson"] is False, report  # the documented minimum only
    return report, log


def assert_lost_executor_rescheduled(log: str, victim: str) -> None:
    # A task that was running on the killed executor failed with it and ran again.
    assert re.search(rf"Lost executor {victim}\b", log), "Spark did not see the kill"
    assert re.search(rf"ExecutorLostFailure \(executor {victim} exited", log), (
        "no task was running on the killed executor"
    )


def query_id(checkpoint: Path) -> str:
    return str(json.loads((checkpoint / "offsets" / "0").read_text().splitlines()[-1])["query"])


def test_s3_store_no_worker_reuse_executor_killed_mid_batch(
    standalone_cluster: Cluster,
    minimal_python: str,
    kinesis_zip: Path,
    kinesis: Any,
    moto_endpoint: str,
    tmp_path: Path,
) -> None:
    stream = f"deploy-{uuid.uuid4().hex[:8]}"
    _, sent = filled_stream(kinesis, stream)
    bucket = f"ckpt-{uuid.uuid4().hex[:8]}"
    boto3.client("s3", region_name=REGION, endpoint_url=moto_endpoint).create_bucket(Bucket=bucket)
    proxy = FaultProxy(moto_endpoint, delay_seconds=6.0)
    proxy.inject("GetRecords", "delay", times=2, match=is_read_of())
    endpoint = proxy.start()
    try:
        out, checkpoint = tmp_path / "out", tmp_path / "checkpoint"
        options = source_options(endpoint, stream, f"s3://{bucket}/store")
        options["checkpointEndpointUrl"] = moto_endpoint
        query = {"options": options, "out": str(out), "checkpoint": str(checkpoint)}
        job = submit(
            standalone_cluster,
            minimal_python,
            kinesis_zip,
            {"queries": [query]},
            tmp_path,
            {"spark.python.worker.reuse": "false"},
        )
        victim = kill_an_executor_mid_batch(standalone_cluster, proxy, checkpoint, job)
        _, log = finish(job, tmp_path)
    finally:
        proxy.stop()
    assert_lost_executor_rescheduled(log, victim)
    assert record_keys(committed_rows(out)) == expected_keys(sent)


def test_dynamodb_store_speculation_and_two_queries_sharing_the_table(
    standalone_cluster: Cluster,
    minimal_python: str,
    kinesis_zip: Path,
    kinesis: Any,
    moto_endpoint: str,
    tmp_path: Path,
) -> None:
    """Query "slow" runs first with speculation firing on its slowed shard; then query
    "killed" reads the same stream into the same DynamoDB table and loses an executor."""
    stream = f"deploy-{uuid.uuid4().hex[:8]}"
    shards, sent = filled_stream(kinesis, stream)
    table = f"ckpt-{uuid.uuid4().hex[:8]}"
    proxy = FaultProxy(moto_endpoint, delay_seconds=12.0)
    # Only the first read of shard 1: its task runs long, a speculative copy reads fast.
    proxy.inject("GetRecords", "delay", times=1, match=is_read_of(shards[1]))
    endpoint = proxy.start()
    try:
        options = source_options(endpoint, stream, f"dynamodb://{table}")
        options["checkpointEndpointUrl"] = moto_endpoint
        slow, killed = tmp_path / "slow", tmp_path / "killed"
        go = tmp_path / "go"
        queries = [
            {
                "options": options,
                "out": str(slow / "out"),
                "checkpoint": str(slow / "checkpoint"),
                "done": str(slow / "done"),
            },
            {
                "options": options,
                "out": str(killed / "out"),
                "checkpoint": str(killed / "checkpoint"),
                "after": str(go),
            },
        ]
        speculation = {
            "spark.speculation": "true",
            "spark.speculation.interval": "100ms",
            "spark.speculation.quantile": "0.5",
            "spark.speculation.multiplier": "1.5",
            "spark.speculation.minTaskRuntime": "2s",
        }
        job = submit(
            standalone_cluster,
            minimal_python,
            kinesis_zip,
            {"queries": queries},
            tmp_path,
            speculation,
        )

        def slow_done() -> bool:
            assert job.poll() is None, (tmp_path / "driver.log").read_text()[-5000:]
            return (slow / "done").exists()

        wait_for(slow_done, timeout_s=JOB_TIMEOUT_S, what='query "slow" to finish')
        log_of_slow = (tmp_path / "driver.log").read_text(errors="replace")
        proxy.delay_seconds = 6.0
        proxy.inject("GetRecords", "delay", times=2, match=is_read_of())
        go.write_text("go\n")
        victim = kill_an_executor_mid_batch(standalone_cluster, proxy, killed / "checkpoint", job)
        _, log = finish(job, tmp_path)
    finally:
        proxy.stop()

    # Speculation launched a second attempt of the slowed task, and that attempt won.
    assert "as speculatable" in log_of_slow, log_of_slow[-5000:]
    assert re.search(r"Killing attempt 0 for task .* as the attempt 1 succeeded", log_of_slow)
    assert record_keys(committed_rows(slow / "out")) == expected_keys(sent)

    assert_lost_executor_rescheduled(log, victim)
    assert record_keys(committed_rows(killed / "out")) == expected_keys(sent)

    # One table, two queries: each query's entries sit under its own key.
    ids = {query_id(slow / "checkpoint"), query_id(killed / "checkpoint")}
    assert len(ids) == 2
    items = boto3.client("dynamodb", region_name=REGION, endpoint_url=moto_endpoint).scan(
        TableName=table
    )["Items"]
    assert {item["streamQuery"]["S"] for item in items} == {f"{stream}/{q}" for q in ids}
