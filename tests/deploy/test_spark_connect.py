"""Over Spark Connect: a client session registers the source, reads a stream to files, then
reads it in batch (two actions on one DataFrame, and a SQL view).

The server (tests/deploy/connect_server.py) and the client (tests/deploy/connect_client.py)
run in processes of their own: a Connect session cannot share a JVM with the suite's
classic session, and a client with no JVM of its own is what a notebook on Spark Connect
is. The server runs this interpreter, where the package is importable (docs/design.md
section 6); the client registers the source through Connect.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.cluster import committed_rows
from tests.emulators.kinesis_local import free_port
from tests.helpers import create_stream, expected_keys, put, record_keys, source_options

pytestmark = pytest.mark.deploy

CLIENT = Path(__file__).resolve().parent / "connect_client.py"
SERVER = Path(__file__).resolve().parent / "connect_server.py"


def next_line(proc: subprocess.Popen[bytes], log: Path, timeout_s: float = 240) -> bytes:
    """The process's next line on stdout; fail with its log if none comes in time."""
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout_s)
    assert ready, f"{log.name}: nothing for {timeout_s}s: {log.read_text()[-3000:]}"
    return proc.stdout.readline()


def start(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as err:
        return subprocess.Popen(
            [sys.executable, *args],
            env={**os.environ, "SPARK_LOCAL_IP": "127.0.0.1"},  # the server's driver too
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=err,
        )


def stop(proc: subprocess.Popen[bytes], grace_s: float) -> None:
    """Close its stdin (the server then stops its session); kill it if it lingers."""
    assert proc.stdin is not None
    proc.stdin.close()
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def test_connect_client_reads_new_records_only_on_the_second_run(
    kinesis: Any, moto_endpoint: str, tmp_path: Path
) -> None:
    stream = f"connect-{uuid.uuid4().hex[:8]}"
    create_stream(kinesis, stream, 2)
    first = put(kinesis, stream, [(f"key-{i % 13}", f"first-{i}".encode()) for i in range(120)])
    out = tmp_path / "out"
    job = {
        "options": source_options(moto_endpoint, stream, str(tmp_path / "store")),
        "out": str(out),
        "checkpoint": str(tmp_path / "checkpoint"),
    }
    port = free_port()
    job["remote"] = f"sc://127.0.0.1:{port}"
    server = start([str(SERVER), str(port)], tmp_path / "server.log")
    try:
        assert next_line(server, tmp_path / "server.log") == b"READY\n"
        client = start([str(CLIENT), json.dumps(job)], tmp_path / "client.log")
        assert client.stdin is not None
        try:
            assert next_line(client, tmp_path / "client.log") == b"RUN 1\n"
            assert record_keys(committed_rows(out)) == expected_keys(first)

            more = put(
                kinesis, stream, [(f"key-{i % 13}", f"more-{i}".encode()) for i in range(80)]
            )
            client.stdin.write(b"go\n")
            client.stdin.flush()
            assert next_line(client, tmp_path / "client.log") == b"RUN 2\n"

            # A batch read over Connect; more records arrive between its two actions.
            assert next_line(client, tmp_path / "client.log") == b"COUNT 200\n"
            late = put(kinesis, stream, [(f"key-{i % 13}", b"late") for i in range(30)])
            client.stdin.write(b"go\n")
            client.stdin.flush()
            rows = next_line(client, tmp_path / "client.log").decode()
            view = next_line(client, tmp_path / "client.log").decode()
            assert client.wait(timeout=120) == 0
        finally:
            stop(client, grace_s=0)
    finally:
        stop(server, grace_s=60)
    # Every record once: the second run added exactly the records that arrived after the first.
    assert record_keys(committed_rows(out)) == expected_keys(first + more)
    # The batch read's second action saw the rows of its first: its ends were fixed then.
    assert rows.startswith("ROWS ")
    assert json.loads(rows[5:]) == sorted([p["shardId"], p["sequenceNumber"]] for p in first + more)
    # A SQL view planned later holds the late records too.
    counts = Counter(p["partitionKey"] for p in first + more + late)
    assert view == f"VIEW {json.dumps(dict(sorted(counts.items())))}\n"
