"""Subscriptions kept open between batches (kinesis_source/source/executor/efo_kept.py) are
closed once the shard's next batch did not continue them: their thread ends and the
server sees the connection go (no leak in a long-running worker)."""

from __future__ import annotations

import threading
from typing import Any

from kinesis_source.aws.clients import kinesis_client
from kinesis_source.source.driver.consumers import ConsumerRegistry
from kinesis_source.source.executor.efo import EventStreamTransport
from kinesis_source.source.executor.efo_kept import Kept, release_stale, stale
from kinesis_source.source.options import parse_options
from kinesis_source.source.positions import Position
from tests.helpers import REGION, create_stream, put, wait_for


def _threads_of(shard: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == f"kinesis-efo-{shard}"]


def test_a_subscription_not_continued_by_the_next_batch_is_closed(
    efo_server: Any, stream_name: str
) -> None:
    server = efo_server(takeover_seconds=5.0)
    opts = parse_options(
        {
            "streamName": stream_name,
            "region": REGION,
            "endpointUrl": server.endpoint,
            "checkpointStore": "unused",
            "consumerMode": "efo",
        }
    )
    client = kinesis_client(opts)
    a, b = create_stream(client, stream_name, 2)
    arn = client.describe_stream_summary(StreamName=stream_name)["StreamDescriptionSummary"][
        "StreamARN"
    ]
    consumer = ConsumerRegistry(client, stream_name, arn, 30_000).ensure("kept")
    put(client, stream_name, [("k", b"x")])

    # Batch 1 reads shard a here and keeps its subscription open for batch 2.
    first = EventStreamTransport(opts, stream_name, a, consumer, batch=1)
    first.open(Position.trim_horizon())
    page = first.next_page(Position.trim_horizon())
    first.close(Position.after(page.continuation or "0") if page.continuation else None)
    assert len(_threads_of(a)) == 1
    # Batch 2 may still continue it (in this worker): a read of batch 2 keeps it.
    assert release_stale(consumer, 2) == 0 and len(_threads_of(a)) == 1

    # Batch 3 reads shard b here: shard a's batch 2 ran elsewhere (or not at all), so
    # nothing will continue a's subscription: it is closed, thread and connection.
    third = EventStreamTransport(opts, stream_name, b, consumer, batch=3)
    third.open(Position.trim_horizon())
    server.wait_for_expiry(consumer, a, timeout_s=10)
    wait_for(lambda: not _threads_of(a), timeout_s=10, what="shard a's thread to end")
    third.close(None)
    wait_for(lambda: not _threads_of(b), timeout_s=10, what="shard b's thread to end")
    assert server.subscriptions[(consumer, a)] == 1


class _Closed:
    closed = False

    def close(self) -> None:
        self.closed = True


def test_kept_too_long_or_passed_by_a_later_batch_is_stale() -> None:
    def kept(batch: int | None, at: float) -> Kept:
        return Kept(_Closed(), Position.after("5"), None, batch, at)  # type: ignore[arg-type]

    assert not stale(kept(4, 100.0), "c", 5, now=101.0)  # the next batch may continue it
    assert stale(kept(4, 100.0), "c", 6, now=101.0)  # batch 5 is over: it did not
    assert not stale(kept(4, 100.0), None, 9, now=101.0)  # another consumer: time only
    assert stale(kept(None, 100.0), None, None, now=131.0)  # 30 s without a read
