"""The SubscribeToShard test double (tests/emulators/efo_server.py), read through boto3's
own ``subscribe_to_shard`` and event-stream parser: what the EFO reader's tests rely on."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, EventStreamError

from tests.emulators.efo_server import EfoServer
from tests.helpers import REGION, create_stream, put, wait_active, wait_for


@pytest.fixture
def efo(efo_server: Any) -> EfoServer:
    server: EfoServer = efo_server(subscription_seconds=2.0, takeover_seconds=1.0)
    return server


def _client(efo: EfoServer) -> Any:
    return boto3.client(
        "kinesis",
        region_name=REGION,
        endpoint_url=efo.endpoint,  # type: ignore[attr-defined]
    )


def _stream_arn(client: Any, stream: str) -> str:
    return str(
        client.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]["StreamARN"]
    )


def _consumer(client: Any, stream: str) -> str:
    consumer = client.register_stream_consumer(
        StreamARN=_stream_arn(client, stream), ConsumerName="c-" + uuid.uuid4().hex
    )
    consumer_arn = str(consumer["Consumer"]["ConsumerARN"])

    def active() -> bool:
        desc = client.describe_stream_consumer(ConsumerARN=consumer_arn)["ConsumerDescription"]
        return bool(desc["ConsumerStatus"] == "ACTIVE")

    wait_for(active, what="the consumer to become ACTIVE")
    return consumer_arn


def _events(client: Any, consumer: str, shard: str, **start: Any) -> Iterator[dict[str, Any]]:
    resp = client.subscribe_to_shard(ConsumerARN=consumer, ShardId=shard, StartingPosition=start)
    for event in resp["EventStream"]:
        yield event["SubscribeToShardEvent"]


def test_events_carry_every_record_then_expire(efo: EfoServer, stream_name: str) -> None:
    client = _client(efo)
    (shard,) = create_stream(client, stream_name, 1)
    consumer = _consumer(client, stream_name)
    puts = put(client, stream_name, [(f"k{i}", f"r{i}".encode()) for i in range(30)])
    started = time.monotonic()
    got: list[str] = []
    continuations: list[str] = []
    for event in _events(client, consumer, shard, Type="TRIM_HORIZON"):
        got.extend(r["SequenceNumber"] for r in event["Records"])
        continuations.append(event["ContinuationSequenceNumber"])
        assert event["MillisBehindLatest"] >= 0
    # The stream ended by itself after the subscription's lifetime, with every record once.
    assert time.monotonic() - started >= 2.0
    assert got == [p["sequenceNumber"] for p in puts]
    assert continuations[-1] == puts[-1]["sequenceNumber"]
    # Resubscribing AFTER the continuation gives the records that came later, and only them.
    later = put(client, stream_name, [("k", b"later")])
    time.sleep(1.0)  # the takeover window of this server (1 s): the 5 s rule, shortened
    events = _events(
        client, consumer, shard, Type="AFTER_SEQUENCE_NUMBER", SequenceNumber=continuations[-1]
    )
    first = next(e for e in events if e["Records"])
    assert [r["Data"] for r in first["Records"]] == [b"later"]
    assert first["Records"][0]["SequenceNumber"] == later[0]["sequenceNumber"]


def test_second_subscription_within_the_window_is_refused_then_takes_over(
    efo: EfoServer, stream_name: str
) -> None:
    client = _client(efo)
    (shard,) = create_stream(client, stream_name, 1)
    consumer = _consumer(client, stream_name)
    first = _events(client, consumer, shard, Type="LATEST")
    next(first)
    with pytest.raises(ClientError) as refused:
        client.subscribe_to_shard(
            ConsumerARN=consumer, ShardId=shard, StartingPosition={"Type": "LATEST"}
        )
    assert refused.value.response["Error"]["Code"] == "ResourceInUseException"
    assert efo.rejections[(consumer, shard)] == 1
    time.sleep(1.0)
    second = _events(client, consumer, shard, Type="LATEST")
    next(second)
    # The first subscription now ends with ResourceInUseException.
    with pytest.raises(EventStreamError) as taken:
        for _ in first:
            pass
    assert "ResourceInUseException" in str(taken.value)
    assert efo.subscriptions[(consumer, shard)] == 2


def test_closed_shard_ends_with_child_shards_and_no_continuation(
    efo: EfoServer, stream_name: str
) -> None:
    client = _client(efo)
    (parent,) = create_stream(client, stream_name, 1)
    consumer = _consumer(client, stream_name)
    puts = put(client, stream_name, [("a", b"1"), ("b", b"2")])
    client.split_shard(
        StreamName=stream_name,
        ShardToSplit=parent,
        NewStartingHashKey=str(2**127),
    )
    wait_active(client, stream_name)
    events = list(_events(client, consumer, parent, Type="TRIM_HORIZON"))
    records = [r["SequenceNumber"] for e in events for r in e["Records"]]
    assert records == [p["sequenceNumber"] for p in puts]
    last = events[-1]
    assert "ContinuationSequenceNumber" not in last
    children = sorted(c["ShardId"] for c in last["ChildShards"])
    assert len(children) == 2
    assert all(c["ParentShards"] == [parent] for c in last["ChildShards"])


def test_idle_shard_gets_empty_caught_up_events(efo: EfoServer, stream_name: str) -> None:
    client = _client(efo)
    (shard,) = create_stream(client, stream_name, 1)
    consumer = _consumer(client, stream_name)
    before = put(client, stream_name, [("a", b"old")])
    events = _events(client, consumer, shard, Type="LATEST")
    first, second = next(events), next(events)
    for event in (first, second):
        assert event["Records"] == []
        assert event["MillisBehindLatest"] == 0
        # The continuation stands after the last record the subscription excludes.
        assert event["ContinuationSequenceNumber"] == before[0]["sequenceNumber"]


def test_unknown_or_creating_consumer_is_refused(efo: EfoServer, stream_name: str) -> None:
    client = _client(efo)
    (shard,) = create_stream(client, stream_name, 1)
    arn = _stream_arn(client, stream_name)
    with pytest.raises(ClientError) as missing:
        client.subscribe_to_shard(
            ConsumerARN=f"{arn}/consumer/nobody:1",
            ShardId=shard,
            StartingPosition={"Type": "LATEST"},
        )
    assert missing.value.response["Error"]["Code"] == "ResourceNotFoundException"
