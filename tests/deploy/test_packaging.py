"""How users load the source: auto-registration by module name, and the main example."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from importlib import metadata
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

import pytest

from tests.helpers import ROOT

pytestmark = pytest.mark.lowest


def _editable_install_of_this_checkout() -> bool:
    """Whether this interpreter has the package from ``pip install -e`` of this checkout."""
    try:
        dist = metadata.distribution("kinesis-source")
    except metadata.PackageNotFoundError:
        return False
    direct_url = json.loads(dist.read_text("direct_url.json") or "{}")
    assert direct_url.get("dir_info", {}).get("editable"), f"not editable: {direct_url}"
    assert Path(url2pathname(urlparse(direct_url["url"]).path)).resolve() == ROOT
    return True


def test_format_kinesis_works_without_register_after_pip_install_e(
    moto_endpoint: str, tmp_path: Path
) -> None:
    # A fresh Spark (not the test session, which called register()) that finds the package
    # only as `pip install -e .` (default editable mode, as scripts/test.sh installs it)
    # left it: no PYTHONPATH, another working directory. PySpark finds the top-level module
    # pyspark_kinesis and registers its DefaultSource by itself.
    if not _editable_install_of_this_checkout():
        pytest.skip("the package is not pip-installed here; scripts/test.sh installs it")
    script = textwrap.dedent(
        f"""
        import os, sys, boto3
        os.environ["PYSPARK_PYTHON"] = sys.executable
        from pyspark.sql import SparkSession
        client = boto3.client("kinesis", region_name="us-east-1", endpoint_url={moto_endpoint!r})
        client.create_stream(StreamName="auto-reg", ShardCount=1)
        client.put_record(StreamName="auto-reg", PartitionKey="k", Data=b"hello")
        spark = (SparkSession.builder.master("local[1]")
                 .config("spark.ui.enabled", "false").getOrCreate())
        df = (spark.readStream.format("kinesis")
              .option("streamName", "auto-reg").option("region", "us-east-1")
              .option("endpointUrl", {moto_endpoint!r})
              .option("initialPosition", "trim_horizon")
              .option("checkpointStore", {str(tmp_path / "store")!r}).load())
        q = (df.writeStream.format("memory").queryName("auto")
             .option("checkpointLocation", {str(tmp_path / "ckpt")!r}).start())
        q.processAllAvailable(); q.stop()
        print("ROWS", [bytes(r.data) for r in spark.sql("select data from auto").collect()])
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYSPARK_PYTHON"] = sys.executable
    done = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "ROWS [b'hello']" in done.stdout


def test_the_word_count_example_counts_what_its_producer_wrote(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples" / "word_count.py"),
            "--duration",
            "6",
            "--lines-per-sec",
            "20",
            "--trigger-ms",
            "1000",
            "--checkpoint",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert "OK: the counts of" in done.stdout
    assert " batch " in done.stdout
