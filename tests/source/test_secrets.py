"""No secret option value reaches a file a query writes, its logs, its plan or its progress."""

from __future__ import annotations

import json
import logging
import uuid
from pathlib import Path
from typing import Any

import pytest
from helpers import create_stream, put, source_options, wait_for

from kinesis_source.options import SECRET_OPTIONS
from kinesis_source.source.options import parse_options
from kinesis_source.source.stream_reader import KinesisStreamReader

pytestmark = pytest.mark.spark


def _secret_options(moto_endpoint: str, stream: str, store: str) -> dict[str, str]:
    # moto accepts any keys; these values exist only to be searched for afterwards.
    marker = uuid.uuid4().hex
    return source_options(
        moto_endpoint,
        stream,
        store,
        awsAccessKeyId="AKIDSECRETSCAN",
        awsSecretKey=f"secretkey{marker}",
        awsSessionToken=f"sessiontoken{marker}",
    )


def _files_text(root: Path) -> str:
    return "\n".join(
        p.read_bytes().decode("utf-8", "replace") for p in sorted(root.rglob("*")) if p.is_file()
    )


def test_no_secret_in_checkpoint_store_logs_plan_or_progress(
    spark: Any,
    kinesis: Any,
    moto_endpoint: str,
    stream_name: str,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    create_stream(kinesis, stream_name, 2)
    put(kinesis, stream_name, [(f"k{i}", f"v{i}".encode()) for i in range(6)])
    options = _secret_options(moto_endpoint, stream_name, str(tmp_path / "store"))
    secrets = [options[name] for name in SECRET_OPTIONS]

    # Driver- and executor-side code paths in this process, logging everything to a file.
    log_file = tmp_path / "logs" / "kinesis_source.log"
    log_file.parent.mkdir()
    handler = logging.FileHandler(log_file)
    logger = logging.getLogger("kinesis_source")
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.DEBUG)
    try:
        reader = KinesisStreamReader(parse_options({k.lower(): v for k, v in options.items()}))
        start = reader.initialOffset()
        end = reader.latestOffset(start, reader.getDefaultReadLimit())
        rows = sum(b.num_rows for p in reader.partitions(start, end) for b in reader.read(p))
        assert rows == 6
        print(repr(reader.opts), json.dumps(end))
    finally:
        logger.removeHandler(handler)
        handler.close()
        logger.setLevel(old_level)

    # The same options through Spark, writing a file sink and a checkpoint.
    df = spark.readStream.format("kinesis").options(**options).load()
    df.explain(True)
    query = (
        df.selectExpr("CAST(data AS STRING) AS value")
        .writeStream.format("json")
        .option("path", str(tmp_path / "sink"))
        .option("checkpointLocation", str(tmp_path / "checkpoint"))
        .start()
    )
    try:
        query.processAllAvailable()
        wait_for(lambda: query.lastProgress is not None, what="a progress report")
        query.explain(True)
        progress = str(query.recentProgress)
    finally:
        query.stop()
    captured = capfd.readouterr()

    written = _files_text(tmp_path)
    assert "sessiontoken" not in written.replace(options["awsSessionToken"], "")  # sanity
    assert '"v": 2' in written or '"v":2' in written  # offsets were written and are scanned
    for secret in secrets:
        assert secret not in written
        assert secret not in captured.out
        assert secret not in captured.err
        assert secret not in progress


def test_no_secret_in_sink_logs_errors_plan_progress_or_checkpoint(
    spark: Any,
    kinesis: Any,
    moto_endpoint: str,
    stream_name: str,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    import pyarrow as pa
    from pyspark.sql.types import StructType

    from kinesis_source.sink.task import write_partition
    from kinesis_source.sink.writer import sink_plan

    create_stream(kinesis, stream_name, 1)
    marker = uuid.uuid4().hex
    options = {
        "streamName": stream_name,
        "region": "us-east-1",
        "endpointUrl": moto_endpoint,
        "awsAccessKeyId": "AKIDSECRETSCAN",
        "awsSecretKey": f"secretkey{marker}",
        "awsSessionToken": f"sessiontoken{marker}",
        "aggregate": "true",
    }
    secrets = [options[name] for name in SECRET_OPTIONS]
    schema = StructType.fromDDL("data binary, partitionKey string")

    log_file = tmp_path / "logs" / "kinesis_source.log"
    log_file.parent.mkdir()
    handler = logging.FileHandler(log_file)
    logger = logging.getLogger("kinesis_source")
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.DEBUG)
    errors = []
    try:
        plan = sink_plan({k.lower(): v for k, v in options.items()}, schema, False)
        batch = pa.RecordBatch.from_pylist(
            [{"data": b"v%d" % i, "partitionKey": f"k{i}"} for i in range(5)],
            schema=pa.schema([("data", pa.binary()), ("partitionKey", pa.string())]),
        )
        assert write_partition(plan, [batch], 0).records == 5
        print(repr(plan))
        for bad in ({"streamname": "missing-stream"}, {"maxrecordbytes": "x"}):
            try:
                bad_plan = sink_plan({**plan_options(options), **bad}, schema, False)
                write_partition(bad_plan, [batch], 0)
            except Exception as exc:
                errors.append(f"{exc!r} {exc}")
    finally:
        logger.removeHandler(handler)
        handler.close()
        logger.setLevel(old_level)
    assert len(errors) == 2

    # Through Spark: a batch write, then a streaming query from JSON files.
    df = spark.createDataFrame([(b"x", "k")], "data binary, partitionKey string")
    df.write.format("kinesis").options(**options).mode("append").save()
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "part.json").write_text('{"data": "a", "partitionKey": "k"}\n')
    query = (
        spark.readStream.schema("data string, partitionKey string")
        .json(str(tmp_path / "in"))
        .writeStream.format("kinesis")
        .options(**options)
        .option("checkpointLocation", str(tmp_path / "checkpoint"))
        .start()
    )
    try:
        query.processAllAvailable()
        query.explain(True)
        progress = str(query.recentProgress)
    finally:
        query.stop()
    captured = capfd.readouterr()

    written = _files_text(tmp_path)
    assert "PutRecords" in written  # the debug log was written and is scanned
    assert (tmp_path / "checkpoint" / "commits" / "0").exists()  # the query's files are scanned
    for secret in secrets:
        for text in (written, captured.out, captured.err, progress, *errors):
            assert secret not in text


def plan_options(options: dict[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in options.items()}
