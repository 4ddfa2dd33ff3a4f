"""deregisterConsumerOnStop through Spark: the JVM ends the streaming source runner with
SIGTERM when the query stops; the reader's stop() runs then and deregisters the consumer
(kinesis_source/source/driver/stop_signal.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.helpers import (
    REGION,
    BatchCollector,
    create_stream,
    put,
    source_options,
    start_query,
    wait_for,
)

pytestmark = pytest.mark.spark


def test_stopping_the_query_deregisters_its_consumer(
    spark: Any, efo_server: Any, stream_name: str, tmp_path: Path
) -> None:
    server = efo_server()
    client = boto3.client("kinesis", region_name=REGION, endpoint_url=server.endpoint)
    create_stream(client, stream_name, 1)
    put(client, stream_name, [("k", b"one")])
    options = source_options(
        server.endpoint,
        stream_name,
        str(tmp_path / "store"),
        consumerMode="efo",
        consumerName="stop-me",
        deregisterConsumerOnStop="true",
    )
    sink = BatchCollector()
    query = start_query(spark, options, str(tmp_path / "ckpt"), sink)
    query.processAllAvailable()
    assert [bytes(r["data"]) for r in sink.rows()] == [b"one"]
    arn = client.describe_stream_summary(StreamName=stream_name)["StreamDescriptionSummary"][
        "StreamARN"
    ]

    def consumers() -> list[dict[str, Any]]:
        listed = client.list_stream_consumers(StreamARN=arn)["Consumers"]
        return [c for c in listed if c["ConsumerStatus"] != "DELETING"]

    assert [c["ConsumerName"] for c in consumers()] == ["stop-me"]
    query.stop()
    wait_for(lambda: not consumers(), timeout_s=30, what="the consumer to be deregistered")
