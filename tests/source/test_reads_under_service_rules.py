"""One shard read on an executor against each rule of the Kinesis test server, no Spark.

``read_shard`` (source/executor/shard_reader.py) runs here as an executor runs it: a
``ShardTask``, the options, a file checkpoint store, batch after batch, each starting where
the last one's recorded end says. The server (tests/emulators/kinesis_server.py) keeps one
AWS rule per test (``kinesis_server_with``; rules that would only slow a test down are
turned off, never the one under test) and counts the calls (``stats()``). Each test asserts
the exact records, in shard order, nothing lost and nothing read twice, and the calls the
rule implies. Time moves by the server's clock (``freeze_clock``, ``advance_clock``); no
test sleeps.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pyarrow as pa
import pytest

from kinesis_source.aws.clients import kinesis_client
from kinesis_source.aws.retry import policy_of
from kinesis_source.errors import DataLossError
from kinesis_source.source.driver.discovery import list_shards
from kinesis_source.source.driver.pacing import ShardPacing
from kinesis_source.source.executor.shard_reader import read_shard
from kinesis_source.source.options import KinesisOptions, parse_options
from kinesis_source.source.positions import AT_TIMESTAMP, Position, ShardEnd
from kinesis_source.source.tasks import ShardTask
from kinesis_source.stores import CheckpointStore, open_store
from tests.emulators.kinesis_server import KinesisServer
from tests.helpers import REGION, put, source_options

Start = Callable[..., KinesisServer]
SHARD = "shardId-000000000000"
# Throttles that only make a test slower when it is about another rule (5 calls/s would
# stretch a 60-call walk over 12 s), or that a frozen clock would never lift.
NO_THROTTLES: dict[str, Any] = {
    "get_records_calls_per_s": None,
    "read_bytes_per_s": None,
    "get_shard_iterator_calls_per_s": None,
}
Row = tuple[str, int, bytes]  # (sequence number, sub-sequence number, data)


class ShardReads:
    """Batches of one shard read as the executors read them, with a file store."""

    def __init__(self, server: KinesisServer, stream: str, tmp_path: Path, **extra: str) -> None:
        self.server = server
        self.stream = stream
        self.kinesis = boto3.client("kinesis", region_name=REGION, endpoint_url=server.endpoint)
        self.kinesis.create_stream(StreamName=stream, ShardCount=1)
        self.opts: KinesisOptions = parse_options(
            source_options(server.endpoint, stream, str(tmp_path / "store"), **extra)
        )
        self.store: CheckpointStore = open_store(self.opts)

    def put(self, count: int, size: int = 0, first: int = 0) -> list[dict[str, Any]]:
        return put(
            self.kinesis,
            self.stream,
            ((f"k{i}", f"r{i}".encode().ljust(size, b".")) for i in range(first, first + count)),
        )

    def task(self, batch: int, start: Position, **fields: Any) -> ShardTask:
        return ShardTask(
            batch=batch, stream=self.stream, query="q", shard_id=SHARD, start=start, **fields
        )

    def rows(self, task: ShardTask) -> list[Row]:
        return rows_of(read_shard(self.opts, self.store, task))

    def end(self, batch: int) -> ShardEnd:
        end = self.store.get(self.stream, "q", batch, SHARD)
        assert end is not None, f"batch {batch} recorded no end"
        return end

    def batches(self, count: int, **fields: Any) -> list[list[Row]]:
        """``count`` fresh batches from TRIM_HORIZON, each from the last one's end."""
        start, out = Position.trim_horizon(), []
        for batch in range(count):
            out.append(self.rows(self.task(batch, start, **fields)))
            start = self.end(batch).position
        return out


def rows_of(arrow_batches: Iterator[pa.RecordBatch]) -> list[Row]:
    rows: list[Row] = []
    for arrow in arrow_batches:
        rows.extend(
            zip(
                arrow.column("sequenceNumber").to_pylist(),
                arrow.column("subSequenceNumber").to_pylist(),
                arrow.column("data").to_pylist(),
                strict=True,
            )
        )
    return rows


def expected(puts: list[dict[str, Any]]) -> list[Row]:
    return [(p["sequenceNumber"], 0, p["data"]) for p in puts]


def get_records_served(server: KinesisServer) -> int:
    """GetRecords calls on stream s's shard answered with a page (refused ones not counted)."""
    return int(server.stats()["get_records_per_shard"].get(f"s/{SHARD}", 0))


# -- throttling ([Q], [GR]): refused calls are retried with backoff, nothing is lost


def test_get_records_beyond_five_calls_a_second_back_off_and_lose_nothing(
    kinesis_server_with: Start, tmp_path: Path
) -> None:
    """Without the retry of ProvisionedThroughputExceededException (aws/retry.py
    THROTTLING_CODES) the sixth call in a second fails the read."""
    server = kinesis_server_with(read_bytes_per_s=None)
    reads = ShardReads(server, "s", tmp_path, getRecordsLimit="2")
    puts = reads.put(14)

    (rows,) = reads.batches(1)

    assert rows == expected(puts)
    stats = server.stats()
    # Seven full pages of two, then the tip: eight pages served, each once.
    assert stats["get_records_per_shard"] == {f"s/{SHARD}": 8}
    assert stats["records_served"] == 14
    assert stats["throttled"].get("GetRecords", 0) >= 1
    assert stats["get_records_max_per_shard_1s"] <= 5
    assert reads.end(0).caught_up


def test_reads_beyond_the_read_rate_back_off_and_lose_nothing(
    kinesis_server_with: Start, tmp_path: Path
) -> None:
    """[GR]'s 2 MiB/s, scaled down to 128 KiB/s so that the test stays small: a 32 KiB
    page keeps the shard's next call out for 250 ms. The read's calls come sooner and are
    refused; it retries them (aws/retry.py, as for the calls/s throttle, which is off)."""
    server = kinesis_server_with(get_records_calls_per_s=None, read_bytes_per_s=128 * 1024)
    reads = ShardReads(server, "s", tmp_path, getRecordsLimit="2")
    puts = reads.put(8, size=16 * 1024)

    (rows,) = reads.batches(1)

    assert rows == expected(puts)
    stats = server.stats()
    assert stats["get_records_per_shard"] == {f"s/{SHARD}": 5}  # four full pages, the tip
    assert stats["records_served"] == 8  # no page was served twice
    assert stats["throttled"].get("GetRecords", 0) >= 1


def test_a_paced_read_waits_out_the_read_quota_its_pages_spend_and_is_never_refused(
    kinesis_server_with: Start, tmp_path: Path
) -> None:
    """[GR]'s 2 MiB/s, as AWS has it: after a page of B bytes the shard refuses calls for
    B / 2 MiB/s. With pacing on (fetchIntervalMs 200 ms), a read ends after a page whose
    wait is longer than the interval (waiting would keep a task slot asleep) and records
    the wait; the driver's pacing (ShardPacing) holds the next batch's first call back by
    it. No call is refused, nothing is lost or read twice. Without the wait the read's
    second call comes 200 ms after a 1 MiB page and is refused."""
    server = kinesis_server_with(write_records_per_s=None, write_bytes_per_s=None)
    reads = ShardReads(server, "s", tmp_path, getRecordsLimit="2", fetchIntervalMs="200")
    puts = reads.put(6, size=500 * 1024)
    pacing = ShardPacing()
    start, rows, ends = Position.trim_horizon(), [], []
    for batch in range(4):
        now_ms = int(time.time() * 1000)
        task = reads.task(batch, start, not_before_ms=pacing.not_before_ms(SHARD, now_ms, 200))
        rows.append(reads.rows(task))
        ends.append(reads.end(batch))
        pacing.saw_batch(batch, {SHARD: ends[-1]}, int(time.time() * 1000))
        start = ends[-1].position

    assert [r for batch_rows in rows for r in batch_rows] == expected(puts)
    # Two records (1 MB) a page: each read takes one page, then waits for a later batch.
    assert [len(r) for r in rows] == [2, 2, 2, 0]
    assert all(e.quota_wait_ms > 0 and not e.caught_up for e in ends[:2])
    stats = server.stats()
    assert stats["throttled"].get("GetRecords", 0) == 0
    assert stats["records_served"] == 6


# -- iterator expiry ([GSI])


def test_an_expired_iterator_is_renewed_where_the_read_stands(
    kinesis_server_with: Start, tmp_path: Path
) -> None:
    """The iterators of a read age past their 5 s while the read's first page is with
    Spark. Without the ExpiredIteratorException branch of get_records.py the read fails;
    an iterator renewed at the read's start would read the first page twice."""
    server = kinesis_server_with(iterator_ttl_s=5, **NO_THROTTLES)
    reads = ShardReads(server, "s", tmp_path, getRecordsLimit="3")
    puts = reads.put(12)
    server.freeze_clock()

    batches = read_shard(reads.opts, reads.store, reads.task(0, Position.trim_horizon()))
    first = rows_of(iter([next(batches)]))  # the first page's rows; the read waits in them
    server.advance_clock(6)
    rows = first + rows_of(batches)

    assert first == expected(puts[:3])
    assert rows == expected(puts)
    stats = server.stats()
    assert stats["calls"]["GetShardIterator"] == 2  # the start, and once renewed
    assert stats["records_served"] == 12
    assert reads.end(0).position == Position.after(puts[-1]["sequenceNumber"])


# -- iterators kept between batches (executor/kept_iterators.py): no GetShardIterator when
# the next batch starts where the last read's NextShardIterator reads on from


def test_the_next_batch_goes_on_from_the_iterator_the_last_read_kept(
    kinesis_server_with: Start, tmp_path: Path
) -> None:
    server = kinesis_server_with(**NO_THROTTLES)
    reads = ShardReads(server, "s", tmp_path)
    puts = reads.put(4)
    start, rows = Position.trim_horizon(), []
    for batch, more in enumerate([0, 3, 0, 2]):
        puts += reads.put(more, first=len(puts))
        rows += reads.rows(reads.task(batch, start))
        start = reads.end(batch).position
    assert rows == expected(puts)
    # One GetShardIterator, at the first batch's start; an empty batch keeps its iterator.
    assert server.stats()["calls"]["GetShardIterator"] == 1
    # A batch that starts elsewhere (as a restart from an older checkpoint would) asks for
    # an iterator of its own and reads exactly from there.
    assert reads.rows(reads.task(4, reads.end(1).position)) == expected(puts[7:])
    assert server.stats()["calls"]["GetShardIterator"] == 2


def test_a_read_stopped_within_its_page_keeps_no_iterator(
    kinesis_server_with: Start, tmp_path: Path
) -> None:
    """The page's NextShardIterator lies past the records the cap left for the next batch."""
    server = kinesis_server_with(**NO_THROTTLES)
    reads = ShardReads(server, "s", tmp_path, maxRecordsPerShard="2")
    puts = reads.put(5)
    assert reads.batches(3) == [expected(puts[0:2]), expected(puts[2:4]), expected(puts[4:5])]
    # The first batch's Limit is 10,000 (no page seen yet): its page holds all 5 records.
    # Each later one asks for the cap plus one, so its page ends past the cap too.
    assert server.stats()["calls"]["GetShardIterator"] == 3


def test_a_kept_iterator_kinesis_has_expired_costs_a_fresh_one_where_the_read_stands(
    kinesis_server_with: Start, tmp_path: Path
) -> None:
    """Kinesis' clock moved past the kept iterator's 5 minutes while the worker's did not
    (a long pause between batches, clocks apart): the read renews it at its start."""
    server = kinesis_server_with(**NO_THROTTLES)
    reads = ShardReads(server, "s", tmp_path)
    puts = reads.put(3)
    server.freeze_clock()
    assert reads.rows(reads.task(0, Position.trim_horizon())) == expected(puts)
    puts += reads.put(2, first=3)
    server.advance_clock(301)
    assert reads.rows(reads.task(1, reads.end(0).position)) == expected(puts[3:])
    stats = server.stats()
    assert stats["calls"]["GetShardIterator"] == 2
    assert stats["records_served"] == 5


# -- page caps ([GR]): a page cut short by the service is not the tip


@pytest.mark.parametrize(
    "cap", [{"page_max_records": 3}, {"page_max_bytes": 1_000}], ids=["records", "bytes"]
)
def test_pages_the_service_cuts_short_are_followed_to_the_tip_in_one_read(
    kinesis_server_with: Start, tmp_path: Path, cap: dict[str, int]
) -> None:
    """The server caps pages at 3 records, or at 1,000 bytes of 300-byte records (10,000
    records and 10 MiB on AWS, where asking Limit=10,000 still brings less): each page
    holds fewer records than asked, yet MillisBehindLatest > 0 says the shard goes on.
    A reader that took a short page for the tip (``StopRules.at_tip`` without its
    MillisBehindLatest == 0) would end the batch after 3 records."""
    server = kinesis_server_with(**cap)
    reads = ShardReads(server, "s", tmp_path)
    puts = reads.put(10, size=298)

    (rows,) = reads.batches(1)

    assert rows == expected(puts)
    assert server.stats()["get_records_per_shard"] == {f"s/{SHARD}": 4}  # 3 + 3 + 3 + 1
    end = reads.end(0)
    assert end.caught_up and end.records == 10


# -- sequence numbers ([GSI]): 56 digits, compared as integers


def test_56_digit_sequence_numbers_bound_a_replay_exactly(
    kinesis_server_with: Start, tmp_path: Path
) -> None:
    """A replay stops at its recorded end by comparing the page's sequence numbers with it
    (``StopRules.consume``). They are 56 digits, beyond 64 bits, and a float keeps none of
    the digits that tell one record from the next: compared as floats (``key=float`` in
    ``consume``'s bisect) the replay of batch 0 emits all ten records."""
    server = kinesis_server_with()
    reads = ShardReads(server, "s", tmp_path, maxRecordsPerShard="4")
    puts = reads.put(10)
    assert all(len(p["sequenceNumber"]) == 56 for p in puts)
    assert int(puts[0]["sequenceNumber"]) > 2**64

    batches = reads.batches(3)
    replay = reads.rows(reads.task(0, Position.trim_horizon()))

    assert batches == [expected(puts[0:4]), expected(puts[4:8]), expected(puts[8:10])]
    assert replay == batches[0]


# -- ListShards paging ([LS])


def test_discovery_follows_next_token_through_every_page(
    kinesis_server_with: Start, tmp_path: Path
) -> None:
    """Pages of two shards (MaxResults' default is 1,000 on AWS, 2 here): the listing of a
    4-shard stream after a split must hold all six shards, the closed parent and its
    children included. Without the NextToken loop of aws/kinesis.py list_shards it holds
    the first two."""
    server = kinesis_server_with(list_shards_default=2)
    kinesis = boto3.client("kinesis", region_name=REGION, endpoint_url=server.endpoint)
    kinesis.create_stream(StreamName="s", ShardCount=4)
    kinesis.split_shard(StreamName="s", ShardToSplit=SHARD, NewStartingHashKey=str(2**125))
    opts = parse_options(source_options(server.endpoint, "s", str(tmp_path / "store")))
    server.reset_stats()

    shards = list_shards(kinesis_client(opts), opts.stream_ref("s"), REGION, policy_of(opts))

    assert [s.shard_id for s in shards] == [f"shardId-{i:012d}" for i in range(6)]
    assert [s.shard_id for s in shards if s.closed] == [SHARD]
    assert [s.parents for s in shards[4:]] == [(SHARD,), (SHARD,)]
    assert server.stats()["calls"] == {"ListShards": 3}


# -- retention ([RET])


@pytest.mark.parametrize("fail_on_data_loss", [True, False])
def test_a_replay_whose_records_the_retention_trimmed_is_data_loss(
    kinesis_server_with: Start,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    fail_on_data_loss: bool,
) -> None:
    """Batch 0 read records 0-2 from TRIM_HORIZON; before its replay the retention (60 s)
    trims records 0-4. TRIM_HORIZON now resolves to record 5: without the first record
    kept in the store and checked (replay_check.py) the replay emits nothing and says
    nothing, and records 0-2 are lost silently. failOnDataLoss=true fails the replay;
    false logs the loss, and the replay still emits nothing past its recorded end."""
    server = kinesis_server_with(retention_s=60, **NO_THROTTLES)
    server.freeze_clock()
    reads = ShardReads(
        server,
        "s",
        tmp_path,
        maxRecordsPerShard="3",
        failOnDataLoss=str(fail_on_data_loss).lower(),
    )
    early = reads.put(5)
    server.advance_clock(30)
    reads.put(5, first=5)

    (batch0,) = reads.batches(1)
    assert batch0 == expected(early[:3])
    assert reads.end(0).first_sequence == early[0]["sequenceNumber"]
    server.advance_clock(40)  # records 0-4 are 70 s old now, 5-9 40 s

    replay = reads.task(0, Position.trim_horizon())
    if fail_on_data_loss:
        with pytest.raises(DataLossError, match=early[0]["sequenceNumber"]):
            reads.rows(replay)
        return
    with caplog.at_level(logging.WARNING, logger="kinesis_source"):
        assert reads.rows(replay) == []
    assert [r for r in caplog.records if early[0]["sequenceNumber"] in r.getMessage()]


# -- closed shards ([GR], [RS]): both shapes of the end


@pytest.mark.parametrize("end_shape", ["separate", "with_records"])
def test_a_closed_shard_is_read_to_its_end_in_either_shape(
    kinesis_server_with: Start, tmp_path: Path, end_shape: str
) -> None:
    """The task says the shard is closed (``ShardTask.closed``, from the driver's
    listing). "with_records": the last records come with the end, one call. "separate":
    they come with a NextShardIterator and MillisBehindLatest 0, and the end in a second,
    empty call; without ``closed`` in ``StopRules.at_tip`` the read stops there "caught
    up" at its last record, and the children wait for a later probe. Our reader needed
    no fix for "with_records"; the test pins it."""
    server = kinesis_server_with(end_shape=end_shape)
    reads = ShardReads(server, "s", tmp_path)
    puts = reads.put(6)
    reads.kinesis.split_shard(StreamName="s", ShardToSplit=SHARD, NewStartingHashKey=str(2**127))
    server.reset_stats()

    (rows,) = reads.batches(1, closed=True)

    assert rows == expected(puts)
    end = reads.end(0)
    assert end.position.is_shard_end and end.caught_up and end.records == 6
    calls = 2 if end_shape == "separate" else 1
    assert server.stats()["get_records_per_shard"] == {f"s/{SHARD}": calls}


# -- empty stretches ([GR]): the walk is recorded and gone on from


def test_a_walk_of_empty_history_is_recorded_and_the_next_batch_goes_on_from_it(
    kinesis_server_with: Start, tmp_path: Path
) -> None:
    """An hour of empty storage before the records, a minute a call. Batch 0 runs under an
    AvailableNow bound half an hour into it: it walks to the bound, takes no record and
    records how far it got (``walk.walk_on``). Batch 1 goes on from there: half an hour of
    calls, not the hour again. Without ``walk_on`` batch 0 walks the whole hour, records
    TRIM_HORIZON, and batch 1 walks the hour again. The replay of batch 0 emits nothing and
    calls nothing."""
    server = kinesis_server_with(empty_history_s=3600, walk_slice_s=60, **NO_THROTTLES)
    reads = ShardReads(server, "s", tmp_path)
    puts = reads.put(6)
    bound_ms = server.advance_clock(0) - 1800 * 1000

    batch0 = reads.rows(reads.task(0, Position.trim_horizon(), until_ms=bound_ms))
    walked = reads.end(0)
    calls0 = get_records_served(server)
    server.reset_stats()
    batch1 = reads.rows(reads.task(1, walked.position))
    calls1 = get_records_served(server)
    server.reset_stats()
    replay0 = reads.rows(reads.task(0, Position.trim_horizon(), until_ms=bound_ms))

    assert batch0 == [] and replay0 == []
    assert walked.position.kind == AT_TIMESTAMP and walked.reached_bound_ms == bound_ms
    assert walked.position.timestamp_ms is not None
    assert bound_ms - 120_000 < walked.position.timestamp_ms <= bound_ms + 60_000
    assert batch1 == expected(puts)
    # Half an hour of empty minutes each (and the page of records), give or take two.
    assert 29 <= calls0 <= 33 and 29 <= calls1 <= 33, (calls0, calls1)
    assert server.stats()["calls"].get("GetRecords", 0) == 0
