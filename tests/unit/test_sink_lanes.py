"""A task's lanes and their queues (``sink/lanes.py``): bounds, order, and a slow lane that
holds up only its own queue. No Kinesis, no Spark: the lanes send through a fake sender."""

from __future__ import annotations

import random
import threading
from typing import Any

from kinesis_source import limits
from kinesis_source.aws.retry import RetryPolicy
from kinesis_source.sink.batching import ONE_PER_KEY_SCAN, Entry, record_size
from kinesis_source.sink.lanes import LaneFeed, LanePool, has_room, lane_key, wants_more
from kinesis_source.sink.put_records import LaneSender, PutStats
from tests.helpers import wait_for


def entry(key: str, n: int, size: int = 10) -> Entry:
    data = b"%d" % n
    data += b"x" * max(0, size - len(data) - len(key))
    # routed to a shard named as the key (the lane key)
    return Entry(data, key, None, record_size(data, key), key, target_shard=key)


def test_a_queue_takes_entries_under_both_bounds_and_one_entry_when_empty() -> None:
    assert has_room(0, 0, max_entries=2, max_bytes=100)
    assert has_room(1, 99, max_entries=2, max_bytes=100)
    assert not has_room(2, 20, max_entries=2, max_bytes=100)
    assert not has_room(1, 100, max_entries=2, max_bytes=100)
    # an entry larger than the bound goes alone rather than never
    assert has_room(0, 0, max_entries=2, max_bytes=0)


def test_a_lane_takes_what_its_next_call_could_hold() -> None:
    calls = limits.PUT_RECORDS_MAX_RECORDS
    assert wants_more(calls - 1, 0, one_per_key=False)
    assert not wants_more(calls, 0, one_per_key=False)
    assert not wants_more(1, limits.PUT_RECORDS_MAX_BYTES, one_per_key=False)
    # one per key: a call looks further ahead for keys not blocked
    assert wants_more(calls, 0, one_per_key=True)
    assert not wants_more(ONE_PER_KEY_SCAN, 0, one_per_key=True)


def test_a_feed_hands_entries_over_in_order_and_blocks_the_task_when_full() -> None:
    abort = threading.Event()
    feed = LaneFeed(3, 10_000, abort, one_per_key=False)
    for n in range(3):
        assert feed.put(entry("k", n))
    fourth = threading.Thread(target=feed.put, args=(entry("k", 3),))
    fourth.start()
    pending: list[Entry] = []
    feed.refill(pending)
    fourth.join(timeout=30)
    assert not fourth.is_alive()  # the lane took the queue: the task's put went in
    feed.refill(pending)
    assert [e.data[:1] for e in pending] == [b"0", b"1", b"2", b"3"]


def test_an_aborted_task_is_not_left_waiting_on_a_full_queue() -> None:
    abort = threading.Event()
    feed = LaneFeed(1, 10_000, abort, one_per_key=False)
    assert feed.put(entry("k", 0))
    outcome: list[bool] = []
    blocked = threading.Thread(target=lambda: outcome.append(feed.put(entry("k", 1))))
    blocked.start()
    abort.set()
    feed.wake()
    blocked.join(timeout=30)
    assert outcome == [False]


class GatedSender:
    """Writes what its lane is fed into ``written``, one call of one entry at a time; a
    gated lane writes only while its gate is open (a shard at its quota)."""

    def __init__(self, written: list[bytes], gate: threading.Event | None = None) -> None:
        self.written = written
        self.gate = gate

    def run(self, feed: LaneFeed) -> None:
        pending: list[Entry] = []
        while True:
            feed.refill(pending)
            if not pending:
                return
            if self.gate is not None:
                self.gate.wait()
            self.written.append(pending.pop(0).data)

    def take_misrouted(self) -> list[tuple[Entry, str]]:
        return []

    def has_misrouted(self) -> bool:
        return False


def test_a_slow_lane_holds_up_only_its_own_queue_and_every_key_keeps_its_order() -> None:
    # Lane 0 (key "slow") writes nothing while its gate is shut; lane 1 (key "fast") must
    # write all it is fed meanwhile, beyond what a window sent on both lanes at once
    # (and waited for together) would let it.
    gate = threading.Event()
    slow: list[bytes] = []
    fast: list[bytes] = []
    abort = threading.Event()
    senders = [GatedSender(slow, gate), GatedSender(fast)]
    with LanePool(
        senders,  # type: ignore[arg-type]
        abort,
        max_entries=50,
        max_bytes=1 << 20,
        one_per_key=False,
    ) as pool:
        pool.put([entry("slow", 0)] + [entry("fast", n) for n in range(40)])
        pool.put([entry("fast", n) for n in range(40, 80)] + [entry("slow", 1)])
        wait_for(lambda: len(fast) == 80, what="the fast lane to write all it was fed")
        assert slow == []
        gate.set()
        pool.drain()
        pool.close()
    assert fast == [entry("fast", n).data for n in range(80)]
    assert slow == [entry("slow", 0).data, entry("slow", 1).data]


def test_a_failing_lane_fails_the_task_at_its_next_put() -> None:
    class Failing(GatedSender):
        def run(self, feed: LaneFeed) -> None:
            pending: list[Entry] = []
            feed.refill(pending)
            raise RuntimeError("lane broke")

    abort = threading.Event()
    pool = LanePool(
        [Failing([]), GatedSender([])],  # type: ignore[list-item]
        abort,
        max_entries=1,
        max_bytes=1 << 20,
        one_per_key=False,
    )
    with pool:
        try:
            for n in range(1_000):
                pool.put([entry("a", n), entry("b", n)])
            pool.drain()
        except RuntimeError as error:
            assert str(error) == "lane broke"
        else:
            raise AssertionError("the lane's failure was not raised")
    assert abort.is_set()


class ShardAtQuota:
    """A PutRecords answer as Kinesis gives it when a shard takes only ``room`` more
    entries: the rest refused over its quota (a fake client: the sender is under test)."""

    def __init__(self, room: int) -> None:
        self.room = room
        self.calls: list[list[bytes]] = []

    def put_records(self, StreamName: str, Records: list[dict[str, Any]]) -> dict[str, Any]:
        self.calls.append([r["Data"] for r in Records])
        out: list[dict[str, Any]] = []
        for _ in Records:
            if self.room > 0:
                self.room -= 1
                out.append({"ShardId": "shard-0", "SequenceNumber": "1"})
            else:
                out.append({"ErrorCode": "ProvisionedThroughputExceededException"})
        self.room = 1  # a second later, room for one more
        return {"FailedRecordCount": sum("ErrorCode" in r for r in out), "Records": out}


def test_a_lane_refused_at_the_end_of_a_call_sends_the_refused_entries_again_in_order() -> None:
    # The last entries of a call refused: the lane's wait is found from the refused
    # entries' shards, which must be read before the written ones leave the pending list.
    client = ShardAtQuota(room=2)
    aggregates = [Entry(b"%d" % n, "k", None, 10, "shard-0", 1, "shard-0") for n in range(4)]
    waits: list[float] = []
    sender = LaneSender(
        client,
        "s",
        RetryPolicy(max_retries=10, base_delay_ms=200, max_delay_ms=5_000),
        one_per_key=False,
        stats=PutStats(),
        abort=threading.Event(),
        sleep=waits.append,
        rng=random.Random(1),
    )
    sender.send(aggregates)
    assert client.calls == [[b"0", b"1", b"2", b"3"], [b"2", b"3"], [b"3"]]
    assert len(waits) == 2


def test_an_entry_goes_on_the_lane_of_its_shard_whatever_its_key() -> None:
    # Plain records of many keys routed to one shard share its lane; an entry no open
    # shard holds (mid-reshard) goes with the others that have none.
    assert lane_key(Entry(b"d", "key-1", None, 6, "key-1", target_shard="shard-7")) == "shard-7"
    assert lane_key(Entry(b"d", "key-2", None, 6, "key-2", target_shard="shard-7")) == "shard-7"
    assert lane_key(Entry(b"d", "key-3", None, 6, "key-3")) == ""
