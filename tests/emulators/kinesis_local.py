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
from botocore.config import Config

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


# Why a few attempts: the ports are picked free and handed to node, which binds them a second
# later; in between, another test worker's server or an outgoing connection (which draws from
# the same ephemeral range) can take one. Only that bind failure is retried, with fresh ports.
BIND_ATTEMPTS = 5


@contextlib.contextmanager
def running(log_dir: Path) -> Iterator[str]:
    """kinesis-local started, its endpoint URL; stopped on exit. Its log goes to ``log_dir``."""
    node = shutil.which("node")
    if node is None or not KINESIS_LOCAL_MAIN.exists():
        raise RuntimeError(INSTALL_HINT)
    for attempt in range(1, BIND_ATTEMPTS + 1):
        log_path = log_dir / f"server-{attempt}.log"
        proc, endpoint = _start(node, log_path)
        try:
            _wait_until_ready(proc, endpoint, log_path)
        except _PortTaken:
            _stop(proc)
            if attempt == BIND_ATTEMPTS:
                raise RuntimeError(
                    f"kinesis-local found its port taken {BIND_ATTEMPTS} times: "
                    f"{log_path.read_text()[-2000:]}"
                ) from None
            continue
        except BaseException:
            _stop(proc)
            raise
        try:
            yield endpoint
        finally:
            _stop(proc)
        return


class _PortTaken(Exception):
    pass


def _start(node: str, log_path: Path) -> tuple[subprocess.Popen[bytes], str]:
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
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [node, "--require", str(LOOPBACK_PRELOAD), str(KINESIS_LOCAL_MAIN)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    return proc, f"http://127.0.0.1:{plain}"


def _wait_until_ready(proc: subprocess.Popen[bytes], endpoint: str, log_path: Path) -> None:
    # Short timeouts: whoever else holds a taken port may accept and never answer, and the log
    # is only looked at between calls.
    quick = Config(connect_timeout=1, read_timeout=2, retries={"max_attempts": 1})
    client = boto3.client("kinesis", region_name=REGION, endpoint_url=endpoint, config=quick)

    def ready() -> bool:
        # A taken port is logged, but node does not always exit on it (the plain port's
        # failure leaves the process up, answering nothing).
        if "EADDRINUSE" in log_path.read_text():
            raise _PortTaken()
        if proc.poll() is not None:
            raise RuntimeError(f"kinesis-local exited: {log_path.read_text()[-2000:]}")
        try:
            client.list_streams()
        except Exception:
            return False
        return True

    wait_for(ready, timeout_s=60, what="kinesis-local to answer")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
