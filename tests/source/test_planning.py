"""Driver-side planning against moto over HTTP, without Spark: how many Kinesis calls an
idle trigger costs, and that new data on one shard of many plans only that shard."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql.streaming.datasource import ReadAllAvailable, ReadMaxRows

from kinesis_source.aws.clients import kinesis_client
from kinesis_source.source.options import parse_options
from kinesis_source.source.positions import QueryOffset
from kinesis_source.source.stream_reader import KinesisStreamReader
from tests.helpers import create_stream, source_options

HANDLER_ID = "tests.source.test_planning.count_calls"


@pytest.fixture
def reader(kinesis: Any, moto_endpoint: str, stream_name: str, tmp_path: Path) -> Any:
    create_stream(kinesis, stream_name, 3)
    opts = parse_options(source_options(moto_endpoint, stream_name, str(tmp_path / "store")))
    return KinesisStreamReader(opts)


@pytest.fixture
def calls(reader: Any) -> Iterator[Counter[str]]:
    """Kinesis API calls the driver makes, by operation name."""
    counter: Counter[str] = Counter()
    events = kinesis_client(reader.opts).meta.events

    def count(model: Any, **_: Any) -> None:
        counter[model.name] += 1

    events.register("before-call.kinesis", count, unique_id=HANDLER_ID)
    try:
        yield counter
    finally:
        events.unregister("before-call.kinesis", unique_id=HANDLER_ID)


def test_an_idle_trigger_costs_one_get_records_per_shard_once_iterators_are_known(
    reader: Any, calls: Counter[str]
) -> None:
    start = reader.initialOffset()
    assert reader.latestOffset(start, ReadAllAvailable()) is start
    calls.clear()
    assert reader.latestOffset(start, ReadAllAvailable()) is start
    assert calls == Counter({"GetRecords": 3})


def test_new_data_on_one_shard_of_three_plans_only_that_shard(
    reader: Any, kinesis: Any, stream_name: str
) -> None:
    start = reader.initialOffset()
    assert reader.latestOffset(start, ReadAllAvailable()) is start
    shard = kinesis.put_record(StreamName=stream_name, PartitionKey="k", Data=b"x")["ShardId"]
    end = reader.latestOffset(start, ReadMaxRows(10))
    offset = QueryOffset.from_json(end).streams[stream_name]
    assert offset.planned_shards() == [shard]
    assert offset.limits[shard] == 10
    partitions = reader.partitions(start, end)
    assert [[t.shard_id for t in p.tasks] for p in partitions] == [[shard]]
    assert partitions[0].tasks[0].max_records == 10


def test_an_idle_shard_is_probed_at_most_every_fetch_interval(
    kinesis: Any, moto_endpoint: str, stream_name: str, tmp_path: Path
) -> None:
    create_stream(kinesis, stream_name, 2)
    options = source_options(
        moto_endpoint, stream_name, str(tmp_path / "store"), fetchIntervalMs="60000"
    )
    paced = KinesisStreamReader(parse_options(options))
    counter: Counter[str] = Counter()
    events = kinesis_client(paced.opts).meta.events

    def count(model: Any, **_: Any) -> None:
        counter[model.name] += 1

    events.register("before-call.kinesis", count, unique_id=HANDLER_ID + ".paced")
    try:
        start = paced.initialOffset()
        counter.clear()
        for _ in range(10):  # a tight trigger loop on an idle stream
            assert paced.latestOffset(start, ReadAllAvailable()) is start
        assert counter["GetRecords"] == 2  # one probe per shard, not ten
        shard = kinesis.put_record(StreamName=stream_name, PartitionKey="k", Data=b"x")
        # Within the interval the new record waits; a fresh reader (a restart) sees it.
        fresh = KinesisStreamReader(parse_options(options))
        assert fresh.latestOffset(start, ReadAllAvailable()) is not start
        assert shard["ShardId"]
    finally:
        events.unregister("before-call.kinesis", unique_id=HANDLER_ID + ".paced")
