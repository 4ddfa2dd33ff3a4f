"""Faults no emulator produces, injected by a proxy on 127.0.0.1 in front of moto.

Throttling storms, 5xx answers, dropped connections, reads that never answer, expired
iterators, shards that vanish and positions past the retention: nothing is lost, nothing
is read twice, retries are what the settings say, and data loss is loud unless told not.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from pyspark.errors import StreamingQueryException

from kinesis_source.errors import KinesisReadError
from kinesis_source.source.executor.get_records import GetRecordsTransport
from kinesis_source.source.options import parse_options
from kinesis_source.source.positions import Position
from tests.fault_proxy import reads
from tests.helpers import (
    BatchCollector,
    assert_shard_order,
    create_stream,
    expected_keys,
    put,
    record_keys,
    run_until_idle,
    source_options,
    start_query,
)

FAST_RETRIES = {"retryBaseDelayMs": "5", "retryMaxDelayMs": "20"}


def read_all(spark: Any, options: dict[str, str], tmp_path: Path) -> BatchCollector:
    sink = BatchCollector()
    run_until_idle(start_query(spark, options, str(tmp_path / "ckpt"), sink))
    return sink


def test_a_throttling_storm_is_ridden_out_with_the_configured_retries(
    spark: Any, kinesis: Any, proxy: Any, stream_name: str, tmp_path: Path
) -> None:
    create_stream(kinesis, stream_name, 1)
    puts = put(kinesis, stream_name, ((f"k{i}", f"r{i}".encode()) for i in range(20)))
    proxy.inject("GetRecords", "throttle", 4, match=reads)
    proxy.inject("GetRecords", "limit", 2, skip=1, match=reads)
    options = source_options(
        proxy.endpoint,
        stream_name,
        str(tmp_path / "store"),
        getRecordsLimit="5",
        maxRetries="6",
        **FAST_RETRIES,
    )
    sink = read_all(spark, options, tmp_path)
    assert record_keys(sink.rows()) == expected_keys(puts)
    assert_shard_order(sink.rows())
    assert proxy.faults["GetRecords"] == 6


def test_throttling_beyond_max_retries_fails_naming_the_shard_and_the_error(
    spark: Any, kinesis: Any, proxy: Any, stream_name: str, tmp_path: Path
) -> None:
    shard = create_stream(kinesis, stream_name, 1)[0]
    put(kinesis, stream_name, [("k", b"v")])
    proxy.inject("GetRecords", "throttle", 1000, match=reads)
    options = source_options(
        proxy.endpoint, stream_name, str(tmp_path / "store"), maxRetries="2", **FAST_RETRIES
    )
    query = start_query(spark, options, str(tmp_path / "ckpt"), BatchCollector())
    with pytest.raises(StreamingQueryException) as err:
        query.awaitTermination(180)
    message = str(err.value)
    assert f"GetRecords on stream '{stream_name}' shard {shard} failed after 3 attempts" in message
    assert "ProvisionedThroughputExceededException" in message
    assert proxy.faults["GetRecords"] == 3  # the first try and maxRetries=2 retries


def test_5xx_answers_and_dropped_connections_are_retried(
    spark: Any, kinesis: Any, proxy: Any, stream_name: str, tmp_path: Path
) -> None:
    create_stream(kinesis, stream_name, 2)
    puts = put(kinesis, stream_name, ((f"k{i}", f"r{i}".encode()) for i in range(30)))
    proxy.inject("GetShardIterator", "5xx", 2)
    proxy.inject("GetShardIterator", "503", 1)
    proxy.inject("GetRecords", "reset", 2, match=reads)
    proxy.inject("ListShards", "5xx", 1)
    options = source_options(
        proxy.endpoint,
        stream_name,
        str(tmp_path / "store"),
        getRecordsLimit="7",
        **FAST_RETRIES,
    )
    sink = read_all(spark, options, tmp_path)
    assert record_keys(sink.rows()) == expected_keys(puts)
    assert proxy.faults == {"GetShardIterator": 3, "GetRecords": 2, "ListShards": 1}


def test_a_read_that_never_answers_times_out_and_is_retried(
    spark: Any, kinesis: Any, proxy: Any, stream_name: str, tmp_path: Path
) -> None:
    create_stream(kinesis, stream_name, 1)
    puts = put(kinesis, stream_name, ((f"k{i}", f"r{i}".encode()) for i in range(10)))
    proxy.inject("GetRecords", "hang", 1, match=reads)
    options = source_options(
        proxy.endpoint,
        stream_name,
        str(tmp_path / "store"),
        readTimeoutMs="1000",
        **FAST_RETRIES,
    )
    sink = read_all(spark, options, tmp_path)
    assert record_keys(sink.rows()) == expected_keys(puts)
    assert proxy.faults["GetRecords"] == 1


def test_expired_iterators_are_reacquired_without_loss_or_duplicate(
    spark: Any, kinesis: Any, proxy: Any, stream_name: str, tmp_path: Path
) -> None:
    create_stream(kinesis, stream_name, 1)
    puts = put(kinesis, stream_name, ((f"k{i}", f"r{i}".encode()) for i in range(20)))
    proxy.inject("GetRecords", "expired", 1, skip=1, match=reads)
    proxy.inject("GetRecords", "expired", 1, skip=3, match=reads)
    options = source_options(
        proxy.endpoint, stream_name, str(tmp_path / "store"), getRecordsLimit="3"
    )
    sink = read_all(spark, options, tmp_path)
    rows = sink.rows()
    assert record_keys(rows) == expected_keys(puts)
    assert_shard_order(rows)
    assert proxy.faults["GetRecords"] == 2


def _read_then_restart(
    spark: Any, kinesis: Any, proxy: Any, stream_name: str, tmp_path: Path, **extra: str
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    create_stream(kinesis, stream_name, 2)
    first = put(kinesis, stream_name, ((f"k{i}", f"a{i}".encode()) for i in range(20)))
    options = source_options(
        proxy.endpoint,
        stream_name,
        str(tmp_path / "store"),
        shardDiscoveryIntervalMs="0",
        **extra,
    )
    sink = read_all(spark, options, tmp_path)
    assert record_keys(sink.rows()) == expected_keys(first)
    return first, options


def test_a_shard_that_vanished_unread_stops_the_query_by_default(
    spark: Any, kinesis: Any, proxy: Any, stream_name: str, tmp_path: Path
) -> None:
    _, options = _read_then_restart(spark, kinesis, proxy, stream_name, tmp_path)
    gone = "shardId-000000000001"
    proxy.rewrites["ListShards"] = lambda answer: {
        **answer,
        "Shards": [s for s in answer["Shards"] if s["ShardId"] != gone],
    }
    query = start_query(spark, options, str(tmp_path / "ckpt"), BatchCollector())
    with pytest.raises(StreamingQueryException) as err:
        query.awaitTermination(180)
    message = str(err.value)
    assert f"shard {gone} is no longer in the stream" in message
    assert "failOnDataLoss=false" in message


def test_a_vanished_shard_is_skipped_with_fail_on_data_loss_false(
    spark: Any, kinesis: Any, proxy: Any, stream_name: str, tmp_path: Path
) -> None:
    _, options = _read_then_restart(
        spark, kinesis, proxy, stream_name, tmp_path, failOnDataLoss="false"
    )
    gone = "shardId-000000000001"
    proxy.rewrites["ListShards"] = lambda answer: {
        **answer,
        "Shards": [s for s in answer["Shards"] if s["ShardId"] != gone],
    }
    second = put(kinesis, stream_name, ((f"k{i}", f"b{i}".encode()) for i in range(20)))
    sink = read_all(spark, options, tmp_path)
    kept = [p for p in second if p["shardId"] != gone]
    assert kept and record_keys(sink.rows()) == expected_keys(kept)


def _age_store(store: Path, hours: float) -> int:
    """Make every store entry look written ``hours`` ago: the query was down that long."""
    aged = 0
    for path in store.rglob("*.json"):
        entry = json.loads(path.read_text())
        entry["writtenAtMs"] = int((time.time() - hours * 3600) * 1000)
        path.write_text(json.dumps(entry))
        aged += 1
    return aged


def test_a_position_older_than_the_retention_whose_record_is_kept_lost_nothing(
    spark: Any, kinesis: Any, proxy: Any, stream_name: str, tmp_path: Path
) -> None:
    """The query was down longer than the retention, but the shards still hold the records
    at its positions (nothing was trimmed): no alarm, at this restart or any later one."""
    _, options = _read_then_restart(spark, kinesis, proxy, stream_name, tmp_path)
    assert _age_store(tmp_path / "store", hours=25) > 0
    late = put(kinesis, stream_name, [("k", b"late")])
    sink = read_all(spark, options, tmp_path)
    assert record_keys(sink.rows()) == expected_keys(late)
    # One look at each stale shard's oldest record (GetRecords Limit=1 at TRIM_HORIZON).
    assert proxy.requests["GetShardIterator"] >= 2


def test_a_position_older_than_the_retention_whose_records_were_trimmed_stops_the_query(
    spark: Any, kinesis: Any, proxy: Any, stream_name: str, tmp_path: Path
) -> None:
    """The retention passed the records at the positions: the oldest record each shard
    still holds comes after them, so records in between may be lost."""
    _, options = _read_then_restart(spark, kinesis, proxy, stream_name, tmp_path)
    assert _age_store(tmp_path / "store", hours=25) > 0
    late = put(kinesis, stream_name, ((f"k{i}", f"late{i}".encode()) for i in range(12)))
    oldest = {}
    for sent in late:
        oldest.setdefault(sent["shardId"], sent["sequenceNumber"])
    assert len(oldest) == 2
    for shard, sequence in oldest.items():
        proxy.trim(shard, sequence)
    query = start_query(spark, options, str(tmp_path / "ckpt"), BatchCollector())
    with pytest.raises(StreamingQueryException) as err:
        query.awaitTermination(180)
    message = str(err.value)
    assert "Possible data loss on stream" in message
    assert "more than the stream's retention (24.0 h) ago and the oldest record" in message
    assert "(about 60 min) were trimmed before they were read" in message


def test_a_stale_position_goes_on_with_fail_on_data_loss_false(
    spark: Any, kinesis: Any, proxy: Any, stream_name: str, tmp_path: Path
) -> None:
    _, options = _read_then_restart(
        spark, kinesis, proxy, stream_name, tmp_path, failOnDataLoss="false"
    )
    _age_store(tmp_path / "store", hours=25)
    second = put(kinesis, stream_name, ((f"k{i}", f"b{i}".encode()) for i in range(10)))
    sink = read_all(spark, options, tmp_path)
    assert record_keys(sink.rows()) == expected_keys(second)


def test_a_sequence_number_of_another_shard_fails_the_read_and_never_restarts_it(
    kinesis: Any, proxy: Any, stream_name: str, tmp_path: Path
) -> None:
    """InvalidArgumentException for a sequence number the shard does not hold is no data
    loss: even with failOnDataLoss=false the read fails, naming the position, rather than
    read the shard from its oldest record."""
    (shard,) = create_stream(kinesis, stream_name, 1)
    sent = put(kinesis, stream_name, [("k", b"r0"), ("k", b"r1")])
    options = source_options(
        proxy.endpoint, stream_name, str(tmp_path / "store"), failOnDataLoss="false"
    )
    opts = parse_options({k.lower(): v for k, v in options.items()})
    proxy.inject("GetShardIterator", "foreign-sequence", 1)
    at = Position.after(sent[0]["sequenceNumber"])
    transport = GetRecordsTransport(opts, stream_name, shard)
    with pytest.raises(KinesisReadError, match=r"not one of this shard's.*initialPosition") as err:
        next(transport.pages(at, lambda: at))
    assert err.value.sequence_number == sent[0]["sequenceNumber"]
    assert proxy.requests["GetShardIterator"] == 1 and proxy.requests["GetRecords"] == 0
