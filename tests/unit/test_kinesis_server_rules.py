"""The Kinesis test server's rules as pure code (tests/emulators/kinesis_rules.py and
kinesis_store.py), without HTTP: each decision on exact figures."""

from __future__ import annotations

import pytest

from tests.emulators.kinesis_rules import (
    MIB,
    CallRate,
    ReadBytes,
    Rules,
    WriteRate,
    iterator_expired,
    millis_behind,
    page_end,
    step,
)
from tests.emulators.kinesis_store import ApiError, Stream, sequence_number

MINUTE = 60_000
NOW = 10_000_000


def test_a_record_within_the_slice_is_read_at_once() -> None:
    assert step(NOW - 5 * MINUTE, NOW - 4 * MINUTE - 1, NOW, MINUTE, None).take_records


def test_a_record_beyond_the_slice_costs_an_empty_call_one_slice_on() -> None:
    move = step(NOW - 60 * MINUTE, NOW - MINUTE, NOW, MINUTE, None)
    assert not move.take_records and not move.at_end
    assert move.cursor_ms == NOW - 59 * MINUTE


def test_an_idle_open_shard_is_walked_up_to_its_tip_and_stays_there() -> None:
    assert step(NOW - 3 * MINUTE, None, NOW, MINUTE, None).cursor_ms == NOW - 2 * MINUTE
    tip = step(NOW - MINUTE, None, NOW, MINUTE, None)
    assert (tip.take_records, tip.at_end, tip.cursor_ms) == (False, False, NOW)


def test_a_closed_shard_ends_once_the_walk_reaches_its_close() -> None:
    assert step(NOW - 3 * MINUTE, None, NOW, MINUTE, NOW - MINUTE).cursor_ms == NOW - 2 * MINUTE
    assert step(NOW - 2 * MINUTE, None, NOW, MINUTE, NOW - MINUTE).at_end


def test_without_a_slice_every_read_reaches_records_or_the_end_at_once() -> None:
    assert step(0, NOW, NOW, None, None).take_records
    assert step(0, None, NOW, None, NOW).at_end


def test_millis_behind_latest_follows_the_position() -> None:
    # The next unread record within reach: its age.
    assert millis_behind(NOW - 2 * MINUTE, NOW - MINUTE, NOW, MINUTE, False) == MINUTE
    # In an empty stretch: the cursor's age.
    assert millis_behind(NOW - 9 * MINUTE, NOW - MINUTE, NOW, MINUTE, False) == 9 * MINUTE
    # Never 0 while a record is unread, even one that just arrived.
    assert millis_behind(NOW, NOW, NOW, MINUTE, False) == 1
    # 0 at the tip, and on a closed shard with nothing left.
    assert millis_behind(NOW - MINUTE, None, NOW, MINUTE, False) == 0
    assert millis_behind(NOW - 5 * MINUTE, None, NOW, MINUTE, False) == 5 * MINUTE
    assert millis_behind(NOW - 5 * MINUTE, None, NOW, MINUTE, True) == 0


def test_five_calls_in_any_second() -> None:
    rate = CallRate(5)
    assert [rate.admit(t) for t in (0, 100, 200, 300, 400, 999)] == [True] * 5 + [False]
    assert rate.admit(1_000)  # the call at 0 left the window
    assert CallRate(None).admit(0)


def test_a_10_mib_page_keeps_reads_out_for_5_seconds() -> None:
    reads = ReadBytes(2 * MIB)
    reads.spend(0, 10 * MIB)
    assert not reads.admit(4_999) and reads.admit(5_000)
    reads.spend(5_000, 100)  # 100 bytes: under a millisecond
    assert reads.admit(5_000)


def test_writes_within_1000_records_and_1_mib_a_second() -> None:
    writes = WriteRate(1_000, MIB)
    assert all(writes.admit(0, 10) for _ in range(1_000))
    assert not writes.admit(999, 10) and writes.admit(1_000, 10)
    big = WriteRate(1_000, MIB)
    assert big.admit(0, 600 * 1024) and not big.admit(500, 600 * 1024)


def test_iterators_expire_after_their_ttl() -> None:
    assert not iterator_expired(0, 300_000, 300) and iterator_expired(0, 300_001, 300)
    assert not iterator_expired(0, 10**12, None)


def test_a_page_stops_at_its_record_or_byte_cap_but_holds_one_record() -> None:
    sizes = [0]
    for size in [MIB] * 12:
        sizes.append(sizes[-1] + size)
    assert page_end(0, 12, 10_000, 10 * MIB, sizes) == 10
    assert page_end(0, 12, 3, 10 * MIB, sizes) == 3
    assert page_end(0, 12, 10_000, MIB // 2, sizes) == 1  # a record above the cap alone
    assert page_end(12, 12, 10_000, 10 * MIB, sizes) == 12


def test_rules_reject_an_unknown_end_shape() -> None:
    with pytest.raises(ValueError, match="end_shape"):
        Rules(end_shape="sometimes")
    assert Rules.lenient().get_records_calls_per_s is None
    assert Rules().get_records_calls_per_s == 5


def stream(shards: int) -> Stream:
    return Stream(1, "s", shards, NOW, 86_400_000, "separate", 0)


def test_split_then_merge_keep_lineage_and_ranges() -> None:
    s = stream(1)
    low, high = s.split("shardId-000000000000", str(2**127), NOW)
    assert (low.parent, high.parent) == ("shardId-000000000000", "shardId-000000000000")
    assert (low.end_hash + 1, high.start_hash) == (2**127, 2**127)
    child = s.merge(high.shard_id, low.shard_id, NOW + 1)
    assert (child.parent, child.adjacent_parent) == (high.shard_id, low.shard_id)
    assert (child.start_hash, child.end_hash) == (0, 2**128 - 1)
    assert [c["ShardId"] for c in s.shards[0].child_shards()] == [low.shard_id, high.shard_id]
    assert s.open_shards() == [child]
    assert s.route("any key", None) is child


def test_merging_shards_that_are_not_adjacent_is_refused() -> None:
    s = stream(3)
    with pytest.raises(ApiError, match="not adjacent"):
        s.merge("shardId-000000000000", "shardId-000000000002", NOW)


def test_a_sequence_number_of_another_shard_is_refused() -> None:
    s = stream(2)
    first, second = s.shards
    seq = second.append(b"x", "k", NOW)
    assert second.position_of(seq, after=False) == 0
    assert second.position_of(seq, after=True) == 1
    with pytest.raises(ApiError) as caught:
        first.position_of(seq, after=False)
    assert caught.value.code == "InvalidArgumentException"


def test_closed_shards_leave_the_listing_after_the_retention() -> None:
    s = stream(1)
    s.split("shardId-000000000000", str(2**127), NOW)
    assert len(s.listed(NOW + 86_400_000)) == 3
    assert len(s.listed(NOW + 86_400_001)) == 2


def test_a_steady_feed_holds_only_the_retentions_worth_of_records() -> None:
    """[RET]: records past the retention are no longer accessible; the server lets their
    bytes go, and a page that ended at the tip is not kept (the next append makes it
    stale), so an hour's feed at 1 MiB/s a shard does not fill the machine."""
    (shard,) = stream(1).shards
    for i in range(6):
        shard.append(f"r{i}".encode(), "k", NOW + i * 1_000)
    body, end = shard.records(0, 10_000, 10 * 1024 * 1024, page_end)
    assert end == 6 and body.count(b"SequenceNumber") == 6
    assert not shard.built  # ended at the tip: not cached
    shard.forget_before(shard.first_live(NOW + 3_500))
    assert [len(f) > 0 for f in shard.fragments] == [False] * 4 + [True] * 2
    # What a reader can still reach is whole.
    body, end = shard.records(4, 10_000, 10 * 1024 * 1024, page_end)
    assert end == 6 and body.count(b"SequenceNumber") == 2
    assert sequence_number(0, 4).encode() in body and sequence_number(0, 5).encode() in body
