"""How rows become PutRecords calls: limits, lanes, one entry per key, bad rows. No server."""

from __future__ import annotations

import pytest

from kinesis_source import limits
from kinesis_source.errors import SinkInputError
from kinesis_source.sink.batching import (
    Entry,
    LaneRouter,
    check_record,
    next_call,
    record_size,
)
from kinesis_source.sink.columns import check_columns


def entry(key: str, size: int = 10) -> Entry:
    data = b"x" * (size - len(key))
    return Entry(data, key, None, record_size(data, key), key)


def test_a_call_holds_at_most_500_entries() -> None:
    pending = [entry(f"k{i}") for i in range(1_201)]
    assert next_call(pending, one_per_key=False) == list(range(500))


def test_a_call_holds_at_most_5_mib_and_keeps_order() -> None:
    mib = 1024 * 1024
    pending = [
        entry("a", mib),
        entry("b", mib),
        entry("c", 2 * mib),
        entry("d", mib + 1),
        entry("e"),
    ]
    # 4 MiB taken; d would pass 5 MiB, so the call stops there (e must not jump ahead of d).
    assert next_call(pending, one_per_key=False) == [0, 1, 2]


def test_a_record_larger_than_a_call_goes_alone() -> None:
    big = entry("big", 8 * 1024 * 1024)
    assert next_call([big, entry("k")], one_per_key=False) == [0]


def test_one_per_key_never_jumps_an_earlier_entry_of_the_same_key() -> None:
    pending = [entry("a"), entry("b"), entry("a"), entry("c"), entry("b"), entry("d")]
    # the second "a" and "b" wait for the next call; c and d do not share their keys.
    assert next_call(pending, one_per_key=True) == [0, 1, 3, 5]


def test_one_per_key_blocks_a_key_whose_entry_did_not_fit() -> None:
    mib = 1024 * 1024
    pending = [entry("a", 4 * mib), entry("b", 2 * mib), entry("c"), entry("b")]
    assert next_call(pending, one_per_key=True) == [0, 2]


def test_a_call_holds_at_most_a_shard_s_second_for_one_shard() -> None:
    # 256 KiB aggregates of two shards (order key: the shard): four of each fill their
    # shards' 1 MiB of a second; a fifth would be refused, so it waits for the next call.
    agg = limits.WRITE_BYTES_PER_SECOND_PER_SHARD // 4
    pending = [entry("shard-0", agg) for _ in range(6)] + [entry("shard-1", agg) for _ in range(6)]
    assert next_call(pending, one_per_key=False) == [0, 1, 2, 3, 6, 7, 8, 9]
    # plain records of many keys for one shard: a shard's second of them, whatever the keys
    large = [
        Entry(b"x" * (300 * 1024), f"key-{n}", None, 300 * 1024, f"key-{n}", 1, "shard-0")
        for n in range(6)
    ]
    assert next_call(large, one_per_key=False) == [0, 1, 2]
    # a record larger than a shard's second (a stream of larger records) still goes
    big = entry("k", 2 * limits.WRITE_BYTES_PER_SECOND_PER_SHARD)
    assert next_call([big, entry("k")], one_per_key=False) == [0]


def test_a_key_keeps_its_lane_for_the_task_and_keys_are_dealt_over_every_lane() -> None:
    router = LaneRouter(4)
    first = [router.lane_of(k) for k in "aabcbadcae"]
    assert first == [0, 0, 1, 2, 1, 0, 3, 2, 0, 0]
    # later windows: the same lanes for the same keys, a new key takes the next lane
    assert [router.lane_of(k) for k in "edcbaf"] == [0, 3, 2, 1, 0, 1]
    # two shards' aggregates: two lanes, never one
    two = LaneRouter(4)
    assert two.lane_of("shard-0") != two.lane_of("shard-1")


def test_keys_past_the_remembered_ones_go_by_their_hash_and_keep_their_lane() -> None:
    router = LaneRouter(4, remembered=2)
    assert [router.lane_of(k) for k in ("a", "b")] == [0, 1]
    many = [f"random-{i}" for i in range(400)]
    lanes = [router.lane_of(k) for k in many]
    assert lanes == [router.lane_of(k) for k in many]  # stable
    assert sorted(set(lanes)) == [0, 1, 2, 3]  # spread over every lane
    assert max(lanes.count(lane) for lane in range(4)) < 2 * len(many) / 4


@pytest.mark.parametrize(
    ("data", "key", "hash_key", "message"),
    [
        (None, "k", None, "row 7 of partition 3: column 'data' is null"),
        (b"x", None, None, "row 7 of partition 3: column 'partitionKey' is null"),
        (b"x", "k" * 257, None, "partitionKey has 257 characters; Kinesis takes 1 to 256"),
        (b"x", "", None, "partitionKey has 0 characters"),
        (b"x", "k", "-1", "explicitHashKey '-1' is not a decimal integer"),
        (
            b"x",
            "k",
            str(2**128),
            "is not a decimal integer in 0..340282366920938463463374607431768211455",
        ),
        (
            b"x" * 1000,
            "kk",
            None,
            "the record is 1002 bytes (data and partition key); the limit is maxRecordBytes=1001",
        ),
    ],
)
def test_bad_rows_fail_naming_the_row_and_the_limit(
    data: bytes | None, key: str | None, hash_key: str | None, message: str
) -> None:
    with pytest.raises(SinkInputError, match="row 7 of partition 3") as info:
        check_record(7, 3, data, key, hash_key, 1001)
    assert message in str(info.value)


def test_good_rows_pass_at_the_limits() -> None:
    key = "€" * limits.PARTITION_KEY_MAX_CHARS
    check_record(0, 0, b"", key, str(2**128 - 1), limits.RECORD_MAX_BYTES)
    data = b"x" * (limits.RECORD_MAX_BYTES - 1)
    check_record(0, 0, data, "k", "0", limits.RECORD_MAX_BYTES)


def test_columns_accepted_in_any_case_with_their_types() -> None:
    layout = check_columns(
        [("PartitionKey", "string"), ("data", "string"), ("explicithashkey", "string")]
    )
    assert layout.data == "data" and layout.data_is_string
    assert layout.partition_key == "PartitionKey"
    assert layout.explicit_hash_key == "explicithashkey"
    assert check_columns([("data", "binary")]).partition_key is None


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ([("data", "binary"), ("value", "string")], "column 'value' is not accepted"),
        ([("partitionKey", "string")], "the input has no column 'data'"),
        ([("data", "int")], "column 'data' has type int; the kinesis sink takes binary or string"),
        ([("data", "binary"), ("partitionKey", "binary")], "takes string there"),
    ],
)
def test_bad_columns_are_named_with_the_accepted_ones(
    fields: list[tuple[str, str]], message: str
) -> None:
    with pytest.raises(SinkInputError) as info:
        check_columns(fields)
    assert message in str(info.value)
    assert "data (binary or string, required), partitionKey (string" in str(info.value)


def test_sink_options_defaults_and_the_options_of_the_other_direction() -> None:
    from kinesis_source.errors import OptionError
    from kinesis_source.sink.options import parse_sink_options
    from kinesis_source.source.options import parse_options

    opts = parse_sink_options(
        {"streamname": "s", "checkpointLocation": "/cp"}, env={"AWS_REGION": "us-east-1"}
    )
    assert (opts.max_record_bytes, opts.max_in_flight_requests) == (limits.RECORD_MAX_BYTES, 4)
    assert (opts.aggregate, opts.preserve_order, opts.max_retries) == (False, False, 10)
    with pytest.raises(OptionError, match="'aggregate': is only for writing"):
        parse_options(
            {"streamname": "s", "region": "us-east-1", "checkpointstore": "/x", "aggregate": "true"}
        )
    with pytest.raises(OptionError, match="'initialPosition': is only for reading"):
        parse_sink_options({"streamname": "s", "region": "us-east-1", "initialposition": "latest"})
    with pytest.raises(
        OptionError, match="'maxInFlightRequests': got 0; expected an integer 1..64"
    ):
        parse_sink_options({"streamname": "s", "region": "us-east-1", "maxinflightrequests": "0"})
