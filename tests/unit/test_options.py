"""Option parsing: every bad value fails with a message naming the option and what is allowed."""

from __future__ import annotations

import pytest

from kinesis_source.errors import OptionError
from kinesis_source.options import SOURCE_OPTION_NAMES
from kinesis_source.source.options import InitialPosition, parse_options

BASE = {"streamname": "orders", "region": "eu-west-1", "checkpointstore": "/tmp/store"}


def parse(**extra: str) -> object:
    return parse_options({**BASE, **extra}, env={})


def test_defaults_match_the_documented_ones() -> None:
    opts = parse_options(BASE, env={})
    assert opts.stream_name == "orders"
    assert opts.initial_position is InitialPosition.LATEST
    assert opts.max_records_per_shard is None  # a read is bounded by its time
    assert opts.max_fetch_time_ms == 10_000
    assert opts.get_records_limit == 10_000
    assert opts.fetch_interval_ms == 200
    assert opts.deaggregate is True
    assert opts.fail_on_data_loss is True


def test_keys_match_case_insensitively() -> None:
    opts = parse_options(
        {"STREAMNAME": "s", "Region": "us-east-1", "checkpointStore": "/x", "GetRecordsLimit": "5"},
        env={},
    )
    assert (opts.stream_name, opts.get_records_limit) == ("s", 5)


def test_missing_stream_name_is_an_error() -> None:
    with pytest.raises(OptionError, match="streamName.*required"):
        parse_options({"region": "us-east-1", "checkpointstore": "/x"}, env={})


def test_region_falls_back_to_the_environment_then_fails_clearly() -> None:
    no_region = {"streamname": "s", "checkpointstore": "/x"}
    assert parse_options(no_region, env={"AWS_DEFAULT_REGION": "ap-south-1"}).region == "ap-south-1"
    assert parse_options(no_region, env={"AWS_REGION": "us-west-2"}).region == "us-west-2"
    with pytest.raises(OptionError, match="region.*AWS_REGION"):
        parse_options(no_region, env={})


def test_checkpoint_store_is_required() -> None:
    with pytest.raises(OptionError, match="checkpointStore.*required"):
        parse_options({"streamname": "s", "region": "us-east-1"}, env={})


def test_bad_initial_position_lists_the_valid_values() -> None:
    with pytest.raises(OptionError) as err:
        parse(initialposition="oldest")
    message = str(err.value)
    assert "initialPosition" in message and "'oldest'" in message
    for valid in ("trim_horizon", "earliest", "latest", "at_timestamp"):
        assert valid in message


def test_earliest_is_an_alias_of_trim_horizon() -> None:
    assert parse(initialposition="EARLIEST").initial_position is InitialPosition.TRIM_HORIZON  # type: ignore[attr-defined]


def test_unknown_option_lists_the_known_ones() -> None:
    with pytest.raises(OptionError) as err:
        parse(maxrecordspershrad="10")
    message = str(err.value)
    assert "maxrecordspershrad" in message
    for name in SOURCE_OPTION_NAMES:
        assert name in message


@pytest.mark.parametrize(
    ("value", "expected_ms"),
    [
        ("2026-01-31T12:00:00Z", 1_769_860_800_000),
        ("2026-01-31T13:00:00+01:00", 1_769_860_800_000),
        ("1769860800000", 1_769_860_800_000),
    ],
)
def test_initial_timestamp_accepts_iso_with_zone_or_epoch_ms(value: str, expected_ms: int) -> None:
    opts = parse(initialposition="at_timestamp", initialtimestamp=value)
    assert opts.initial_timestamp_ms == expected_ms  # type: ignore[attr-defined]


@pytest.mark.parametrize("value", ["2026-01-31T12:00:00", "yesterday", "12:00"])
def test_bad_initial_timestamp_names_the_format(value: str) -> None:
    with pytest.raises(OptionError, match="initialTimestamp.*ISO-8601"):
        parse(initialposition="at_timestamp", initialtimestamp=value)


def test_at_timestamp_needs_a_timestamp() -> None:
    with pytest.raises(OptionError, match="initialTimestamp.*required"):
        parse(initialposition="at_timestamp")


@pytest.mark.parametrize(
    ("option", "value", "allowed"),
    [
        ("getrecordslimit", "0", "1..10000"),
        ("getrecordslimit", "10001", "1..10000"),
        ("maxrecordspershard", "ten", ">= 1"),
        ("maxfetchtimems", "-5", ">= 1"),
        ("fetchintervalms", "1.5", ">= 0"),
        ("deaggregate", "maybe", "true or false"),
        ("failondataloss", "2", "true or false"),
    ],
)
def test_bad_numbers_and_flags_say_what_is_allowed(option: str, value: str, allowed: str) -> None:
    with pytest.raises(OptionError) as err:
        parse(**{option: value})
    assert allowed in str(err.value)


def test_secrets_are_not_in_the_repr() -> None:
    opts = parse(awsaccesskeyid="AKIDEXAMPLE", awssecretkey="s3cr3t-value", awssessiontoken="tok3n")
    assert "s3cr3t-value" not in repr(opts)
    assert "tok3n" not in repr(opts)
