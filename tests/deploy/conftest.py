"""Fixtures for deployment tests: the --py-files zip, a Python with only the documented
cluster minimum, and one standalone Spark cluster (a master, two workers) per session.

Everything listens on 127.0.0.1 and every process started here is stopped here.
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path

import pytest

from tests.deploy.cluster import ROOT, SPARK_HOME, Cluster, spark_env, stop
from tests.emulators.kinesis_local import free_port as _free_port
from tests.helpers import wait_for

# What docs/deploying.md says a cluster needs besides PySpark. boto3 and botocore are pinned
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
    """A virtual environment with only the documented minimum (no msgspec, no package)."""
    home = tmp_path_factory.mktemp("minimal-venv")
    venv.create(home, with_pip=True)
    python = str(home / "bin" / "python")
    subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *MINIMUM],
        check=True,
        capture_output=True,
    )
    return python


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
        yield Cluster(master_url, workers, [base / f"worker-{i}" for i in range(len(workers))])
    finally:
        stop(procs[::-1])
