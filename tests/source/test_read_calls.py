"""The GetRecords calls of a shard read, seen through a proxy that notes every ``Limit``.

A read capped by maxRecordsPerShard asks GetRecords for no more than the cap leaves: what
a page holds past the cap is thrown away and fetched again by the next batch, and with KPL
aggregates of hundreds of user records that was most of a batch's decoding. And a read
that goes on after a small page makes its next call while that page's rows are still
being taken (read-ahead), with the very calls it would make without. These reads run one
shard's batches one after the other, as the executors would; the rows must still be
exactly the shard's records.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import aggregate, create_stream, put, source_options, wait_for

from kinesis_source.source.executor.shard_reader import read_shard
from kinesis_source.source.options import parse_options
from kinesis_source.source.positions import Position
from kinesis_source.source.tasks import ShardTask
from kinesis_source.stores import open_store
from tests.fault_proxy import FaultProxy


@pytest.fixture
def limits_asked(moto_endpoint: str) -> Iterator[tuple[str, list[int]]]:
    """A proxy in front of moto, and the Limit of every GetRecords call through it."""
    asked: list[int] = []
    proxy = FaultProxy(moto_endpoint)

    def note(body: dict[str, Any]) -> bool:
        asked.append(int(body["Limit"]))
        return False  # never a fault: only watching

    proxy.inject("GetRecords", "throttle", 10**9, match=note)
    endpoint = proxy.start()
    try:
        yield endpoint, asked
    finally:
        proxy.stop()


def read_batches(
    endpoint: str, stream: str, shard: str, tmp_path: Path, batches: int, **extra: str
) -> list[list[tuple[str, int, bytes]]]:
    """Rows (sequence number, sub-sequence number, data) of ``batches`` fresh batches of
    one shard, each starting where the last one's recorded end says."""
    opts = parse_options(source_options(endpoint, stream, str(tmp_path / "store"), **extra))
    store = open_store(opts)
    start, out = Position.trim_horizon(), []
    for batch in range(batches):
        task = ShardTask(batch=batch, stream=stream, query="q", shard_id=shard, start=start)
        rows = []
        for arrow in read_shard(opts, store, task):
            rows.extend(
                zip(
                    arrow.column("sequenceNumber").to_pylist(),
                    arrow.column("subSequenceNumber").to_pylist(),
                    arrow.column("data").to_pylist(),
                    strict=True,
                )
            )
        out.append(rows)
        end = store.get(stream, "q", batch, shard)
        assert end is not None
        start = end.position
    return out


def test_a_capped_read_asks_for_no_more_plain_records_than_its_cap_leaves(
    kinesis: Any, limits_asked: tuple[str, list[int]], stream_name: str, tmp_path: Path
) -> None:
    endpoint, asked = limits_asked
    (shard,) = create_stream(kinesis, stream_name, 1)
    puts = put(kinesis, stream_name, ((f"k{i}", f"r{i}".encode()) for i in range(20)))

    batches = read_batches(
        endpoint, stream_name, shard, tmp_path, 3, maxRecordsPerShard="7", getRecordsLimit="5"
    )

    assert [[data for _, _, data in rows] for rows in batches] == [
        [p["data"] for p in puts[0:7]],
        [p["data"] for p in puts[7:14]],
        [p["data"] for p in puts[14:20]],
    ]
    # Per batch: a full page of 5, then the 2 the cap leaves and one more, which says
    # whether the shard goes on. The last batch finds 6 records where it asked for 8.
    assert asked == [5, 3, 5, 3, 5, 3]


def test_a_capped_read_of_kpl_aggregates_asks_for_about_the_aggregates_it_needs(
    kinesis: Any, limits_asked: tuple[str, list[int]], stream_name: str, tmp_path: Path
) -> None:
    endpoint, asked = limits_asked
    (shard,) = create_stream(kinesis, stream_name, 1)
    users = [[(f"u{a}-{i}", f"a{a}-{i}".encode()) for i in range(10)] for a in range(8)]
    put(kinesis, stream_name, ((f"agg{a}", aggregate(us)) for a, us in enumerate(users)))
    expected = [data for us in users for _, data in us]

    batches = read_batches(
        endpoint, stream_name, shard, tmp_path, 2, maxRecordsPerShard="35", getRecordsLimit="3"
    )

    rows = [row for batch in batches for row in batch]
    assert [len(batch) for batch in batches] == [35, 35]
    assert [data for _, _, data in rows] == expected[:70]
    assert len(set(rows)) == 70
    # Batch 1: 3 aggregates (30 user records), then 5 more wanted at 10 a record: 1 + 1.
    # Batch 2 starts at aggregate 3, 5 of its user records already read, with no page seen
    # yet: the configured 3 (25 rows), then 2 for the 10 left.
    assert asked == [3, 2, 3, 2]


def test_the_next_call_is_made_while_a_pages_rows_are_taken(
    kinesis: Any, limits_asked: tuple[str, list[int]], stream_name: str, tmp_path: Path
) -> None:
    endpoint, asked = limits_asked
    (shard,) = create_stream(kinesis, stream_name, 1)
    puts = put(kinesis, stream_name, ((f"k{i}", f"r{i}".encode()) for i in range(12)))
    opts = parse_options(
        source_options(endpoint, stream_name, str(tmp_path / "store"), getRecordsLimit="5")
    )
    task = ShardTask(
        batch=0, stream=stream_name, query="q", shard_id=shard, start=Position.trim_horizon()
    )
    rows = read_shard(opts, open_store(opts), task)

    first = next(rows)  # the first page's rows: the read waits inside them for Spark
    wait_for(lambda: len(asked) == 2, 30, "the second GetRecords call, made ahead")
    batches = [first, *rows]

    data = [d for batch in batches for d in batch.column("data").to_pylist()]
    assert data == [p["data"] for p in puts]
    # The calls of a read without read-ahead: two full pages, then 2 records where 5 were
    # asked, the shard's tip, after which nothing more is asked.
    assert asked == [5, 5, 5]
