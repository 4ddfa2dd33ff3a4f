"""A batch read's decisions without I/O: its options, which shards it reads from where to
where (``driver/batch_plan.py``), and when a shard's read stops (``StopRules.for_batch``).
No emulator, no Spark; the end-to-end reads are in ``tests/source/test_batch_read.py``."""

from __future__ import annotations

from dataclasses import replace

import pyarrow as pa
import pytest

from kinesis_source.errors import OptionError
from kinesis_source.options import SINK_OPTION_NAMES, by_public_name
from kinesis_source.source.batch_options import EndingPosition, parse_batch_read
from kinesis_source.source.driver.batch_plan import (
    ShardSpan,
    arrival_bound,
    check_start_time,
    per_shard_starts,
    plan_ranges,
    stream_starts,
)
from kinesis_source.source.driver.lineage import ShardInfo
from kinesis_source.source.driver.start_positions import ShardStart
from kinesis_source.source.executor.stop_rules import Progress, StopRules
from kinesis_source.source.options import InitialPosition, parse_options
from kinesis_source.source.positions import Position
from tests.pages import BASE_SEQUENCE, make_page

BASE = {"streamName": "orders", "region": "us-east-1"}
WHERE = {"stream": "orders", "shard_id": "shardId-0", "batch": 0}
# shardId-0 split into 2 and 3; 3 and 4 (a root) merged into 5.
RESHARDED = [
    ShardInfo("shardId-0"),
    ShardInfo("shardId-2", ("shardId-0",)),
    ShardInfo("shardId-3", ("shardId-0",)),
    ShardInfo("shardId-4"),
    ShardInfo("shardId-5", ("shardId-3", "shardId-4")),
]


def batch(**extra: str):  # type: ignore[no-untyped-def]
    return parse_batch_read({**BASE, **extra}, env={})


def at(seq: int) -> ShardStart:
    return ShardStart("AT_SEQUENCE_NUMBER", sequence=str(seq))


def after(seq: int, sub: int | None = None) -> ShardStart:
    return ShardStart("AFTER_SEQUENCE_NUMBER", sequence=str(seq), sub=sub)


# -- options -------------------------------------------------------------------------------


def test_a_batch_read_needs_no_store_starts_at_trim_horizon_and_ends_at_latest() -> None:
    read = batch()
    assert read.opts.checkpoint_store == ""
    assert read.opts.initial_position is InitialPosition.TRIM_HORIZON
    assert read.opts.initial_position_default is InitialPosition.TRIM_HORIZON
    assert read.end.kind is EndingPosition.LATEST
    # One options map serves a stream and a backfill of it: the store is accepted, unused.
    assert batch(checkpointStore="s3://bucket/ckpt").end.kind is EndingPosition.LATEST


@pytest.mark.parametrize(
    ("extra", "option", "says"),
    [
        ({"initialPosition": "LATEST"}, "initialPosition", "latest is not a start for a batch"),
        (
            {"initialPosition": '{"orders": {"shardId-0": {"iteratorType": "LATEST"}}}'},
            "initialPosition",
            "shard 'shardId-0': latest is not a start",
        ),
        (
            {"initialPosition": "kcl", "kclLeaseTable": "app", "initialPositionDefault": "latest"},
            "initialPositionDefault",
            "valid values \\(any case\\) are: trim_horizon",
        ),
        ({"consumerMode": "efo"}, "consumerMode", "valid value for a batch read: polling"),
        ({"endingPosition": "soon"}, "endingPosition", "latest \\(the default\\), at_timestamp"),
        ({"endingPosition": "json"}, "endingPosition", "expected per-shard JSON"),
        ({"endingTimestamp": "1000"}, "endingTimestamp", "only allowed with endingPosition=at_"),
        ({"endingPosition": "at_timestamp"}, "endingTimestamp", "is required with endingPos"),
        (
            {
                "initialPosition": "at_timestamp",
                "initialTimestamp": "2026-01-31T13:00:00Z",
                "endingPosition": "at_timestamp",
                "endingTimestamp": "2026-01-31T12:59:59Z",
            },
            "endingTimestamp",
            "before initialTimestamp",
        ),
        (
            {"endingPosition": '{"orders": {"shardId-0": {"iteratorType": "TRIM_HORIZON"}}}'},
            "endingPosition",
            "valid values for an end are: AT_SEQUENCE_NUMBER, AFTER_SEQUENCE_NUMBER",
        ),
        (
            {
                "endingPosition": '{"other": {"shardId-0": {"iteratorType": "AT_SEQUENCE_NUMBER", '
                '"sequenceNumber": "5"}}}'
            },
            "endingPosition",
            "names the stream 'other', which the query does not read",
        ),
        (
            {
                "endingPosition": '{"orders": {"shardId-0": {"iteratorType": "AT_SEQUENCE_NUMBER", '
                '"sequenceNumber": "x5"}}}'
            },
            "endingPosition",
            "sequenceNumber must be a string of digits",
        ),
    ],
)
def test_bad_batch_options_name_the_option_and_the_valid_values(
    extra: dict[str, str], option: str, says: str
) -> None:
    with pytest.raises(OptionError, match=f"option '{option}': .*{says}"):
        batch(**extra)


def test_a_stream_refuses_the_end_options_and_the_sink_calls_them_read_only() -> None:
    for name, value in (("endingPosition", "latest"), ("endingTimestamp", "1000")):
        with pytest.raises(OptionError, match=f"'{name}': is only for batch reads"):
            parse_options({**BASE, "checkpointStore": "/tmp/s", name: value}, env={})
        with pytest.raises(OptionError, match=f"'{name}': is only for reading"):
            by_public_name({**BASE, name: value}, SINK_OPTION_NAMES)
    with pytest.raises(OptionError, match="checkpointStore.*required"):
        parse_options(BASE, env={})


def test_an_end_json_parses_to_per_shard_ends() -> None:
    read = batch(
        endingPosition='{"orders": {"shardId-2": {"iteratorType": "AFTER_SEQUENCE_NUMBER", '
        '"sequenceNumber": "70", "subSequenceNumber": 3}}}'
    )
    assert read.end.kind is EndingPosition.SHARDS
    assert read.end.shard_ends == {"orders": {"shardId-2": after(70, 3)}}


# -- the plan ----------------------------------------------------------------------------


def test_the_arrival_bound_is_the_plan_time_or_just_before_an_earlier_ending_timestamp() -> None:
    assert arrival_bound(5_000, None) == 5_000
    assert arrival_bound(5_000, 3_000) == 2_999  # endingTimestamp is exclusive
    assert arrival_bound(5_000, 9_000) == 5_000  # a future end is fixed at planning


def test_a_start_after_the_end_is_an_error_and_a_start_at_it_an_empty_range() -> None:
    check_start_time(None, 1_000)
    check_start_time(1_001, 1_000)  # [1001, 1001): empty, allowed
    with pytest.raises(OptionError, match="'initialTimestamp': is 1002 epoch ms, after the"):
        check_start_time(1_002, 1_000)


def test_a_resharded_stream_from_trim_horizon_reads_every_shard_once_to_the_bound() -> None:
    opts = batch().opts
    ranges = plan_ranges("orders", RESHARDED, stream_starts(opts, "orders", RESHARDED, None), {})
    assert ranges == [ShardSpan(i.shard_id, Position.trim_horizon()) for i in RESHARDED]


def test_an_at_timestamp_start_starts_parents_and_children_at_that_time() -> None:
    opts = batch(initialPosition="at_timestamp", initialTimestamp="1700000000000").opts
    starts = stream_starts(opts, "orders", RESHARDED, None)
    assert set(starts.values()) == {Position.at_timestamp(1_700_000_000_000)}
    assert sorted(starts) == sorted(i.shard_id for i in RESHARDED)


def test_per_shard_starts_skip_ancestors_and_start_descendants_at_trim_horizon() -> None:
    given = {"shardId-3": Position.after("30"), "shardId-4": Position.shard_end()}
    listing = [*RESHARDED, ShardInfo("shardId-6")]
    starts = per_shard_starts(listing, given, Position.at_timestamp(9))
    assert starts == {
        # shardId-0 is an ancestor of shardId-3 and shardId-4 ended: all their records come
        # before the start. What descends from them starts at its first record.
        "shardId-2": Position.trim_horizon(),
        "shardId-3": Position.after("30"),
        "shardId-5": Position.trim_horizon(),
        "shardId-6": Position.at_timestamp(9),  # the default: neither named nor below one
    }


def test_json_starts_for_a_batch_read_name_real_shards() -> None:
    opts = batch(initialPosition='{"orders": {"shardId-9": {"iteratorType": "TRIM_HORIZON"}}}').opts
    with pytest.raises(OptionError, match="'initialPosition': names shard 'shardId-9'"):
        stream_starts(opts, "orders", RESHARDED, None)


def test_a_json_end_cuts_its_shard_and_drops_its_descendants() -> None:
    starts = {i.shard_id: Position.trim_horizon() for i in RESHARDED}
    ranges = plan_ranges("orders", RESHARDED, starts, {"shardId-0": at(100), "shardId-4": after(7)})
    assert ranges == [
        ShardSpan("shardId-0", Position.trim_horizon(), Position.after("99")),
        ShardSpan("shardId-4", Position.trim_horizon(), Position.after("7")),
    ]


def test_a_json_end_naming_a_shard_the_stream_does_not_have_lists_its_shards() -> None:
    with pytest.raises(
        OptionError, match="'endingPosition': names shard 'shardId-7' .* shardId-0, shardId-2"
    ):
        plan_ranges("orders", RESHARDED, {}, {"shardId-7": at(1)})


def test_an_end_before_the_start_is_an_error_and_an_end_at_it_is_not_read() -> None:
    starts = {"shardId-4": Position.after("50", 2)}
    assert plan_ranges("orders", RESHARDED, starts, {"shardId-4": after(50, 2)}) == []
    at_51 = {"shardId-4": Position("AT_SEQUENCE_NUMBER", sequence="51")}
    assert plan_ranges("orders", RESHARDED, at_51, {"shardId-4": at(51)}) == []
    for before in (after(50, 1), after(49), at(50)):
        with pytest.raises(OptionError, match="shard 'shardId-4': ends at .* before its start"):
            plan_ranges("orders", RESHARDED, starts, {"shardId-4": before})
    assert plan_ranges("orders", RESHARDED, starts, {"shardId-4": after(50, 3)}) == [
        ShardSpan("shardId-4", Position.after("50", 2), Position.after("50", 3))
    ]


# -- when a shard's read stops -------------------------------------------------------------


def run(rules: StopRules, page_units: int, **page_fields: object) -> tuple[Progress, bool, int]:
    """Consume one page of plain records; (progress, the read stops, rows handed out)."""
    page = replace(make_page([None] * page_units, BASE_SEQUENCE), **page_fields)
    progress = Progress(position=rules.start)
    lo, hi = rules.consume(page, progress)
    return progress, rules.stops_after(page, progress, 1e9, **WHERE), hi - lo


def test_a_batch_read_stops_through_its_end_mark() -> None:
    end = Position.after(str(BASE_SEQUENCE + 7 * 2))
    rules = StopRules.for_batch(Position.trim_horizon(), end, until_ms=2**50, page_limit=10)
    progress, stops, rows = run(rules, 5, millis_behind_latest=5_000)
    assert (stops, rows, progress.position) == (True, 3, end)


def test_a_batch_read_stops_before_the_first_record_after_its_bound() -> None:
    arrivals = pa.array([1_000_000, 1_999_999, 2_000_000, 2_500_000], pa.int64())  # us
    rules = StopRules.for_batch(Position.trim_horizon(), None, until_ms=1_999, page_limit=10)
    progress, stops, rows = run(rules, 4, arrival_us=arrivals, millis_behind_latest=5_000)
    assert (stops, rows, progress.reached_bound) == (True, 2, True)


def test_a_batch_read_at_the_tip_before_its_end_mark_ends_without_an_error() -> None:
    far = Position.after(str(BASE_SEQUENCE + 10**6))
    rules = StopRules.for_batch(Position.trim_horizon(), far, until_ms=2**50, page_limit=10)
    progress, stops, rows = run(rules, 3)
    assert (stops, rows, progress.caught_up) == (True, 3, True)
    progress, stops, rows = run(rules, 0)  # an empty page at the tip: no replay error
    assert (stops, rows) == (True, 0)


def test_a_batch_read_has_no_time_limit_and_no_cap() -> None:
    rules = StopRules.for_batch(Position.trim_horizon(), None, until_ms=2**50, page_limit=10)
    progress, stops, rows = run(rules, 10, millis_behind_latest=60_000)
    assert (stops, rows, rules.units_left(progress)) == (False, 10, None)
    assert not rules.nothing_to_read()
