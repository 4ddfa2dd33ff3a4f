"""kinesis-mock (npm kinesis-local 0.6.2) on 127.0.0.1, for the tests' session fixture and for
the bench: AWS-like resharding, ChildShards, consumers; bound to the loopback address by a
preload script (loopback.js)."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import boto3

from tests.helpers import REGION, wait_for

ROOT = Path(__file__).resolve().parent.parent.parent
KINESIS_LOCAL_MAIN = ROOT / ".emulators" / "node_modules" / "kinesis-local" / "main.js"
LOOPBACK_PRELOAD = Path(__file__).resolve().parent / "loopback.js"
INSTALL_HINT = (
    "kinesis-local is not installed: run `bash scripts/test.sh` (it runs "
    "`npm install --prefix .emulators kinesis-local@0.6.2`)"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def installed() -> bool:
    return shutil.which("node") is not None and KINESIS_LOCAL_MAIN.exists()


@contextlib.contextmanager
def running(log_dir: Path) -> Iterator[str]:
    """kinesis-local started, its endpoint URL; stopped on exit. Its log goes to ``log_dir``."""
    node = shutil.which("node")
    if node is None or not KINESIS_LOCAL_MAIN.exists():
        raise RuntimeError(INSTALL_HINT)
    plain, tls = free_port(), free_port()
    env = {
        **os.environ,
        "KINESIS_MOCK_PLAIN_PORT": str(plain),
        "KINESIS_MOCK_TLS_PORT": str(tls),
        "KINESIS_MOCK_CERT_PATH": str(KINESIS_LOCAL_MAIN.parent / "server.json"),
        "SHARD_LIMIT": "200",
        "CREATE_STREAM_DURATION": "10ms",
        "DELETE_STREAM_DURATION": "10ms",
        "UPDATE_SHARD_COUNT_DURATION": "10ms",
        "SPLIT_SHARD_DURATION": "10ms",
        "MERGE_SHARDS_DURATION": "10ms",
        "LOG_LEVEL": "WARN",
    }
    log_path = log_dir / "server.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [node, "--require", str(LOOPBACK_PRELOAD), str(KINESIS_LOCAL_MAIN)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    endpoint = f"http://127.0.0.1:{plain}"
    try:
        client = boto3.client("kinesis", region_name=REGION, endpoint_url=endpoint)

        def ready() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"kinesis-local exited: {log_path.read_text()[-2000:]}")
            try:
                client.list_streams()
            except Exception:
                return False
            return True

        wait_for(ready, timeout_s=60, what="kinesis-local to answer")
        yield endpoint
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
