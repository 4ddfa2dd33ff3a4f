"""The sink at a shard's write quota, on the Kinesis test server (which refuses each entry
over a shard's 1,000 records/s or 1 MiB/s with ProvisionedThroughputExceededException, as
AWS does).

The server's clock is frozen and moves only by the waits the sender asks for, so what is
checked is how much of the quota the sender's calls and waits use, whatever the machine's
speed: no wall-clock timing.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pyarrow as pa

from kinesis_source import limits
from kinesis_source.aws.clients import kinesis_client
from kinesis_source.aws.retry import policy_of
from kinesis_source.sink.batching import Entry, record_size
from kinesis_source.sink.columns import ColumnLayout
from kinesis_source.sink.options import parse_sink_options
from kinesis_source.sink.put_records import LaneSender, PutStats
from kinesis_source.sink.shard_map import hash_key_of
from kinesis_source.sink.task import SinkPlan, write_partition
from tests.emulators.kinesis_rules import MIB
from tests.emulators.kinesis_server import KinesisServer
from tests.helpers import REGION, create_stream, read_stream, wait_for

# Reads unthrottled (the read-back is not what is tested); the write quota as AWS sets it.
READS_OFF = {
    "get_records_calls_per_s": None,
    "read_bytes_per_s": None,
    "get_shard_iterator_calls_per_s": None,
}


SEED = 3


def keys_of_shard(first_half: bool, count: int) -> list[str]:
    """``count`` partition keys whose hash keys lie in the lower (or upper) half of the hash
    key space: shard 0 (or 1) of a two-shard stream."""
    keys: list[str] = []
    i = 0
    while len(keys) < count:
        key = f"key-{i}"
        if (hash_key_of(key, None) < 2**127) == first_half:
            keys.append(key)
        i += 1
    return keys


def sender_on_server_clock(server: KinesisServer, stream: str, stats: PutStats) -> LaneSender:
    """A lane whose waits move the server's frozen clock instead of sleeping."""
    opts = parse_sink_options(
        {"streamName": stream, "region": REGION, "endpointUrl": server.endpoint}
    )

    def waits(seconds: float) -> None:
        server.advance_clock(seconds)

    return LaneSender(
        kinesis_client(opts),
        stream,
        policy_of(opts),
        one_per_key=False,
        stats=stats,
        abort=threading.Event(),
        sleep=waits,
        rng=random.Random(SEED),
    )


def test_a_lane_keeps_a_hot_shard_at_its_quota_while_another_takes_the_rest(
    kinesis_server_with: Callable[..., KinesisServer],
) -> None:
    # 4,500 records for shard 0 and 500 for shard 1, in one lane: many calls write some of
    # their entries while shard 0's are refused over its 1,000 records/s, others (of
    # refused entries only) write none. That is a shard at its quota, which frees within a
    # second: the lane must go on at that rate (not wait longer and longer, nor give up
    # after maxRetries).
    server = kinesis_server_with(**READS_OFF)
    client = _client(server)
    create_stream(client, "hot", 2)
    hot, cool = keys_of_shard(True, 50), keys_of_shard(False, 50)
    rows = [
        (b"%06d" % i + bytes(94), hot[i % 50] if i % 10 else cool[i % 50]) for i in range(5_000)
    ]
    entries = [Entry(data, key, None, record_size(data, key), key) for data, key in rows]
    stats = PutStats()
    sender = sender_on_server_clock(server, "hot", stats)
    server.freeze_clock()
    start_ms = server.advance_clock(0)

    sender.send(entries)

    seconds = (server.advance_clock(0) - start_ms) / 1000
    assert Counter((r["partitionKey"], r["data"]) for r in read_stream(client, "hot")) == Counter(
        (key, data) for data, key in rows
    )
    assert stats.throttled_entries > 0  # the quota was reached
    # 4,500 records for shard 0 at 1,000 a second: the fifth second's window starts at 4 s.
    # 90% of the quota: shard 0's last record in at most 4,500 / 900 = 5 s.
    assert seconds <= 5.0, f"{seconds:.2f} s of the server's clock for 4,500 records"


def _client(server: KinesisServer) -> Any:
    return boto3.client("kinesis", region_name=REGION, endpoint_url=server.endpoint)


def test_aggregates_fill_a_shard_s_write_quota(
    kinesis_server_with: Callable[..., KinesisServer],
) -> None:
    # 100,000 records of 100 bytes aggregated into one shard, one lane: 10 MB of user data.
    # Kinesis counts a shard's writes per second: aggregates cut by a small window (2,000
    # records, 214 KB) fit four to a second, 856 KB of its 1 MiB; aggregates as large as
    # a record may be (1 MiB) fit only in a second nothing else was written in.
    server = kinesis_server_with(**READS_OFF)
    client = _client(server)
    create_stream(client, "agg", 1)
    keys = [f"key-{i}" for i in range(250)]
    rows = [(b"%08d" % i + bytes(92), keys[i % 250]) for i in range(100_000)]
    schema = pa.schema([("data", pa.binary()), ("partitionKey", pa.string())])
    batch = pa.RecordBatch.from_pylist(
        [{"data": data, "partitionKey": key} for data, key in rows], schema=schema
    )
    opts = parse_sink_options(
        {
            "streamName": "agg",
            "region": REGION,
            "endpointUrl": server.endpoint,
            "aggregate": "true",
            "maxInFlightRequests": "1",  # one lane: the waits below are the only ones
        }
    )
    plan = SinkPlan(opts, ColumnLayout("data", False, "partitionKey", None))
    server.freeze_clock()
    start_ms = server.advance_clock(0)

    def waits(seconds: float) -> None:
        server.advance_clock(seconds)

    def clock() -> float:  # the lane's own clock: the server's, as AWS' is near enough
        return server.advance_clock(0) / 1000

    write_partition(plan, [batch], 0, sleep=waits, clock=clock)

    seconds = (server.advance_clock(0) - start_ms) / 1000
    assert Counter((r["partitionKey"], r["data"]) for r in read_stream(client, "agg")) == Counter(
        (key, data) for data, key in rows
    )
    # A user record costs 107 bytes of an aggregate (protobuf framing), so at most 93% of
    # the quota is user data. The lane sends again when its own write of a second ago
    # frees its room: at least 84% of 1 MiB/s of user data here (81% when it waited a
    # random draw of up to retryBaseDelayMs instead, 74% or less with the small window's
    # 214 KB aggregates).
    user_mib = sum(len(data) for data, _ in rows) / MIB
    assert seconds <= user_mib / 0.84, (
        f"{seconds:.2f} s of the server's clock for {user_mib:.1f} MiB"
    )


def test_a_task_reads_its_next_window_while_the_lanes_wait_on_the_quota(
    kinesis_server_with: Callable[..., KinesisServer],
) -> None:
    # One lane, so a window is 2,000 rows: the first window fills the shard's second
    # (1,000 records) and waits on the quota. Meanwhile the task reads the next window's
    # rows; a task that did not would leave the shard idle while it reads.
    server = kinesis_server_with(**READS_OFF)
    client = _client(server)
    create_stream(client, "next", 1)
    window = limits.SINK_WINDOW_RECORDS_PER_LANE
    rows = [(b"%06d" % i, f"key-{i % 7}") for i in range(2 * window + 100)]
    schema = pa.schema([("data", pa.binary()), ("partitionKey", pa.string())])
    asked = threading.Event()

    def batches() -> Iterator[pa.RecordBatch]:
        for start in range(0, len(rows), window):
            if start:
                asked.set()  # the rows after the first window are being read
            yield pa.RecordBatch.from_pylist(
                [{"data": d, "partitionKey": k} for d, k in rows[start : start + window]],
                schema=schema,
            )

    opts = parse_sink_options(
        {
            "streamName": "next",
            "region": REGION,
            "endpointUrl": server.endpoint,
            "maxInFlightRequests": "1",
        }
    )
    server.freeze_clock()

    def waits(seconds: float) -> None:
        # Each wait on the quota: the next window is read meanwhile (or has been).
        wait_for(asked.is_set, timeout_s=30, what="the task to read on while it waits")
        server.advance_clock(seconds)

    plan = SinkPlan(opts, ColumnLayout("data", False, "partitionKey", None))
    write_partition(plan, batches(), 0, sleep=waits)

    found = read_stream(client, "next")
    assert Counter((r["partitionKey"], r["data"]) for r in found) == Counter(
        (key, data) for data, key in rows
    )
    by_key: dict[str, list[bytes]] = {}
    for record in found:  # one shard: in the order written
        by_key.setdefault(record["partitionKey"], []).append(record["data"])
    assert all(values == sorted(values) for values in by_key.values())
