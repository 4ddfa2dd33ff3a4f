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
import pytest

from tests.deploy.cluster import Cluster, committed_rows, submit
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

pytestmark = pytest.mark.deploy

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
    """Wait until batch 0 is planned and a delayed shard read is under way, kill -9 the JVM
    of an executor running a task (each shard's first read is delayed, so its task is in
    that read; the other shard's task may not have started yet, Spark places it seconds
    later at times), and check that the batch had not been committed when the kill landed."""
    planned, committed = checkpoint / "offsets" / "0", checkpoint / "commits" / "0"

    def reading() -> bool:
        assert job.poll() is None, "the job ended before its batch was read"
        return (
            planned.exists()
            and proxy.in_flight["GetRecords delayed"] >= 1
            and bool(cluster.busy_executors() & cluster.executors().keys())
        )

    wait_for(reading, timeout_s=JOB_TIMEOUT_S, what="a shard read of batch 0")
    executors = cluster.executors()
    assert len(executors) == 2, executors
    victim = min(cluster.busy_executors() & executors.keys())
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
        assert report[side]["msgspec"] is False, report  # the documented minimum only
    return report, log


def assert_lost_executor_rescheduled(log: str, victim: str) -> None:
    # A task that was running on the killed executor failed with it and ran again.
    assert re.search(rf"Lost executor {victim}\b", log), "Spark did not see the kill"
    assert re.search(rf"ExecutorLostFailure \(executor {victim} exited", log), (
        "no task was running on the killed executor"
    )


def query_id(checkpoint: Path) -> str:
    return str(json.loads((checkpoint / "offsets" / "0").read_text().splitlines()[-1])["query"])


# Kills an executor while a task waits on it: beside other workers' Spark sessions the
# scheduler may have moved the task before the kill, so it runs alone (scripts/test.sh).
@pytest.mark.solo
def test_zip_on_the_minimum_survives_lost_executors_and_speculation(
    standalone_cluster: Cluster,
    minimal_python: str,
    kinesis_zip: Path,
    kinesis: Any,
    moto_endpoint: str,
    tmp_path: Path,
) -> None:
    """One job (a cluster job costs a minute to start here), three queries on one stream,
    all with speculation on and Python worker reuse off:

    1. "slow", DynamoDB store: speculation starts a copy of the task of a slowed shard;
    2. "s3", S3 store: an executor is killed in the middle of its batch;
    3. "ddb", the same DynamoDB table as "slow": an executor is killed mid-batch again.
    """
    stream = f"deploy-{uuid.uuid4().hex[:8]}"
    shards, sent = filled_stream(kinesis, stream)
    bucket, table = f"ckpt-{uuid.uuid4().hex[:8]}", f"ckpt-{uuid.uuid4().hex[:8]}"
    boto3.client("s3", region_name=REGION, endpoint_url=moto_endpoint).create_bucket(Bucket=bucket)
    # Only the first read of shard 1: its task runs 20 s longer than the other (under the
    # 30 s read timeout); a speculative copy's read is not delayed.
    proxy = FaultProxy(moto_endpoint, delay_seconds=20.0)
    proxy.inject("GetRecords", "delay", times=1, match=is_read_of(shards[1]))
    # And shard 0's first read is throttled once: the executor retries it and logs a warning.
    proxy.inject("GetRecords", "throttle", times=1, match=is_read_of(shards[0]))
    endpoint = proxy.start()
    dirs = {name: tmp_path / name for name in ("slow", "s3", "ddb")}
    for folder in dirs.values():
        folder.mkdir()

    def query(name: str, store: str) -> dict[str, Any]:
        options = source_options(endpoint, stream, store, checkpointEndpointUrl=moto_endpoint)
        return {
            "options": options,
            "out": str(dirs[name] / "out"),
            "checkpoint": str(dirs[name] / "checkpoint"),
            "after": str(dirs[name] / "go") if name != "slow" else "",
            "done": str(dirs[name] / "done"),
        }

    conf = {
        "spark.python.worker.reuse": "false",
        "spark.speculation": "true",
        "spark.speculation.interval": "100ms",
        "spark.speculation.quantile": "0.5",
        "spark.speculation.multiplier": "1.2",
        "spark.speculation.minTaskRuntime": "2s",
    }
    queries = [
        query("slow", f"dynamodb://{table}"),
        query("s3", f"s3://{bucket}/store"),
        query("ddb", f"dynamodb://{table}"),
    ]
    driver_log = tmp_path / "driver.log"
    try:
        job = submit(
            standalone_cluster, minimal_python, kinesis_zip, {"queries": queries}, tmp_path, conf
        )

        def done(name: str) -> bool:
            assert job.poll() is None, driver_log.read_text(errors="replace")[-5000:]
            return (dirs[name] / "done").exists()

        wait_for(lambda: done("slow"), timeout_s=JOB_TIMEOUT_S, what='query "slow"')
        log_of_slow = driver_log.read_text(errors="replace")

        victims = []
        proxy.delay_seconds = 6.0
        for name in ("s3", "ddb"):
            # Both executors up again (one was just replaced), so both shard reads run.
            wait_for(
                lambda: (
                    driver_log.read_text(errors="replace").count("Registered executor")
                    >= 2 + len(victims)
                ),
                timeout_s=JOB_TIMEOUT_S,
                what="a replacement executor",
            )
            # A read delayed earlier (the losing attempt's) must not pass for this query's.
            wait_for(
                lambda: proxy.in_flight["GetRecords delayed"] == 0,
                timeout_s=30,
                what="earlier delayed reads to end",
            )
            for shard in shards:  # each task's first read: both tasks run >= 6 s
                proxy.inject("GetRecords", "delay", times=1, match=is_read_of(shard))
            (dirs[name] / "go").write_text("go\n")
            checkpoint = dirs[name] / "checkpoint"
            victims.append(kill_an_executor_mid_batch(standalone_cluster, proxy, checkpoint, job))
            if name == "s3":
                wait_for(lambda: done("s3"), timeout_s=JOB_TIMEOUT_S, what='query "s3"')
        _, log = finish(job, tmp_path)
    finally:
        proxy.stop()

    # Speculation launched a second attempt of the slowed task while the first still ran;
    # when one of them succeeded, Spark killed the other.
    marked = re.search(r"Marking task (\d+) in stage (\S+) .* as speculatable", log_of_slow)
    assert marked, log_of_slow[-5000:]
    task, stage = marked.group(1), re.escape(marked.group(2))
    assert re.search(rf"Starting task {task}\.1 in stage {stage} ", log_of_slow)
    assert re.search(rf"Killing attempt [01] for task {task}\.[01] in stage {stage} ", log_of_slow)
    for victim in victims:
        assert_lost_executor_rescheduled(log, victim)
    for name in ("slow", "s3", "ddb"):
        assert record_keys(committed_rows(dirs[name] / "out")) == expected_keys(sent), name

    # The throttling warning reached an executor's stderr (its log in the worker's work dir).
    throttled = re.findall(
        rf"WARNING kinesis_source\.aws\.retry: GetRecords on stream '{stream}' shard "
        rf"{shards[0]} throttled \(ProvisionedThroughputExceededException",
        standalone_cluster.executor_stderr(),
    )
    assert len(throttled) == 1, standalone_cluster.executor_stderr()[-3000:]

    # One DynamoDB table, two queries: each query's entries sit under its own key.
    ids = {query_id(dirs["slow"] / "checkpoint"), query_id(dirs["ddb"] / "checkpoint")}
    assert len(ids) == 2
    dynamodb = boto3.client("dynamodb", region_name=REGION, endpoint_url=moto_endpoint)
    items = dynamodb.scan(TableName=table)["Items"]
    assert {item["streamQuery"]["S"] for item in items} == {f"{stream}/{q}" for q in ids}
