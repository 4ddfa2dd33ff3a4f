"""Which shards a batch may read: parents before children, nothing dropped early."""

from __future__ import annotations

from kinesis_source.source.driver.lineage import ShardInfo, advance_shards, readable_shards
from kinesis_source.source.positions import Position

TH = Position.trim_horizon()
END = Position.shard_end()


def shard(sid: str, *parents: str) -> ShardInfo:
    return ShardInfo(sid, tuple(parents))


def test_a_fresh_stream_tracks_only_its_roots() -> None:
    listing = [shard("p"), shard("c1", "p"), shard("c2", "p"), shard("r")]
    assert advance_shards({}, listing, TH) == {"p": TH, "r": TH}


def test_split_children_wait_until_the_parent_is_read_to_its_end() -> None:
    listing = [shard("p"), shard("c1", "p"), shard("c2", "p")]
    open_parent = {"p": Position.after("10")}
    assert advance_shards(open_parent, listing, TH) == open_parent


def test_split_children_start_when_the_parent_is_finished_and_the_parent_is_dropped() -> None:
    listing = [shard("p"), shard("c1", "p"), shard("c2", "p")]
    assert advance_shards({"p": END}, listing, TH) == {"c1": TH, "c2": TH}


def test_a_closed_shard_that_was_not_read_to_its_end_is_not_finished() -> None:
    # ListShards shows p closed (it has children) but our read stopped before its end.
    listing = [shard("p"), shard("c", "p")]
    assert advance_shards({"p": Position.after("99")}, listing, TH) == {"p": Position.after("99")}


def test_merge_child_waits_for_both_parents() -> None:
    listing = [shard("a"), shard("b"), shard("m", "a", "b")]
    one_done = {"a": END, "b": Position.after("3")}
    assert advance_shards(one_done, listing, TH) == one_done
    assert advance_shards({"a": END, "b": END}, listing, TH) == {"m": TH}


def test_a_parent_that_expired_from_the_listing_counts_as_finished() -> None:
    listing = [shard("b"), shard("m", "a", "b")]  # "a" aged out of retention
    assert advance_shards({"b": END}, listing, TH) == {"m": TH}


def test_a_finished_shard_with_no_listed_children_is_kept() -> None:
    listing = [shard("p")]
    assert advance_shards({"p": END}, listing, TH) == {"p": END}


def test_no_listing_changes_nothing() -> None:
    tracked = {"p": END, "q": Position.after("1")}
    assert advance_shards(tracked, None, TH) == tracked


def test_grandchildren_wait_for_their_own_parent() -> None:
    listing = [shard("p"), shard("c1", "p"), shard("c2", "p"), shard("g", "c1")]
    after_p = advance_shards({"p": END}, listing, TH)
    assert after_p == {"c1": TH, "c2": TH}
    after_c1 = advance_shards({"c1": END, "c2": TH}, listing, TH)
    assert after_c1 == {"c2": TH, "g": TH}


def test_readable_shards_skip_finished_ones_and_sort() -> None:
    assert readable_shards({"b": TH, "a": Position.after("1"), "c": END}) == ["a", "b"]


def test_a_dropped_parent_is_never_read_again() -> None:
    listing = [shard("p"), shard("c1", "p"), shard("c2", "p")]
    children_only = advance_shards({"p": END}, listing, TH)
    assert advance_shards(children_only, listing, TH) == children_only


def test_split_then_merge_walks_generation_by_generation() -> None:
    listing = [shard("p"), shard("c1", "p"), shard("c2", "p"), shard("m", "c1", "c2")]
    state = advance_shards({}, listing, TH)
    assert state == {"p": TH}
    state = advance_shards({"p": END}, listing, TH)
    assert state == {"c1": TH, "c2": TH}
    state = advance_shards({"c1": END, "c2": Position.after("4")}, listing, TH)
    assert state == {"c1": END, "c2": Position.after("4")}
    state = advance_shards({"c1": END, "c2": END}, listing, TH)
    assert state == {"m": TH}
    assert advance_shards(state, listing, TH) == {"m": TH}


def test_a_merge_of_a_split_child_and_a_root_waits_for_the_split_parent_too() -> None:
    listing = [shard("p"), shard("c1", "p"), shard("c2", "p"), shard("r"), shard("m", "c2", "r")]
    assert advance_shards({}, listing, TH) == {"p": TH, "r": TH}
    # r is finished first: it waits, finished, while p and then c2 are read.
    state = advance_shards({"p": Position.after("5"), "r": END}, listing, TH)
    assert state == {"p": Position.after("5"), "r": END}
    state = advance_shards({"p": END, "r": END}, listing, TH)
    assert state == {"c1": TH, "c2": TH, "r": END}
    state = advance_shards({"c1": TH, "c2": END, "r": END}, listing, TH)
    assert state == {"c1": TH, "m": TH}
    assert advance_shards(state, listing, TH) == state


def test_only_a_child_of_a_reshard_drops_aggregate_records_outside_its_range() -> None:
    # A shard-aware producer's copies exist only on split children; elsewhere a record
    # outside the range is an aws_kinesis_agg-style aggregate's only copy, kept.
    def listed(parent: str | None) -> ShardInfo:
        shard: dict[str, object] = {
            "ShardId": "shardId-2",
            "HashKeyRange": {"StartingHashKey": "0", "EndingHashKey": str(2**127 - 1)},
            "SequenceNumberRange": {"StartingSequenceNumber": "100"},
        }
        if parent is not None:
            shard["ParentShardId"] = parent
        return ShardInfo.from_api(shard)

    assert listed(None).resent_copies_range is None
    child = listed("shardId-0").resent_copies_range
    assert child is not None and child.high_hash_key == 2**127 - 1 and not child.all_hash_keys
