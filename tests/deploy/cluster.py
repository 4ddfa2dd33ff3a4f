"""Helpers for the deployment tests: a standalone cluster's processes, spark-submit of
tests/deploy/cluster_job.py, and the rows a file sink committed."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pyspark

ROOT = Path(__file__).resolve().parents[2]
SPARK_HOME = Path(pyspark.__file__).resolve().parent


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
    # Each worker's --work-dir: APP_ID/EXECUTOR_ID/stderr is an executor's stderr.
    work_dirs: list[Path] = field(default_factory=list)

    def executor_stderr(self) -> str:
        """Every executor's stderr so far, of every application, joined."""
        return "".join(
            path.read_text(errors="replace")
            for work in self.work_dirs
            for path in sorted(work.glob("app-*/*/stderr"))
        )

    def busy_executors(self) -> set[str]:
        """Ids of the newest application's executors whose log shows a task started and not
        yet ended (finished, killed or failed): where a kill makes Spark run a task again."""
        apps = sorted({p.name for work in self.work_dirs for p in work.glob("app-*")})
        busy: set[str] = set()
        for work in self.work_dirs if apps else []:
            for path in work.glob(f"{apps[-1]}/*/stderr"):
                log = path.read_text(errors="replace")
                started = set(re.findall(r"Running task \S+ in stage \S+ \(TID (\d+)\)", log))
                ended = set(
                    re.findall(
                        r"(?:Finished task|Executor killed task|Exception in task) \S+ in "
                        r"stage \S+ \(TID (\d+)\)",
                        log,
                    )
                )
                if started - ended:
                    busy.add(path.parent.name)
        return busy

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


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # a worker kills its executors on the way out
    for proc in procs:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


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
