"""When a read's last NextShardIterator may serve the shard's next read in the same Python
worker: ``source/executor/kept_iterators.py``, without Spark or AWS."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kinesis_source import limits
from kinesis_source.source.executor import kept_iterators
from kinesis_source.source.executor.kept_iterators import KeptIterator, reads_on_from
from kinesis_source.source.positions import Position

SEQ = "49590338271490256608559692538361571095921575989136588898"
LATER = str(int(SEQ) + 2**40)
KEY = ("orders", "q1", "shardId-000000000000")


@pytest.fixture(autouse=True)
def empty_cache() -> Iterator[None]:
    kept_iterators.clear()
    yield
    kept_iterators.clear()


def test_a_read_that_took_its_last_page_whole_reads_on_from_its_end() -> None:
    before = Position.after(SEQ)
    assert reads_on_from(Position.after(LATER), LATER, before, 0)
    # Sequence numbers are compared as numbers.
    assert reads_on_from(Position.after(LATER), "0" + LATER, before, 0)


def test_a_read_stopped_within_its_last_page_does_not() -> None:
    """A cap that stopped the read before the page's last record: the iterator is past it."""
    assert not reads_on_from(Position.after(SEQ), LATER, Position.trim_horizon(), 0)


def test_a_split_aggregate_a_walk_and_a_shard_end_do_not() -> None:
    assert not reads_on_from(Position.after(LATER, sub=3), LATER, Position.after(SEQ), 0)
    walked = Position.walked_to(1_795_000_000_000, SEQ)
    assert not reads_on_from(walked, None, Position.after(SEQ), 5_000)
    assert not reads_on_from(Position.shard_end(), None, Position.after(SEQ), 0)
    assert not reads_on_from(Position.trim_horizon(), None, Position.trim_horizon(), 0)


def test_an_empty_page_at_the_tip_reads_on_from_where_the_read_stood() -> None:
    at = Position.after(SEQ)
    assert reads_on_from(at, None, at, 0)
    # Behind the tip, an empty page stepped over an empty stretch: not the same position.
    assert not reads_on_from(at, None, at, 60_000)


def test_a_kept_iterator_serves_one_read_from_exactly_its_position() -> None:
    kept = KeptIterator(Position.after(SEQ).text(), "it-1", received_ms=1_000)
    kept_iterators.keep(KEY, kept, now_ms=1_000)
    assert kept_iterators.take(KEY, Position.after(LATER), now_ms=1_200) is None
    assert kept_iterators.kept_count() == 0  # taken: a mismatch drops it too
    kept_iterators.keep(KEY, kept, now_ms=1_000)
    assert kept_iterators.take(("orders", "q2", KEY[2]), Position.after(SEQ), 1_200) is None
    assert kept_iterators.take(KEY, Position.after(SEQ), now_ms=1_200) == "it-1"
    assert kept_iterators.take(KEY, Position.after(SEQ), now_ms=1_300) is None


def test_an_iterator_near_its_five_minute_expiry_is_not_used_nor_kept() -> None:
    assert limits.KEPT_ITERATOR_SECONDS < limits.SHARD_ITERATOR_TTL_SECONDS
    at = Position.after(SEQ)
    kept_iterators.keep(KEY, KeptIterator(at.text(), "old", received_ms=0), now_ms=0)
    too_late = limits.KEPT_ITERATOR_SECONDS * 1000
    assert kept_iterators.take(KEY, at, now_ms=too_late) is None
    # Keeping another shard's iterator drops the ones too old to use.
    kept_iterators.keep(KEY, KeptIterator(at.text(), "old", received_ms=0), now_ms=0)
    other = ("orders", "q1", "shardId-000000000001")
    kept_iterators.keep(other, KeptIterator(at.text(), "new", too_late), now_ms=too_late)
    assert kept_iterators.kept_count() == 1


def test_the_cache_stays_within_its_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "KEPT_ITERATORS_MAX", 3)
    at = Position.after(SEQ)
    for i in range(5):
        key = ("orders", "q1", f"shardId-{i:012d}")
        kept_iterators.keep(key, KeptIterator(at.text(), f"it-{i}", 1_000), now_ms=1_000)
    assert kept_iterators.kept_count() == 3
    assert kept_iterators.take(("orders", "q1", "shardId-000000000004"), at, 1_000) == "it-4"
    assert kept_iterators.take(("orders", "q1", "shardId-000000000000"), at, 1_000) is None
