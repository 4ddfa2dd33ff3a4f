"""Fixtures for deployment tests: the --py-files zip, a Python with only the documented
cluster minimum, and one standalone Spark cluster (a master, two workers) per session.

Everything listens on 127.0.0.1 and every process started here is stopped here.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import venv
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pyspark
import pytest

from tests.conftest import _free_port
from tests.helpers import wait_for

ROOT = Path(__file__).resolve().parents[2]
SPARK_HOME = Path(pyspark.__file__).resolve().parent

# What README "Deploying" says a cluster needs besides PySpark. boto3 and botocore are pinned
# to this suite's versions so that the cluster differs from the suite only in what it lacks.
MINIMUM = ["pyarrow", "protobuf", f"boto3=={version('boto3')}", f"botocore=={version('botocore')}"]


@pytest.fixture(scope="session")
def kinesis_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    subprocess.run(
        [str(ROOT / "scripts" / "package.sh"), "--no-wheel", "--dist", str(dist)],
        env={**env, "PYTHON": sys.executable},
        check=True,
        capture_output=True,
    )
    return dist / "kinesis_source.zip"


@pytest.fixture(scope="session")
def minimal_python(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A virtual environment with only the documented minimum (no orjson, no package)."""
    home = tmp_path_factory.mktemp("minimal-venv")
    venv.create(home, with_pip=True)
    python = str(home / "bin" / "python")
    subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *MINIMUM],
        check=True,
        capture_output=True,
    )
    return python


def spark_env(**extra: str) -> dict[str, str]:
    """The environment for Spark's launch scripts: nothing of this checkout on any path."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "SPARK_HOME")}
    env.update(SPARK_HOME=str(SPARK_HOME), SPARK_LOCAL_IP="127.0.0.1", PYTHONNOUSERSITE="1")
    env.update(extra)
    return env


@dataclass
class Cluster:
    master_url: str
    workers: list[subprocess.Popen[bytes]]

    def executors(self) -> dict[str, int]:
        """Executor id -> pid of each executor JVM the workers have running now."""
        found = {}
        worker_pids = {w.pid for w in self.workers}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
                if ppid not in worker_pids:
                    continue
                argv = (stat.parent / "cmdline").read_bytes().split(b"\0")
            except (OSError, IndexError, ValueError):
                continue  # the process ended meanwhile
            if b"org.apache.spark.executor.CoarseGrainedExecutorBackend" in argv:
                found[argv[argv.index(b"--executor-id") + 1].decode()] = int(stat.parent.name)
        return found


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # a worker kills its executors on the way out
    for proc in procs:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def standalone_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A standalone master and two 1-core workers, each in its own process and work dir.

    The second worker calls its host "localhost" (also 127.0.0.1): Spark never starts a
    speculative copy of a task on the host of the running attempt, and compares host names.
    """
    base = tmp_path_factory.mktemp("standalone")
    env = spark_env(SPARK_DAEMON_MEMORY="256m", SPARK_NO_DAEMONIZE="1")
    spark_class = str(SPARK_HOME / "bin" / "spark-class")
    port = _free_port()
    master_url = f"spark://127.0.0.1:{port}"
    procs: list[subprocess.Popen[bytes]] = []

    def start(name: str, *args: str) -> subprocess.Popen[bytes]:
        with open(base / f"{name}.log", "wb") as log:
            proc = subprocess.Popen(
                [spark_class, *args], env=env, cwd=base, stdout=log, stderr=subprocess.STDOUT
            )
        procs.append(proc)
        return proc

    try:
        start(
            "master",
            "org.apache.spark.deploy.master.Master",
            *("--host", "127.0.0.1", "--port", str(port), "--webui-port", str(_free_port())),
        )
        workers = []
        for index, host in enumerate(("127.0.0.1", "localhost")):
            work_dir = base / f"worker-{index}"
            work_dir.mkdir()
            workers.append(
                start(
                    f"worker-{index}",
                    "org.apache.spark.deploy.worker.Worker",
                    *("--host", host, "--cores", "1", "--memory", "768m"),
                    *("--webui-port", str(_free_port()), "--work-dir", str(work_dir)),
                    master_url,
                )
            )

        def registered() -> bool:
            for proc in procs:
                assert proc.poll() is None, (base / "master.log").read_text()[-3000:]
            return (base / "master.log").read_text().count("Registering worker") == 2

        wait_for(registered, timeout_s=120, what="two workers to register with the master")
        yield Cluster(master_url, workers)
    finally:
        _stop(procs[::-1])


def submit(
    cluster: Cluster,
    python: str,
    zip_path: Path,
    job: dict[str, Any],
    work: Path,
    conf: dict[str, str],
) -> subprocess.Popen[bytes]:
    """spark-submit tests/deploy/cluster_job.py JOB --py-files ZIP in client mode.

    The driver's Python and the executors' Python are ``python``; the driver's log goes to
    ``work/driver.log`` and the job's report to ``work/report.txt``.
    """
    settings = {
        "spark.cores.max": "2",
        "spark.executor.cores": "1",
        "spark.executor.memory": "512m",
        "spark.driver.memory": "512m",
        "spark.driver.host": "127.0.0.1",
        "spark.driver.bindAddress": "127.0.0.1",
        "spark.ui.enabled": "false",
        "spark.sql.shuffle.partitions": "2",
        # Wait for both executors, so a batch's two shard tasks run on different ones.
        "spark.scheduler.minRegisteredResourcesRatio": "1.0",
        "spark.scheduler.maxRegisteredResourcesWaitingTime": "120s",
        **conf,
    }
    args = [str(SPARK_HOME / "bin" / "spark-submit"), "--master", cluster.master_url]
    for key, value in settings.items():
        args += ["--conf", f"{key}={value}"]
    args += ["--py-files", str(zip_path), str(ROOT / "tests" / "deploy" / "cluster_job.py")]
    args.append(json.dumps(job))
    env = spark_env(PYSPARK_PYTHON=python, PYSPARK_DRIVER_PYTHON=python)
    with open(work / "report.txt", "wb") as out, open(work / "driver.log", "wb") as err:
        return subprocess.Popen(args, env=env, cwd=work, stdout=out, stderr=err)


def committed_rows(out: Path) -> list[dict[str, Any]]:
    """The rows of the files a file sink committed (its _spark_metadata log), as readers see."""
    files: list[str] = []
    for entry in sorted((out / "_spark_metadata").iterdir(), key=lambda p: p.name):
        if not entry.name.isdigit():
            continue
        lines = entry.read_text().splitlines()[1:]  # the first line is the log's version
        files += [json.loads(line)["path"] for line in lines if line.strip()]
    rows: list[dict[str, Any]] = []
    for path in files:
        rows += pq.read_table(path.removeprefix("file://")).to_pylist()
    return rows
