"""The --py-files zip alone runs a job under spark-submit; the wheel holds the package."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

from helpers import ROOT, create_stream, put


def test_zip_alone_runs_a_job_under_spark_submit(
    kinesis: Any, moto_endpoint: str, stream_name: str, tmp_path: Path
) -> None:
    env = {**os.environ, "PYTHON": sys.executable}
    env.pop("PYTHONPATH", None)
    subprocess.run(
        [str(ROOT / "scripts" / "package.sh"), "--dist", str(tmp_path)],
        check=True,
        env=env,
        capture_output=True,
    )
    archive = tmp_path / "kinesis_source.zip"
    names = set(zipfile.ZipFile(archive).namelist())
    package = {
        p.relative_to(ROOT).as_posix()
        for tree in ("kinesis_source", "pyspark_kinesis")
        for p in (ROOT / tree).rglob("*.py")
        if "__pycache__" not in p.parts
    }
    assert {
        "kinesis_source/stores/dynamodb.py",
        "kinesis_source/source/executor/shard_reader.py",
    } <= package
    assert package | {"aws_kinesis_agg/messages_pb2.py"} <= names
    assert not any("__pycache__" in n for n in names)
    (wheel,) = tmp_path.glob("kinesis_source-*.whl")
    assert "kinesis_source/stores/s3.py" in zipfile.ZipFile(wheel).namelist()

    create_stream(kinesis, stream_name, 2)
    sent = put(kinesis, stream_name, [(f"k{i}", f"zip-{i}".encode()) for i in range(7)])
    # register mode also runs the query again without a second stream: the driver's
    # streaming source runner logs that it was dropped, to the driver's stderr.
    dropped = f"{stream_name}-b"
    create_stream(kinesis, dropped, 1)
    dropped_sent = put(kinesis, dropped, [("k", b"dropped-0")])
    # register: the job calls kinesis_source.register, nothing else is set (the driver JVM's
    # streaming source runner must still find the zip). auto: no register call, the zip on
    # the driver JVM's PYTHONPATH, as docs/deploying.md says client mode needs for that.
    for mode in ("register", "auto"):
        done = subprocess.run(
            [
                str(ROOT / "scripts" / "smoke_zip.sh"),
                str(archive),
                moto_endpoint,
                f"{stream_name},{dropped}" if mode == "register" else stream_name,
                mode,
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr[-4000:]

        report = json.loads(done.stdout.strip().splitlines()[-1])
        read = sent + dropped_sent if mode == "register" else sent
        assert report["rows"] == sorted(r["data"].decode() for r in read)
        warning = (
            f"WARNING kinesis_source.source.stream_reader: stream {dropped!r} is in the "
            "checkpoint but no longer in the options"
        )
        # Once: by the streaming source runner of the second run, to the driver's stderr.
        assert done.stderr.count(warning) == (1 if mode == "register" else 0), done.stderr[-4000:]
        for side in ("driver", "executor"):
            assert {
                "kinesis_source.source.executor.shard_reader",
                "kinesis_source.stores.dynamodb",
            } <= set(report[side])
            assert all("kinesis_source.zip/" in path for path in report[side].values())
