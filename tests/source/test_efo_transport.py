"""The EFO transport (kinesis_source/source/executor/efo.py) against the SubscribeToShard test
double: subscriptions kept between batches, the 5-second rule (waited out, or the batch
read by GetRecords), expiry."""

from __future__ import annotations

from typing import Any

import pytest

from kinesis_source.aws.clients import kinesis_client
from kinesis_source.errors import ConsumerError
from kinesis_source.records.records_page import RecordsPage
from kinesis_source.source.driver.consumers import ConsumerRegistry
from kinesis_source.source.executor.efo import EventStreamTransport
from kinesis_source.source.executor.shard_reader import read_shard
from kinesis_source.source.options import parse_options
from kinesis_source.source.positions import Position, ShardEnd
from kinesis_source.source.tasks import ShardTask
from kinesis_source.stores import open_store
from tests.helpers import REGION, create_stream, put


def _setup(server: Any, stream: str, shards: int = 1, **extra: str) -> tuple[Any, list[str], str]:
    opts = parse_options(
        {
            "streamName": stream,
            "region": REGION,
            "endpointUrl": server.endpoint,
            "checkpointStore": "unused",
            "consumerMode": "efo",
            **extra,
        }
    )
    client = kinesis_client(opts)
    shard_ids = create_stream(client, stream, shards)
    arn = client.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]["StreamARN"]
    consumer = ConsumerRegistry(client, stream, arn, 30_000).ensure("transport")
    return opts, shard_ids, consumer


def _pages(opts: Any, consumer: str, shard: str) -> EventStreamTransport:
    return EventStreamTransport(opts, opts.stream_name, shard, consumer)


def _read_until_caught_up(
    pages: EventStreamTransport, position: Position
) -> tuple[list[bytes], Position]:
    """Data of every event up to the first caught-up one, and where that leaves the read."""
    data: list[bytes] = []
    while True:
        page: RecordsPage = pages.next_page(position)
        data.extend(page.data)
        if page.sequence_numbers:
            position = Position.after(page.sequence_numbers[-1])
        if page.millis_behind_latest == 0:
            return data, position


def test_next_batch_continues_the_kept_subscription(efo_server: Any, stream_name: str) -> None:
    server = efo_server(takeover_seconds=5.0)
    opts, (shard,), consumer = _setup(server, stream_name)
    client = kinesis_client(opts)
    put(client, stream_name, [("k", b"a"), ("k", b"b")])
    first = _pages(opts, consumer, shard)
    first.open(Position.trim_horizon())
    data, position = _read_until_caught_up(first, Position.trim_horizon())
    assert data == [b"a", b"b"]
    first.close(position)
    put(client, stream_name, [("k", b"c")])
    # The next batch starts where the last one stopped: no new subscription, no 5 s wait.
    second = _pages(opts, consumer, shard)
    second.open(position)
    data, position = _read_until_caught_up(second, position)
    while not data:
        data, position = _read_until_caught_up(second, position)
    assert data == [b"c"]
    second.close(None)
    assert server.subscriptions[(consumer, shard)] == 1
    assert server.rejections[(consumer, shard)] == 0


def test_a_kept_subscription_behind_the_start_is_continued_past_what_another_read_took(
    efo_server: Any, stream_name: str
) -> None:
    """This worker kept the shard's subscription; the last batch ran in another worker and
    read on by GetRecords. The next batch here continues the kept subscription, dropping
    the records that read took, instead of subscribing again (its own subscription, under
    5 s old, would refuse that)."""
    server = efo_server(takeover_seconds=60.0)
    opts, (shard,), consumer = _setup(server, stream_name)
    client = kinesis_client(opts)
    put(client, stream_name, [("k", b"a"), ("k", b"b")])
    first = _pages(opts, consumer, shard)
    first.open(Position.trim_horizon())
    data, kept_at = _read_until_caught_up(first, Position.trim_horizon())
    assert data == [b"a", b"b"]
    first.close(kept_at)
    taken = put(client, stream_name, [("k", b"c"), ("k", b"d")])
    # The other worker's batch read c and d; this batch starts after them.
    start = Position.after(taken[-1]["sequenceNumber"])
    put(client, stream_name, [("k", b"e")])
    second = _pages(opts, consumer, shard)
    assert second.open(start) is None
    got: list[bytes] = []
    position = start
    while not got:
        data, position = _read_until_caught_up(second, position)
        got.extend(data)
    second.close(None)
    assert got == [b"e"]
    assert server.subscriptions[(consumer, shard)] == 1
    assert server.rejections[(consumer, shard)] == 0


def test_a_new_start_subscribes_again_waiting_out_the_takeover_rule(
    efo_server: Any, stream_name: str
) -> None:
    server = efo_server(takeover_seconds=1.0)
    opts, (shard,), consumer = _setup(server, stream_name, efoFallbackToPolling="false")
    puts = put(kinesis_client(opts), stream_name, [("k", b"a"), ("k", b"b")])
    first = _pages(opts, consumer, shard)
    first.open(Position.trim_horizon())
    _read_until_caught_up(first, Position.trim_horizon())
    first.close(Position.after(puts[-1]["sequenceNumber"]))
    # A replay of the same range starts elsewhere: the kept subscription is dropped and a
    # new one waits until the server lets it take over.
    again = _pages(opts, consumer, shard)
    again.open(Position.trim_horizon())
    data, _ = _read_until_caught_up(again, Position.trim_horizon())
    assert data == [b"a", b"b"]
    again.close(None)
    assert server.subscriptions[(consumer, shard)] == 2
    assert server.rejections[(consumer, shard)] >= 1
    assert server.retried_refusals[(consumer, shard)] >= 1


def _rows(batches: Any) -> list[bytes]:
    return [d for b in batches for d in b.column("data").to_pylist()]


def test_a_refused_subscription_reads_the_batch_by_get_records_without_waiting(
    efo_server: Any, stream_name: str, tmp_path: Any
) -> None:
    """The shard's last batch ran in another Python worker, which subscribed under 5 s ago:
    this batch reads by GetRecords, to the same end an event stream would have given, and
    its replay reads exactly to that recorded end."""
    # A long takeover window, so that both reads surely fall within it on a busy machine.
    server = efo_server(takeover_seconds=60.0)
    opts, (shard,), consumer = _setup(
        server, stream_name, checkpointStore=str(tmp_path / "store"), maxRecordsPerShard="4"
    )
    client = kinesis_client(opts)
    puts = put(client, stream_name, [(f"k{i % 2}", f"r{i}".encode()) for i in range(6)])
    # The other worker's subscription, taken just now.
    other = client.subscribe_to_shard(
        ConsumerARN=consumer, ShardId=shard, StartingPosition={"Type": "TRIM_HORIZON"}
    )
    store = open_store(opts)
    first = ShardTask(0, stream_name, "q", shard, Position.trim_horizon(), consumer_arn=consumer)
    try:
        read = _rows(read_shard(opts, store, first))
        end = store.get(stream_name, "q", 0, shard)
        assert end is not None
        put(client, stream_name, [("k0", b"late")])
        replayed = _rows(read_shard(opts, store, first))
        second = ShardTask(1, stream_name, "q", shard, end.position, consumer_arn=consumer)
        rest = _rows(read_shard(opts, store, second))
    finally:
        other["EventStream"].close()
    # The cap of 4 stops the first batch mid-shard; the second reads to the tip.
    assert read == [b"r0", b"r1", b"r2", b"r3"]
    assert end == ShardEnd(
        Position.after(puts[3]["sequenceNumber"]),
        4,
        millis_behind_latest=end.millis_behind_latest,
        caught_up=False,
        efo_fallback=True,
        first_sequence=puts[0]["sequenceNumber"],
    )
    assert replayed == read
    assert rest == [b"r4", b"r5", b"late"]
    last = store.get(stream_name, "q", 1, shard)
    assert last is not None and last.caught_up and last.efo_fallback
    # One refusal per read, none retried: no read waited for the takeover (a waiting read
    # retries every 0.5 s).
    assert server.rejections[(consumer, shard)] == 3
    assert server.subscriptions[(consumer, shard)] == 1
    # The fallback asks GetRecords as a polling read does: the first batch for the 4 its
    # cap leaves and one more (a page short of that is the tip), not a full 10,000.
    assert server.get_records_limits[0] == 5


def test_expired_subscription_resubscribes_where_the_read_stands(
    efo_server: Any, stream_name: str
) -> None:
    server = efo_server(subscription_seconds=1.0, takeover_seconds=0.5)
    opts, (shard,), consumer = _setup(server, stream_name)
    client = kinesis_client(opts)
    pages = _pages(opts, consumer, shard)
    position = Position.trim_horizon()
    pages.open(position)
    got: list[bytes] = []
    for i in range(3):
        put(client, stream_name, [("k", f"r{i}".encode())])
        while len(got) < i + 1:
            data, position = _read_until_caught_up(pages, position)
            got.extend(data)
        # Outlive the subscription: the next read finds it ended and resubscribes.
        server.wait_for_expiry(consumer, shard)
    pages.close(None)
    assert got == [b"r0", b"r1", b"r2"]
    assert server.subscriptions[(consumer, shard)] >= 3


def test_a_deregistered_consumer_is_an_error_not_a_gone_shard(
    efo_server: Any, stream_name: str
) -> None:
    # SubscribeToShard answers ResourceNotFoundException for both; skipping the shard as
    # lost (failOnDataLoss=false) would drop records that are still there.
    server = efo_server()
    opts, (shard,), consumer = _setup(server, stream_name, failOnDataLoss="false")
    put(kinesis_client(opts), stream_name, [("k", b"a")])
    # A consumer of this stream that is not registered (any more).
    consumer = consumer.rsplit("/consumer/", 1)[0] + "/consumer/deregistered:1"
    pages = _pages(opts, consumer, shard)
    with pytest.raises(ConsumerError, match=f"consumer {consumer} is no longer registered"):
        next(pages.pages(Position.trim_horizon(), Position.trim_horizon))
    assert not pages.shard_gone


def test_reader_registers_its_consumer_once_and_deregisters_it_on_stop_if_asked(
    efo_server: Any, stream_name: str, tmp_path: Any
) -> None:
    from pyspark.sql.streaming.datasource import ReadAllAvailable

    from kinesis_source.source.stream_reader import KinesisStreamReader

    server = efo_server()
    client = kinesis_client(
        parse_options(
            {
                "streamName": stream_name,
                "region": REGION,
                "endpointUrl": server.endpoint,
                "checkpointStore": "unused",
            }
        )
    )
    create_stream(client, stream_name, 1)
    opts = parse_options(
        {
            "streamName": stream_name,
            "region": REGION,
            "endpointUrl": server.endpoint,
            "checkpointStore": str(tmp_path / "store"),
            "consumerMode": "efo",
            "consumerName": "stop-me",
            "deregisterConsumerOnStop": "true",
        }
    )
    reader = KinesisStreamReader(opts)
    start = reader.initialOffset()
    reader.latestOffset(start, ReadAllAvailable())
    reader.latestOffset(start, ReadAllAvailable())
    arn = client.describe_stream_summary(StreamName=stream_name)["StreamDescriptionSummary"][
        "StreamARN"
    ]
    (consumer,) = client.list_stream_consumers(StreamARN=arn)["Consumers"]
    assert consumer["ConsumerName"] == "stop-me" and consumer["ConsumerStatus"] == "ACTIVE"
    reader.stop()
    desc = client.describe_stream_consumer(ConsumerARN=consumer["ConsumerARN"])
    assert desc["ConsumerDescription"]["ConsumerStatus"] == "DELETING"


def test_a_replay_of_an_idle_shards_continuation_end_falls_back_without_a_false_loss(
    efo_server: Any, stream_name: str, tmp_path: Any
) -> None:
    """An enhanced fan-out read of a shard with no record ends at the event's continuation
    sequence number, which is no record's. Its replay, refused a subscription (the first
    one is under 5 s old), reads by GetRecords and reaches the tip before that end: every
    record up to it was read, so the replay is complete, not "records in between are gone"."""
    server = efo_server(takeover_seconds=60.0)
    opts, (shard,), consumer = _setup(server, stream_name, checkpointStore=str(tmp_path / "store"))
    store = open_store(opts)
    task = ShardTask(0, stream_name, "q", shard, Position.trim_horizon(), consumer_arn=consumer)
    assert _rows(read_shard(opts, store, task)) == []
    end = store.get(stream_name, "q", 0, shard)
    assert end is not None and end.records == 0 and end.caught_up and not end.efo_fallback
    assert end.position.sequence is not None and end.end_at_continuation
    # The replay runs in another worker: its subscription is refused, it reads by GetRecords.
    rejected = server.rejections[(consumer, shard)]
    assert _rows(read_shard(opts, store, task)) == []
    assert server.rejections[(consumer, shard)] == rejected + 1
    # The next batch goes on from the continuation and reads what came since.
    put(kinesis_client(opts), stream_name, [("k", b"r0")])
    following = ShardTask(1, stream_name, "q", shard, end.position, consumer_arn=consumer)
    assert _rows(read_shard(opts, store, following)) == [b"r0"]
