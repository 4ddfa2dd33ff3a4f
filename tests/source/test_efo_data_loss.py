"""failOnDataLoss under consumerMode=efo, through Spark: kinesis-local behind the
SubscribeToShard test double (tests/emulators/efo_server.py), which answers as AWS does for a
shard that is gone (ResourceNotFoundException) and for a position older than the trim horizon
(InvalidArgumentException). As with polling (tests/source/test_faults.py): by default the
query stops with an error naming the shard and the option; with failOnDataLoss=false it goes
on from the oldest record still there, and a gone shard counts as ended.

The losses happen between two runs of a query while the driver still lists the shard, so it
is the executor's subscription that meets them: the double first ends the subscriptions the
first run left open in its Python worker, which then subscribes again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pyspark.errors import StreamingQueryException

from tests.helpers import (
    BatchCollector,
    create_stream,
    expected_keys,
    put,
    record_keys,
    start_query,
)
from tests.source.test_efo_read import _client, _efo_options
from tests.source.test_faults import read_all


def _first_run(
    spark: Any, server: Any, stream: str, tmp_path: Path, shards: int, **extra: str
) -> tuple[Any, list[str], dict[str, str]]:
    """A stream read to its end once: the positions the second run starts from."""
    client = _client(server)
    shard_ids = create_stream(client, stream, shards)
    first = put(client, stream, [(f"k{i}", f"a{i}".encode()) for i in range(10)])
    options = _efo_options(server, stream, tmp_path, **extra)
    assert record_keys(read_all(spark, options, tmp_path).rows()) == expected_keys(first)
    return client, shard_ids, options


def _failure(spark: Any, options: dict[str, str], tmp_path: Path) -> str:
    query = start_query(spark, options, str(tmp_path / "ckpt"), BatchCollector())
    with pytest.raises(StreamingQueryException) as err:
        query.awaitTermination(180)
    return str(err.value)


def test_a_shard_gone_at_subscription_stops_the_query_by_default(
    spark: Any, efo_server: Any, stream_name: str, tmp_path: Path
) -> None:
    server = efo_server(takeover_seconds=0.2)
    client, (_, gone), options = _first_run(spark, server, stream_name, tmp_path, 2)
    server.remove_shard(gone)
    put(client, stream_name, [(f"k{i}", f"b{i}".encode()) for i in range(10)])
    message = _failure(spark, options, tmp_path)
    assert f"shard {gone} is no longer in the stream" in message
    assert "SubscribeToShard: ResourceNotFoundException" in message
    assert "failOnDataLoss=false" in message


def test_a_shard_gone_at_subscription_counts_as_ended_with_fail_on_data_loss_false(
    spark: Any, efo_server: Any, stream_name: str, tmp_path: Path
) -> None:
    server = efo_server(takeover_seconds=0.2)
    client, (_, gone), options = _first_run(
        spark, server, stream_name, tmp_path, 2, failOnDataLoss="false"
    )
    server.remove_shard(gone)
    second = put(client, stream_name, [(f"k{i}", f"b{i}".encode()) for i in range(10)])
    sink = read_all(spark, options, tmp_path)
    kept = [p for p in second if p["shardId"] != gone]
    assert kept and record_keys(sink.rows()) == expected_keys(kept)


def test_a_position_older_than_the_trim_horizon_stops_the_query_by_default(
    spark: Any, efo_server: Any, stream_name: str, tmp_path: Path
) -> None:
    server = efo_server(takeover_seconds=0.2)
    client, (shard,), options = _first_run(spark, server, stream_name, tmp_path, 1)
    server.end_subscriptions(shard)  # none may take the records the retention will pass
    second = put(client, stream_name, [(f"k{i}", f"b{i}".encode()) for i in range(10)])
    server.trim(shard, second[3]["sequenceNumber"])
    message = _failure(spark, options, tmp_path)
    assert f"shard {shard}: its position AFTER_SEQUENCE_NUMBER(" in message
    assert "is older than the stream's trim horizon" in message
    assert "SubscribeToShard: InvalidArgumentException" in message
    assert "failOnDataLoss=false" in message


def test_a_trimmed_position_goes_on_from_the_oldest_record_with_fail_on_data_loss_false(
    spark: Any, efo_server: Any, stream_name: str, tmp_path: Path
) -> None:
    server = efo_server(takeover_seconds=0.2)
    client, (shard,), options = _first_run(
        spark, server, stream_name, tmp_path, 1, failOnDataLoss="false"
    )
    server.end_subscriptions(shard)  # none may take the records the retention will pass
    second = put(client, stream_name, [(f"k{i}", f"b{i}".encode()) for i in range(10)])
    server.trim(shard, second[3]["sequenceNumber"])
    sink = read_all(spark, options, tmp_path)
    # The three records the retention passed are lost (with a warning); the rest once.
    assert record_keys(sink.rows()) == expected_keys(second[3:])
