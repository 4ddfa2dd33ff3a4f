"""Where each shard starts when some have positions of their own (JSON, a KCL table)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from kinesis_source.errors import KclLeaseError, OptionError
from kinesis_source.source.driver.kcl_leases import Lease, lease_positions, parse_lease
from kinesis_source.source.driver.lineage import ShardInfo
from kinesis_source.source.driver.start_positions import (
    ShardStart,
    resolve_shard_starts,
    start_shards,
)
from kinesis_source.source.positions import Position

TRIM = Position.trim_horizon()
END = Position.shard_end()
LATEST = Position.at_timestamp(1_000)
# 0 split into 1 and 2; 1 and 2 merged into 3. 9 is an unrelated open shard.
LINEAGE = [
    ShardInfo("s0"),
    ShardInfo("s1", ("s0",)),
    ShardInfo("s2", ("s0",)),
    ShardInfo("s3", ("s1", "s2")),
    ShardInfo("s9"),
]


def test_shards_not_given_start_at_the_default_and_children_wait_for_parents() -> None:
    assert start_shards(LINEAGE, {}, LATEST) == {"s0": LATEST, "s9": LATEST}


def test_a_given_position_in_a_parent_keeps_its_children_waiting() -> None:
    given = {"s0": Position.after("5")}
    assert start_shards(LINEAGE, given, LATEST) == {"s0": Position.after("5"), "s9": LATEST}


def test_children_of_a_finished_shard_start_at_trim_horizon_not_at_the_default() -> None:
    # The table says s0 was read to its end: s1 and s2 hold only records after it.
    assert start_shards(LINEAGE, {"s0": END}, LATEST) == {"s1": TRIM, "s2": TRIM, "s9": LATEST}


def test_a_checkpointed_child_finishes_its_ancestors_and_its_sibling_waits_for_nothing() -> None:
    given = {"s1": Position.after("7", 2)}
    # s1 checkpointed means s0 finished; s2, not in the table, holds only records after
    # s0's: from its beginning, not from the default.
    got = start_shards(LINEAGE, given, LATEST)
    assert got == {"s1": Position.after("7", 2), "s2": TRIM, "s9": LATEST}


def test_a_merge_child_waits_until_both_parents_finish() -> None:
    given = {"s1": END, "s2": Position.after("9")}
    got = start_shards(LINEAGE, given, LATEST)
    assert got == {"s1": END, "s2": Position.after("9"), "s9": LATEST}
    given = {"s1": END, "s2": END}
    assert start_shards(LINEAGE, given, LATEST) == {"s3": TRIM, "s9": LATEST}


def test_json_naming_a_shard_the_stream_does_not_have_is_an_error() -> None:
    named = {"shardId-000000000007": ShardStart("TRIM_HORIZON")}
    with pytest.raises(OptionError, match="initialPosition.*'shardId-000000000007'.*'orders'"):
        resolve_shard_starts("orders", named, ["shardId-000000000000"], 0)
    named = {"shardId-000000000000": ShardStart("LATEST")}
    assert resolve_shard_starts("orders", named, ["shardId-000000000000"], 5) == {
        "shardId-000000000000": Position.at_timestamp(5)
    }


def item(key: str, checkpoint: str, sub: int = 0) -> dict[str, object]:
    """A lease as the KCL writes it (numbers come back from DynamoDB as Decimal)."""
    return {
        "leaseKey": key,
        "checkpoint": checkpoint,
        "checkpointSubSequenceNumber": Decimal(sub),
        "leaseOwner": "worker-1",
        "leaseCounter": Decimal(42),
        "ownerSwitchesSinceCheckpoint": Decimal(0),
    }


def test_kcl_checkpoints_become_positions_after_the_checkpointed_user_record() -> None:
    leases = [
        parse_lease("app", item("shardId-000000000000", "4960", 3)),
        parse_lease("app", item("shardId-000000000001", "SHARD_END")),
        parse_lease("app", item("shardId-000000000002", "TRIM_HORIZON")),
        parse_lease("app", item("shardId-000000000003", "LATEST")),
        parse_lease("app", item("shardId-000000000004", "4961")),
    ]
    assert lease_positions("app", leases, ["orders"]) == {
        "orders": {
            "shardId-000000000000": Position.after("4960", 3),
            "shardId-000000000001": END,
            "shardId-000000000002": TRIM,
            # A plain record is sub-record 0 of itself: AFTER(seq, 0) skips just it.
            "shardId-000000000004": Position.after("4961", 0),
        }
    }


def test_multi_stream_lease_keys_map_to_their_stream_and_others_are_ignored() -> None:
    leases = [
        parse_lease("app", item("123456789012:orders:1700000000:shardId-000000000000", "11")),
        parse_lease("app", item("123456789012:clicks:1700000000:shardId-000000000000", "12")),
        parse_lease("app", item("123456789012:other:1700000000:shardId-000000000000", "13")),
    ]
    assert leases[0] == Lease("shardId-000000000000", "11", 0, stream="orders")
    assert lease_positions("app", leases, ["orders", "clicks"]) == {
        "orders": {"shardId-000000000000": Position.after("11", 0)},
        "clicks": {"shardId-000000000000": Position.after("12", 0)},
    }


def test_single_stream_leases_need_a_single_stream_query() -> None:
    leases = [parse_lease("app", item("shardId-000000000000", "11"))]
    with pytest.raises(KclLeaseError, match="single-stream application.*2 streams"):
        lease_positions("app", leases, ["orders", "clicks"])


@pytest.mark.parametrize(
    ("lease", "message"),
    [
        ({"leaseKey": "shardId-0"}, "no leaseKey or checkpoint"),
        (item("shardId-0", "ABC"), "neither a sequence number nor a KCL sentinel"),
        (item("a:b:shardId-0", "1"), "cannot read the lease key"),
    ],
)
def test_items_that_are_no_kcl_lease_are_refused_naming_the_table(
    lease: dict[str, object], message: str
) -> None:
    with pytest.raises(KclLeaseError, match=f"'app'.*{message}"):
        parse_lease("app", lease)
