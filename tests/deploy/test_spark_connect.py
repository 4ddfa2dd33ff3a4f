"""Over Spark Connect: a client session registers the source and reads a stream to files.

The client runs in its own process (tests/deploy/connect_client.py): a Connect session
cannot share a JVM with the suite's classic session. The Connect server it starts runs
this interpreter, where the package is importable (DESIGN.md section 6).
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.cluster import committed_rows
from tests.helpers import create_stream, expected_keys, put, record_keys, source_options

pytestmark = pytest.mark.deploy

CLIENT = Path(__file__).resolve().parent / "connect_client.py"


def next_line(client: subprocess.Popen[bytes], log: Path, timeout_s: float = 240) -> bytes:
    """The client's next line on stdout; fail with its log if none comes in time."""
    assert client.stdout is not None
    ready, _, _ = select.select([client.stdout], [], [], timeout_s)
    assert ready, f"the client said nothing for {timeout_s}s: {log.read_text()[-3000:]}"
    return client.stdout.readline()


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
    with open(tmp_path / "client.log", "wb") as log:
        client = subprocess.Popen(
            [sys.executable, str(CLIENT), json.dumps(job)],
            env={**os.environ, "SPARK_LOCAL_IP": "127.0.0.1"},  # the server's web UI too
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
        )
    assert client.stdin is not None
    try:
        assert next_line(client, tmp_path / "client.log") == b"RUN 1\n"
        assert record_keys(committed_rows(out)) == expected_keys(first)

        more = put(kinesis, stream, [(f"key-{i % 13}", f"more-{i}".encode()) for i in range(80)])
        client.stdin.write(b"go\n")
        client.stdin.flush()
        assert next_line(client, tmp_path / "client.log") == b"RUN 2\n"
        assert client.wait(timeout=120) == 0
    finally:
        if client.poll() is None:
            client.kill()
            client.wait()
    # Every record once: the second run added exactly the records that arrived after the first.
    assert record_keys(committed_rows(out)) == expected_keys(first + more)
