"""Bad sink input through Spark: each gets an error naming the column, row or option."""

from __future__ import annotations

from typing import Any

import pytest

from kinesis_source.limits import RECORD_MAX_BYTES
from tests.helpers import REGION, create_stream

pytestmark = pytest.mark.spark


def save(df: Any, endpoint: str, stream: str = "never-written", **extra: str) -> None:
    options = {"streamName": stream, "region": REGION, "endpointUrl": endpoint, **extra}
    df.write.format("kinesis").options(**options).mode("append").save()


def test_an_unknown_column_fails_before_any_task_naming_the_accepted_ones(
    spark: Any, moto_endpoint: str
) -> None:
    df = spark.createDataFrame([(b"x", "k", 1)], "data binary, partitionKey string, shard int")
    with pytest.raises(Exception) as info:
        save(df, moto_endpoint)
    message = str(info.value)
    assert "column 'shard' is not accepted by the kinesis sink" in message
    assert "data (binary or string, required), partitionKey (string" in message
    assert "explicitHashKey (string, optional)" in message


def test_a_null_partition_key_fails_the_task_naming_the_row(
    spark: Any, moto_endpoint: str, kinesis: Any, stream_name: str
) -> None:
    create_stream(kinesis, stream_name, 1)
    rows = [(b"a", "k1"), (b"b", "k2"), (b"c", None)]
    df = spark.createDataFrame(rows, "data binary, partitionKey string").coalesce(1)
    with pytest.raises(Exception) as info:
        save(df, moto_endpoint, stream_name)
    assert "row 2 of partition 0: column 'partitionKey' is null" in str(info.value)


def test_an_oversize_record_fails_the_task_naming_the_row_and_the_limit(
    spark: Any, moto_endpoint: str, kinesis: Any, stream_name: str
) -> None:
    create_stream(kinesis, stream_name, 1)
    rows = [("small", "k"), ("x" * RECORD_MAX_BYTES, "k")]
    df = spark.createDataFrame(rows, "data string, partitionKey string").coalesce(1)
    with pytest.raises(Exception) as info:
        save(df, moto_endpoint, stream_name)
    message = str(info.value)
    assert f"row 1 of partition 0: the record is {RECORD_MAX_BYTES + 1} bytes" in message
    assert f"the limit is maxRecordBytes={RECORD_MAX_BYTES}" in message


def test_sink_options_and_mode_are_checked_when_the_write_starts(
    spark: Any, moto_endpoint: str
) -> None:
    df = spark.createDataFrame([(b"x",)], "data binary")
    with pytest.raises(
        Exception,
        match="option 'checkpointStore': is only for reading; the options here are: streamName",
    ):
        save(df, moto_endpoint, checkpointStore="/tmp/x")
    with pytest.raises(Exception, match=r"option 'maxRecordBytes': got 10485761; expected an"):
        save(df, moto_endpoint, maxRecordBytes=str(10 * 1024 * 1024 + 1))
    with pytest.raises(Exception, match=r"only appends records to a stream: use mode\('append'\)"):
        df.write.format("kinesis").options(streamName="s", region=REGION).mode("overwrite").save()


def test_a_missing_stream_fails_at_save_and_at_start_on_the_driver(
    spark: Any, moto_endpoint: str, tmp_path: Any
) -> None:
    df = spark.createDataFrame([(b"x",)], "data binary")
    expected = r"Kinesis stream 'no-such-stream' in region us-east-1 does not exist"
    with pytest.raises(Exception, match=expected) as info:
        save(df, moto_endpoint, "no-such-stream")
    # Raised while Spark built the writer: no task ran.
    assert "Task" not in str(info.value) and "Stage" not in str(info.value)
    options = {"streamName": "no-such-stream", "region": REGION, "endpointUrl": moto_endpoint}
    stream = spark.readStream.format("rate").load().selectExpr("CAST(value AS STRING) AS data")
    with pytest.raises(Exception, match=expected):
        query = (
            stream.writeStream.format("kinesis")
            .options(**options)
            .option("checkpointLocation", str(tmp_path / "ckpt"))
            .start()
        )
        query.awaitTermination(60)
