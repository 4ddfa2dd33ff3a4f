"""Crash safety: SIGKILL a whole driver (Python and its JVM) in the middle of a batch.

The job runs in a subprocess (tests/crash_job.py) with its own JVM; the restart runs in
this session's SparkSession on the same checkpoint and store, as a new driver would.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from tests.helpers import (
    ROOT,
    create_stream,
    record_keys,
    run_until_idle,
    source_options,
    start_file_query,
    wait_for,
)

SHARDS = ["shardId-000000000000", "shardId-000000000001"]


def log_entries(directory: Path) -> int:
    """Batches in one of Spark's checkpoint logs (offsets/, commits/)."""
    if not directory.is_dir():
        return 0
    return sum(1 for p in directory.iterdir() if p.name.isdigit())


def group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes of a process group, from /proc."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(stat.parent.name))
    return members


def start_job(options: dict[str, str], out: Path, ckpt: Path, log: Path) -> subprocess.Popen[bytes]:
    path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path}
    with open(log, "ab") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "tests.crash_job", json.dumps(options), str(out), str(ckpt)],
            cwd=ROOT,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the JVM and workers die with it
        )


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()
    wait_for(lambda: not group_members(proc.pid), 30, "the killed job's JVM to exit")


def test_sigkill_in_the_middle_of_a_batch_then_restart_loses_and_duplicates_nothing(
    spark: Any, kinesis: Any, moto_endpoint: str, stream_name: str, tmp_path: Path
) -> None:
    create_stream(kinesis, stream_name, 2)
    # 36 records in the low shard, 24 in the high one: 6 per shard per batch.
    written = []
    for i in range(60):
        hash_key = str(3 * 2**126 if i % 5 < 2 else 1)  # the high or the low half
        resp = kinesis.put_record(
            StreamName=stream_name,
            PartitionKey=f"k{i}",
            ExplicitHashKey=hash_key,
            Data=f"rec-{i}".encode(),
        )
        written.append((resp["ShardId"], resp["SequenceNumber"], 0, f"rec-{i}".encode()))
    assert Counter(w[0] for w in written) == {SHARDS[0]: 36, SHARDS[1]: 24}
    out, ckpt, log = tmp_path / "out", tmp_path / "ckpt", tmp_path / "job.log"
    store = tmp_path / "store"
    # Slow, small batches: 6 records per shard, 2 per GetRecords call, 200 ms apart.
    slow = source_options(
        moto_endpoint,
        stream_name,
        str(store),
        maxRecordsPerShard="6",
        getRecordsLimit="2",
        fetchIntervalMs="200",
    )
    proc = start_job(slow, out, ckpt, log)
    try:

        def mid_batch() -> bool:
            """After the first batch, a shard recorded where its read of records ended, but
            the batch is not committed: a restart must replay exactly that range."""
            if proc.poll() is not None:
                raise AssertionError(f"the job ended early: {log.read_text()[-3000:]}")
            done = log_entries(ckpt / "commits")
            planned = log_entries(ckpt / "offsets")
            # Spark's batch k reads our batch k + 1: the store's batch number is `planned`.
            return 1 <= done < planned and any(
                json.loads(entry.read_text())["records"] > 0
                for entry in store.glob(f"*/*/{planned:012d}/*.json")
            )

        wait_for(mid_batch, 240, "a recorded end inside a batch after the first", poll_s=0.02)
    finally:
        kill_group(proc)
    committed = log_entries(ckpt / "commits")
    assert log_entries(ckpt / "offsets") > committed, "the kill did not land inside a batch"
    assert committed * 6 < 36, "the job had already read everything"

    # The same query again, here, with other caps: the batch cut short must replay its
    # range exactly, and the rest be read once.
    fast = {**slow, "maxRecordsPerShard": "25", "getRecordsLimit": "10", "fetchIntervalMs": "0"}
    run_until_idle(start_file_query(spark, fast, str(out), str(ckpt)))
    rows = spark.read.parquet(str(out)).collect()
    assert record_keys(rows) == sorted(written)
