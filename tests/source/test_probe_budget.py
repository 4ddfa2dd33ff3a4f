"""The driver's probe budget, flowing shards and probes that a batch does not wait for,
against moto over HTTP, without Spark: the driver's loop is run by hand (``latestOffset``,
then the partitions read in this process, as executors would, store entries included)."""

from __future__ import annotations

import contextlib
import pickle
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pyspark.sql.streaming.datasource import ReadAllAvailable

from kinesis_source.aws.clients import kinesis_client
from kinesis_source.source.options import parse_options
from kinesis_source.source.positions import QueryOffset
from kinesis_source.source.stream_reader import KinesisStreamReader
from tests.fault_proxy import FaultProxy
from tests.helpers import create_stream, source_options

HANDLER_ID = "tests.source.test_probe_budget.count"
LOW_HASH_KEY = "1"  # the first shard of an evenly split stream
HIGH_HASH_KEY = str(2**128 - 2)  # the last


def put_to(client: Any, stream: str, hash_key: str, data: bytes) -> str:
    resp = client.put_record(
        StreamName=stream, PartitionKey="k", ExplicitHashKey=hash_key, Data=data
    )
    return str(resp["ShardId"])


def trigger(reader: KinesisStreamReader, start: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """One trigger: the next offset and the shards its batch reads (none: no batch)."""
    end = reader.latestOffset(start, ReadAllAvailable())
    if end == start:
        return start, []
    planned = [t.shard_id for p in reader.partitions(start, end) for t in p.tasks]
    return end, planned


def run_batch(
    reader: KinesisStreamReader, start: dict[str, Any], end: dict[str, Any]
) -> list[bytes]:
    """What the batch from ``start`` to ``end`` reads, as its tasks would."""
    rows: list[bytes] = []
    for partition in reader.partitions(start, end):
        for batch in reader.read(partition):
            rows.extend(batch.column("data").to_pylist())
    return rows


@contextlib.contextmanager
def watching(reader: KinesisStreamReader) -> Iterator[list[tuple[str, dict[str, Any]]]]:
    """Every Kinesis call the driver makes in this process, with its parameters."""
    seen: list[tuple[str, dict[str, Any]]] = []
    events = kinesis_client(reader.opts).meta.events

    def count(params: dict[str, Any], model: Any, **_: Any) -> None:
        seen.append((model.name, dict(params)))

    events.register("before-parameter-build.kinesis", count, unique_id=HANDLER_ID)
    try:
        yield seen
    finally:
        events.unregister("before-parameter-build.kinesis", unique_id=HANDLER_ID)


def test_a_trigger_probes_its_budget_oldest_first_and_finds_new_data_within_the_rotation(
    kinesis: Any, moto_endpoint: str, stream_name: str, tmp_path: Path
) -> None:
    shards = create_stream(kinesis, stream_name, 5)
    options = source_options(
        moto_endpoint, stream_name, str(tmp_path / "store"), maxProbesPerTrigger="2"
    )
    reader = KinesisStreamReader(parse_options(options))
    start = reader.initialOffset()
    iterators: list[list[str]] = []
    with watching(reader) as calls:
        for _ in range(3):
            calls.clear()
            assert trigger(reader, start) == (start, [])
            assert Counter(name for name, _ in calls)["GetRecords"] == 2
            iterators.append([p["ShardId"] for name, p in calls if name == "GetShardIterator"])
    # Never-probed shards first, by id; then the one probed longest ago (its iterator kept).
    assert iterators == [shards[0:2], shards[2:4], shards[4:5]]
    # New data on a shard probed a moment ago is found within ceil(5 / 2) triggers.
    found = put_to(kinesis, stream_name, HIGH_HASH_KEY, b"late")
    assert found == shards[4]
    planned: list[list[str]] = [trigger(reader, start)[1] for _ in range(3)]
    assert [found] in planned


def test_a_flowing_shard_is_read_without_a_probe_and_one_empty_batch_follows_its_end(
    kinesis: Any, moto_endpoint: str, stream_name: str, tmp_path: Path
) -> None:
    [shard] = create_stream(kinesis, stream_name, 1)
    reader = KinesisStreamReader(
        parse_options(source_options(moto_endpoint, stream_name, str(tmp_path / "store")))
    )
    start = reader.initialOffset()
    read: list[bytes] = []
    with watching(reader) as calls:
        for i in range(4):
            put_to(kinesis, stream_name, LOW_HASH_KEY, f"r{i}".encode())
            calls.clear()
            end, planned = trigger(reader, start)
            assert planned == [shard]
            # Two reads in a row found records: from the third batch on, no probe.
            assert Counter(name for name, _ in calls)["GetRecords"] == (1 if i < 2 else 0)
            read += run_batch(reader, start, end)
            start = end
        assert read == [b"r0", b"r1", b"r2", b"r3"]
        # The stream stops: the flowing shard is read once more, finding nothing, then it
        # is probed again.
        end, planned = trigger(reader, start)
        assert planned == [shard]
        assert run_batch(reader, start, end) == []
        for _ in range(3):
            calls.clear()
            assert trigger(reader, end) == (end, [])
            assert Counter(name for name, _ in calls)["GetRecords"] == 1


def test_a_batch_with_a_backlog_is_planned_while_idle_shards_are_still_probed(
    kinesis: Any, moto_endpoint: str, stream_name: str, tmp_path: Path
) -> None:
    shards = create_stream(kinesis, stream_name, 2)
    for i in range(4):
        put_to(kinesis, stream_name, LOW_HASH_KEY, f"a{i}".encode())
    proxy = FaultProxy(moto_endpoint, delay_seconds=4.0)
    endpoint = proxy.start()
    try:
        options = source_options(
            endpoint, stream_name, str(tmp_path / "store"), maxRecordsPerShard="2"
        )
        reader = KinesisStreamReader(parse_options(options))
        start = reader.initialOffset()
        end, planned = trigger(reader, start)
        assert planned == [shards[0]]
        assert run_batch(reader, start, end) == [b"a0", b"a1"]  # capped: a backlog
        start = end
        # Shard 1 gets a record, and its next probe is slow to answer.
        put_to(kinesis, stream_name, HIGH_HASH_KEY, b"b0")
        proxy.inject("GetRecords", "delay", 1, match=lambda body: int(body["Limit"]) == 1)
        end, planned = trigger(reader, start)
        # Planned at once for the backlog: shard 1's probe has not answered yet.
        assert planned == [shards[0]]
        # Spark pickles the reader for its tasks: a probe in flight does not travel.
        task_side = pickle.loads(pickle.dumps(reader))
        assert run_batch(task_side, start, end) == [b"a2", b"a3"]  # the backlog's end
        start = end
        # Nothing is known now, so this trigger waits for the slow probe, whose finding counts.
        end, planned = trigger(reader, start)
        assert proxy.faults["GetRecords"] == 1
        assert planned == [shards[1]]
        assert run_batch(reader, start, end) == [b"b0"]
        assert QueryOffset.from_json(end).batch == 3
    finally:
        proxy.stop()
