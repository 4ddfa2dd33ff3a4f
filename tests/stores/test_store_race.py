"""Put-if-absent in every store, against the real moto server over HTTP."""

from __future__ import annotations

import re
import threading
import uuid
from typing import Any

import pytest
from helpers import REGION, create_stream, put, source_options, store_options

from kinesis_source.errors import CheckpointConflictError, CheckpointStoreError
from kinesis_source.source.executor.shard_reader import read_shard
from kinesis_source.source.options import KinesisOptions, parse_options
from kinesis_source.source.positions import Position, ShardEnd
from kinesis_source.source.tasks import ShardTask
from kinesis_source.stores import CheckpointStore, open_store

pytestmark = pytest.mark.lowest


def _opts(endpoint: str, stream: str, store: str, **extra: str) -> KinesisOptions:
    raw = source_options(endpoint, stream, store, **store_options(store, endpoint), **extra)
    return parse_options(raw)


def _store(opts: KinesisOptions) -> CheckpointStore:
    store = open_store(opts)
    store.check()
    return store


def _end(seq: str, records: int) -> ShardEnd:
    return ShardEnd(Position.after(seq), records, millis_behind_latest=0, caught_up=False)


def test_exactly_one_of_racing_writers_wins(moto_endpoint: str, store_uri: str) -> None:
    store = _store(_opts(moto_endpoint, "race", store_uri))
    racers = 8
    barrier = threading.Barrier(racers)
    results: list[bool] = [False] * racers

    def attempt(i: int) -> None:
        barrier.wait()
        results[i] = store.put_if_absent("race", "q1", 7, "shardId-000", _end(str(100 + i), i))

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(racers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert results.count(True) == 1
    winner = results.index(True)
    assert store.get("race", "q1", 7, "shardId-000") == _end(str(100 + winner), winner)
    assert store.get_batch("race", "q1", 7) == {"shardId-000": _end(str(100 + winner), winner)}


def test_every_fact_of_an_end_survives_the_store(moto_endpoint: str, store_uri: str) -> None:
    # The AvailableNow bound and the EFO fallback are read back by the planner and the lag
    # report: a store that drops one plans differently from the others; a replay checks its
    # first record and its continuation end against the entry.
    store = _store(_opts(moto_endpoint, "fallback", store_uri))
    end = ShardEnd(
        Position.after("42"),
        3,
        millis_behind_latest=0,
        caught_up=True,
        reached_bound_ms=1_767_225_600_123,
        efo_fallback=True,
        first_sequence="7",
        end_at_continuation=True,
    )
    assert store.put_if_absent("fallback", "q", 0, "shardId-000", end)
    assert store.get("fallback", "q", 0, "shardId-000") == end
    assert store.get_batch("fallback", "q", 0) == {"shardId-000": end}


def test_batches_are_kept_apart_and_purged(moto_endpoint: str, store_uri: str) -> None:
    store = _store(_opts(moto_endpoint, "purge", store_uri))
    for batch in range(4):
        for shard in ("shardId-000", "shardId-001"):
            assert store.put_if_absent("purge", "q", batch, shard, _end(str(batch), 1))
    assert store.put_if_absent("purge", "other-query", 0, "shardId-000", _end("9", 1))

    store.purge_before("purge", "q", 2)

    assert store.get_batch("purge", "q", 0) == {}
    assert store.get_batch("purge", "q", 1) == {}
    assert set(store.get_batch("purge", "q", 2)) == {"shardId-000", "shardId-001"}
    assert store.get("purge", "q", 3, "shardId-001") == _end("3", 1)
    assert store.get("purge", "other-query", 0, "shardId-000") == _end("9", 1)


def test_losing_attempt_fails_and_its_retry_replays_the_winners_range(
    moto_endpoint: str, kinesis: Any, stream_name: str, store_uri: str
) -> None:
    (shard,) = create_stream(kinesis, stream_name, 1)
    put(kinesis, stream_name, [(f"k{i}", f"r{i}".encode()) for i in range(10)])
    # The two attempts run with different caps, as a fresh read after a change would.
    winner_opts = _opts(moto_endpoint, stream_name, store_uri, maxRecordsPerShard="3")
    loser_opts = _opts(moto_endpoint, stream_name, store_uri, maxRecordsPerShard="6")
    _store(winner_opts)  # creates the DynamoDB table, as the driver would
    task = ShardTask(
        batch=1, stream=stream_name, query="q", shard_id=shard, start=Position.trim_horizon()
    )

    def rows(batches: Any) -> list[bytes]:
        return [d for b in batches for d in b.column("data").to_pylist()]

    loser = read_shard(loser_opts, open_store(loser_opts), task)
    first = next(loser)  # the loser looked up the store (empty) and started reading
    won = rows(read_shard(winner_opts, open_store(winner_opts), task))
    with pytest.raises(CheckpointConflictError):
        list(loser)
    retried = rows(read_shard(loser_opts, open_store(loser_opts), task))

    assert won == [b"r0", b"r1", b"r2"]
    assert first.num_rows == 6
    assert retried == won


def test_unreachable_store_fails_at_check_naming_the_uri(tmp_path: Any) -> None:
    # A port nothing listens on: connection refused at once.
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    for uri in ("s3://no-such-bucket/p", "dynamodb://no-such-table"):
        opts = parse_options(
            {
                "streamName": "s",
                "region": REGION,
                "checkpointStore": uri,
                "checkpointEndpointUrl": f"http://127.0.0.1:{port}",
            }
        )
        with pytest.raises(CheckpointStoreError, match=re.escape(uri)):
            open_store(opts).check()


def test_dynamodb_items_show_progress_like_a_kcl_lease_table(moto_endpoint: str) -> None:
    import boto3

    table = f"progress-{uuid.uuid4().hex[:8]}"
    store = _store(_opts(moto_endpoint, "s", f"dynamodb://{table}"))
    end = ShardEnd(Position.after("4711"), 3, millis_behind_latest=1500, caught_up=False)
    assert store.put_if_absent("orders", "q", 5, "shardId-000000000001", end)

    ddb = boto3.client("dynamodb", region_name=REGION, endpoint_url=moto_endpoint)
    described = ddb.describe_table(TableName=table)["Table"]
    (item,) = ddb.scan(TableName=table)["Items"]

    assert described["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert item["streamQuery"] == {"S": "orders/q"}
    assert item["batchShard"] == {"S": "000000000005/shardId-000000000001"}
    assert item["shardId"] == {"S": "shardId-000000000001"}
    assert item["lastSequenceNumber"] == {"S": "4711"}
    assert item["millisBehindLatest"] == {"N": "1500"}
    assert item["records"] == {"N": "3"}


def test_dynamodb_missing_table_without_create_fails_naming_the_option(
    moto_endpoint: str,
) -> None:
    uri = f"dynamodb://absent-{uuid.uuid4().hex[:8]}"
    opts = _opts(moto_endpoint, "s", uri, createCheckpointTable="false")
    with pytest.raises(CheckpointStoreError, match="createCheckpointTable=false"):
        open_store(opts).check()


_THROTTLES = {
    "s3": (503, b"<Error><Code>SlowDown</Code><Message>Reduce your request rate</Message></Error>"),
    "dynamodb": (
        400,
        b'{"__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",'
        b' "message": "throttled"}',
    ),
}


@pytest.mark.parametrize("kind", ["s3", "dynamodb"])
def test_throttled_writes_are_retried(moto_endpoint: str, kind: str) -> None:
    from botocore.awsrequest import AWSResponse

    name = f"throttle-{uuid.uuid4().hex[:8]}"
    if kind == "s3":
        import boto3

        boto3.client("s3", region_name=REGION, endpoint_url=moto_endpoint).create_bucket(
            Bucket=name
        )
    store = _store(_opts(moto_endpoint, "s", f"{kind}://{name}"))
    status, body = _THROTTLES[kind]
    calls: list[str] = []

    class _Raw:
        def stream(self, **_: Any) -> Any:
            yield body

    def throttle_twice(request: Any, **_: Any) -> Any:
        calls.append(request.method)
        if len(calls) <= 2:
            return AWSResponse(request.url, status, {}, _Raw())
        return None

    event = "before-send.s3.PutObject" if kind == "s3" else "before-send.dynamodb.PutItem"
    store.client.meta.events.register(event, throttle_twice)  # type: ignore[attr-defined]
    try:
        assert store.put_if_absent("s", "q", 0, "shardId-0", _end("1", 1))
    finally:
        store.client.meta.events.unregister(event, throttle_twice)  # type: ignore[attr-defined]

    assert len(calls) == 3
    assert store.get("s", "q", 0, "shardId-0") == _end("1", 1)


def test_store_region_can_differ_from_the_streams(moto_endpoint: str) -> None:
    import boto3

    table = f"elsewhere-{uuid.uuid4().hex[:8]}"
    opts = _opts(moto_endpoint, "s", f"dynamodb://{table}", checkpointRegion="eu-west-1")
    store = _store(opts)
    assert store.put_if_absent("s", "q", 0, "shardId-0", _end("1", 1))

    def tables(region: str) -> list[str]:
        client = boto3.client("dynamodb", region_name=region, endpoint_url=moto_endpoint)
        return list(client.list_tables()["TableNames"])

    assert table in tables("eu-west-1")
    assert table not in tables(REGION)
