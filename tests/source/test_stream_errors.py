"""A missing stream, a bad stream name or a region that is no region: the first error line
a user reads names the stream and the region, not PySpark's ``UnboundLocalError``."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from pyspark.errors import AnalysisException, StreamingQueryException

from tests.helpers import create_stream, source_options

# The first line of a traceback that names an exception (Spark's own first line does not).
_ERROR_LINE = re.compile(r"^\s*[\w.]*(Error|Exception): ")


def first_error_line(message: str) -> str:
    return next(line for line in message.splitlines() if _ERROR_LINE.match(line))


@pytest.mark.parametrize(
    ("change", "stream", "region"),
    [
        ({"streamName": "no-such-stream"}, "'no-such-stream'", "us-east-1"),
        ({"streamName": "a b"}, "'a b'", "us-east-1"),
        ({"streamName": "orders", "region": "mars-1"}, "'orders'", "mars-1"),
        (
            {"streamName": "", "streamARN": "arn:aws:kinesis:us-east-1:123456789012:stream/gone"},
            "'arn:aws:kinesis:us-east-1:123456789012:stream/gone'",
            "us-east-1",
        ),
    ],
)
def test_the_first_error_line_names_the_stream_and_the_region(
    spark: Any,
    moto_endpoint: str,
    tmp_path: Path,
    change: dict[str, str],
    stream: str,
    region: str,
) -> None:
    options = {**source_options(moto_endpoint, "x", str(tmp_path / "store")), **change}
    with pytest.raises(AnalysisException) as err:
        spark.readStream.format("kinesis").options(**options).load()
    message = str(err.value)
    line = first_error_line(message)
    assert stream in line and region in line, line
    assert "UnboundLocalError" not in message


def test_json_naming_a_shard_the_stream_does_not_have_fails_when_the_query_starts(
    spark: Any, kinesis: Any, moto_endpoint: str, stream_name: str, tmp_path: Path
) -> None:
    # Checked where the stream starts (a new query), not at every load(): a checkpointed
    # query restarts from its offsets even if a shard its JSON names has aged out since.
    create_stream(kinesis, stream_name, 1)
    start = {stream_name: {"shardId-000000000007": {"iteratorType": "TRIM_HORIZON"}}}
    options = source_options(
        moto_endpoint, stream_name, str(tmp_path / "store"), initialPosition=json.dumps(start)
    )
    query = (
        spark.readStream.format("kinesis")
        .options(**options)
        .load()
        .writeStream.format("noop")
        .option("checkpointLocation", str(tmp_path / "checkpoint"))
        .start()
    )
    with pytest.raises(StreamingQueryException) as err:
        query.awaitTermination(120)
    message = str(err.value)
    assert "initialPosition" in message and "'shardId-000000000007'" in message, message
    assert repr(stream_name) in message, message
    assert query.lastProgress is None  # no batch ran
