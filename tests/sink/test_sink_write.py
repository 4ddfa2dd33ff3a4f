"""The sink against kinesis-local over HTTP: batch writes, aggregation, partial failures from
the fault proxy (tests/fault_proxy.py imitates AWS's HTTP 200 + FailedRecordCount answer),
exhausted retries, per-key order with preserveOrder, and bad input."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from kinesis_source.aws.clients import kinesis_client
from kinesis_source.aws.retry import policy_of
from kinesis_source.errors import KinesisReadError, KinesisWriteError
from kinesis_source.sink.batching import Entry, record_size
from kinesis_source.sink.options import parse_sink_options
from kinesis_source.sink.put_records import LaneSender, PutStats
from kinesis_source.sink.shard_map import hash_key_of
from tests.fault_proxy import FaultProxy
from tests.helpers import REGION, create_stream, read_stream, shard_of

pytestmark = pytest.mark.spark

SCHEMA = "data binary, partitionKey string, explicitHashKey string"


def sink_options(endpoint: str, stream: str, **extra: str) -> dict[str, str]:
    return {
        "streamName": stream,
        "region": REGION,
        "endpointUrl": endpoint,
        "retryBaseDelayMs": "1",
        "retryMaxDelayMs": "20",
        **extra,
    }


def write(
    spark: Any, rows: list[tuple[Any, ...]], options: dict[str, str], *, tasks: int = 2
) -> None:
    df = spark.createDataFrame(rows, SCHEMA).coalesce(tasks)
    df.write.format("kinesis").options(**options).mode("append").save()


@pytest.fixture
def proxied(kinesis_local_endpoint: str) -> Iterator[tuple[FaultProxy, str]]:
    """A fault proxy in front of kinesis-local, and its URL."""
    fault_proxy = FaultProxy(kinesis_local_endpoint)
    url = fault_proxy.start()
    try:
        yield fault_proxy, url
    finally:
        fault_proxy.stop()


def user_records(found: list[dict[str, Any]]) -> Counter[tuple[str, bytes]]:
    return Counter((r["partitionKey"], r["data"]) for r in found)


@pytest.mark.parametrize("aggregate", ["false", "true"])
@pytest.mark.lowest  # pyspark 4.2: the sink on the oldest Spark supported
def test_batch_write_lands_every_row_on_the_shard_of_its_key_or_hash_key(
    spark: Any, kinesis_local: Any, kinesis_local_endpoint: str, stream_name: str, aggregate: str
) -> None:
    create_stream(kinesis_local, stream_name, 3)
    top = 2**128 - 1
    rows: list[tuple[bytes, str, str | None]] = [
        (b"v%d" % i, f"key-{i % 7}", None) for i in range(60)
    ]
    rows += [(b"h%d" % i, "same-key", str(top // 20 * i)) for i in range(20)]
    rows += [(b"", "empty", None), (bytes(range(256)), "bytes", str(top))]
    write(spark, rows, sink_options(kinesis_local_endpoint, stream_name, aggregate=aggregate))

    found = read_stream(kinesis_local, stream_name)
    assert user_records(found) == Counter((key, data) for data, key, _ in rows)
    hash_keys = {(key, data): hash_key for data, key, hash_key in rows}
    for record in found:
        wanted = hash_keys[(record["partitionKey"], record["data"])]
        # Plain records: Kinesis returns no hash key, their shard shows it was used.
        assert record["shardId"] == shard_of(
            kinesis_local, stream_name, hash_key_of(record["partitionKey"], wanted)
        )
        if record["subSequenceNumber"] is not None:
            assert record["explicitHashKey"] == wanted
    aggregated = [r for r in found if r["subSequenceNumber"] is not None]
    assert bool(aggregated) == (aggregate == "true")
    if aggregate == "true":
        assert len({r["sequenceNumber"] for r in found}) < len(found) / 5


def every_third(entries: list[dict[str, Any]]) -> list[int]:
    return list(range(0, len(entries), 3))


def test_rejected_entries_are_retried_nothing_lost_or_duplicated(
    spark: Any, kinesis_local: Any, stream_name: str, proxied: tuple[FaultProxy, str]
) -> None:
    create_stream(kinesis_local, stream_name, 2)
    proxy, endpoint = proxied
    # Throttled entries in every call for a while, then some internal failures, KMS
    # throttling, and calls failing as a whole.
    proxy.fail_entries(6, every_third)
    proxy.fail_entries(2, every_third, kind="internal")
    proxy.fail_entries(2, every_third, kind="kms-throttle")
    proxy.inject("PutRecords", "5xx", 2)
    rows = [(b"r%d" % i, f"k{i % 11}", None) for i in range(300)]
    write(spark, rows, sink_options(endpoint, stream_name, maxInFlightRequests="2"))

    assert user_records(read_stream(kinesis_local, stream_name)) == Counter(
        (key, data) for data, key, _ in rows
    )
    assert proxy.faults["PutRecords"] == 12
    assert proxy.requests["PutRecords"] > 12


@pytest.mark.parametrize(
    ("kind", "code", "gives_up"),
    [
        # Other refusals: after maxRetries calls in a row that wrote nothing.
        ("internal", "InternalFailure", "after 2 retries (maxRetries=2)"),
        # Throttles: after as long a stall as maxRetries retries may wait (1 + 2 ms here).
        ("throttle", "ProvisionedThroughputExceededException", "over the write quota after"),
    ],
)
def test_exhausted_retries_fail_with_the_count_and_the_error_codes(
    spark: Any,
    kinesis_local: Any,
    stream_name: str,
    proxied: tuple[FaultProxy, str],
    kind: str,
    code: str,
    gives_up: str,
) -> None:
    create_stream(kinesis_local, stream_name, 1)
    proxy, endpoint = proxied
    proxy.fail_entries(100, lambda entries: list(range(len(entries))), kind=kind)
    rows = [(b"r%d" % i, "k", None) for i in range(7)]
    with pytest.raises(Exception) as info:
        write(spark, rows, sink_options(endpoint, stream_name, maxRetries="2"), tasks=1)
    message = str(info.value)
    assert f"7 records still failed {gives_up}" in message
    assert "(maxRetries=2)" in message
    assert f"{code} x7" in message
    assert read_stream(kinesis_local, stream_name) == []
    if kind == "internal":
        assert proxy.requests["PutRecords"] == 3
    else:  # short waits, not growing: more calls in the same time
        assert proxy.requests["PutRecords"] > 3


def test_a_put_records_call_failing_past_its_retries_is_a_write_error(
    kinesis_local: Any, stream_name: str, proxied: tuple[FaultProxy, str]
) -> None:
    # A user who catches the sink's errors catches KinesisWriteError: a call that fails as a
    # whole (5xx) until the retries run out is one, never a read error.
    create_stream(kinesis_local, stream_name, 1)
    proxy, endpoint = proxied
    proxy.inject("PutRecords", "5xx", 3)
    opts = parse_sink_options(sink_options(endpoint, stream_name, maxRetries="2"))
    sender = LaneSender(
        kinesis_client(opts),
        stream_name,
        policy_of(opts),
        one_per_key=False,
        stats=PutStats(),
        abort=threading.Event(),
        sleep=lambda _: None,
    )
    with pytest.raises(KinesisWriteError) as info:
        sender.send([Entry(b"r0", "k", None, record_size(b"r0", "k"), "k")])
    assert not isinstance(info.value, KinesisReadError)
    assert "PutRecords on stream" in str(info.value)
    assert "failed after 3 attempts (maxRetries=2)" in str(info.value)
    assert info.value.stream == stream_name
    assert proxy.requests["PutRecords"] == 3
    assert read_stream(kinesis_local, stream_name) == []


def test_a_rejection_no_retry_fixes_fails_at_once(
    spark: Any, kinesis_local: Any, stream_name: str, proxied: tuple[FaultProxy, str]
) -> None:
    create_stream(kinesis_local, stream_name, 1)
    proxy, endpoint = proxied
    proxy.fail_entries(1, lambda entries: [1], kind="kms-denied")
    rows = [(b"r%d" % i, "k", None) for i in range(4)]
    with pytest.raises(Exception, match="1 records were rejected with errors no retry fixes"):
        write(spark, rows, sink_options(endpoint, stream_name), tasks=1)
    assert proxy.requests["PutRecords"] == 1
    # The rest of the call was written (at least once: a rerun writes them again).
    assert [r["data"] for r in read_stream(kinesis_local, stream_name)] == [b"r0", b"r2", b"r3"]


@pytest.mark.parametrize("preserve", [True, False])
def test_preserve_order_keeps_per_key_order_under_throttling(
    spark: Any,
    kinesis_local: Any,
    stream_name: str,
    proxied: tuple[FaultProxy, str],
    preserve: bool,
) -> None:
    create_stream(kinesis_local, stream_name, 1)
    proxy, endpoint = proxied
    proxy.fail_entries(6, every_third)
    rows = [(b"%d" % i, f"key-{i % 4}", None) for i in range(120)]
    options = sink_options(endpoint, stream_name, preserveOrder=str(preserve).lower())
    write(spark, rows, options, tasks=1)

    found = read_stream(kinesis_local, stream_name)
    assert user_records(found) == Counter((key, data) for data, key, _ in rows)
    by_key: dict[str, list[int]] = {}
    for record in found:  # one shard: in sequence-number order
        by_key.setdefault(record["partitionKey"], []).append(int(record["data"]))
    in_order = all(values == sorted(values) for values in by_key.values())
    # Without preserveOrder the same faults do reorder: the check above can fail.
    assert in_order is preserve


def test_without_a_partition_key_column_each_record_gets_a_random_key(
    spark: Any, kinesis_local: Any, kinesis_local_endpoint: str, stream_name: str
) -> None:
    create_stream(kinesis_local, stream_name, 2)
    df = spark.createDataFrame([(f"v{i}",) for i in range(40)], "data string")
    df.write.format("kinesis").options(**sink_options(kinesis_local_endpoint, stream_name)).mode(
        "append"
    ).save()

    found = read_stream(kinesis_local, stream_name)
    assert sorted(r["data"] for r in found) == sorted(f"v{i}".encode() for i in range(40))
    keys = {r["partitionKey"] for r in found}
    assert len(keys) == 40
    assert all(len(k) == 32 and int(k, 16) >= 0 for k in keys)
    assert {r["shardId"] for r in found} == {
        s["ShardId"] for s in kinesis_local.list_shards(StreamName=stream_name)["Shards"]
    }
