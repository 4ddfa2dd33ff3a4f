"""Stream names, ARNs, regions and start options: parsed and refused on the driver."""

from __future__ import annotations

import json

import pytest

from kinesis_source.errors import OptionError
from kinesis_source.source.driver.start_positions import ShardStart
from kinesis_source.source.options import InitialPosition, KinesisOptions, parse_options
from kinesis_source.source.positions import Position
from kinesis_source.streams import StreamRef

ARN = "arn:aws:kinesis:eu-west-1:123456789012:stream/orders"
SEQ = "49590338271490256608559692538361571095921575989136588898"


def parse(**options: str) -> KinesisOptions:
    base = {"checkpointStore": "/tmp/store"}
    return parse_options({**base, **options}, env={})


def test_a_comma_separated_stream_list_ignores_whitespace() -> None:
    opts = parse(streamName=" orders , clicks,audit.v2 ", region="us-east-1")
    assert opts.streams == (StreamRef("orders"), StreamRef("clicks"), StreamRef("audit.v2"))
    assert opts.stream_name == "orders"


@pytest.mark.parametrize("bad", ["a b", "x" * 129, "orders/eu", "ü"])
def test_a_bad_stream_name_is_named_in_the_error(bad: str) -> None:
    with pytest.raises(OptionError, match="streamName.*" + repr(bad)[:10].replace("(", r"\(")):
        parse(streamName=f"good,{bad}", region="us-east-1")


def test_an_empty_entry_or_a_repeated_stream_is_an_error() -> None:
    with pytest.raises(OptionError, match="streamName.*empty"):
        parse(streamName="a,,b", region="us-east-1")
    with pytest.raises(OptionError, match="streamName.*'a' twice"):
        parse(streamName="a,b,a", region="us-east-1")


def test_stream_arn_gives_the_region_and_the_calls_name_the_arn() -> None:
    opts = parse(streamARN=ARN)
    assert opts.region == "eu-west-1"
    assert opts.streams == (StreamRef("orders", ARN),)
    assert opts.streams[0].api_args() == {"StreamARN": ARN}
    assert StreamRef("orders").api_args() == {"StreamName": "orders"}


def test_the_arn_region_wins_over_the_environment_but_not_over_a_different_option() -> None:
    opts = parse_options({"checkpointStore": "s", "streamARN": ARN}, env={"AWS_REGION": "x-y-1"})
    assert opts.region == "eu-west-1"
    assert parse(streamARN=ARN, region="eu-west-1").region == "eu-west-1"
    with pytest.raises(OptionError, match="region.*'us-east-1'.*eu-west-1"):
        parse(streamARN=ARN, region="us-east-1")


@pytest.mark.parametrize(
    "bad",
    [
        "orders",
        "arn:aws:kinesis:eu-west-1:1234:stream/orders",
        "arn:aws:sqs:eu-west-1:123456789012:orders",
        "arn:aws:kinesis:eu-west-1:123456789012:stream/a b",
    ],
)
def test_a_malformed_arn_is_named_in_the_error(bad: str) -> None:
    with pytest.raises(OptionError, match="streamARN.*expected a Kinesis stream ARN") as err:
        parse(streamARN=bad)
    assert bad in str(err.value)


def test_arns_of_two_regions_or_both_options_are_errors() -> None:
    other = "arn:aws:kinesis:us-east-1:123456789012:stream/clicks"
    with pytest.raises(OptionError, match="streamARN.*several regions"):
        parse(streamARN=f"{ARN},{other}")
    with pytest.raises(OptionError, match="streamARN.*cannot be given with streamName"):
        parse(streamARN=ARN, streamName="orders")


def test_a_region_that_is_no_region_names_the_region_and_the_stream() -> None:
    with pytest.raises(OptionError, match="region.*'mars-1'.*'orders'"):
        parse(streamName="orders", region="mars-1")


def test_an_emulator_endpoint_takes_any_region_name_botocore_can_sign_with() -> None:
    emulator = {"streamName": "orders", "endpointUrl": "http://127.0.0.1:4566"}
    assert parse(**emulator, region="local").region == "local"
    with pytest.raises(OptionError, match="region.*'local'.*'orders'"):
        parse(streamName="orders", region="local")
    with pytest.raises(OptionError, match="region.*'local_1'.*endpointUrl"):
        parse(**emulator, region="local_1")


def test_json_start_positions_are_parsed_per_stream_and_shard() -> None:
    start = {
        "orders": {
            "shardId-000000000000": {
                "iteratorType": "AFTER_SEQUENCE_NUMBER",
                "sequenceNumber": SEQ,
            },
            "shardId-000000000001": {
                "iteratorType": "AFTER_SEQUENCE_NUMBER",
                "sequenceNumber": SEQ,
                "subSequenceNumber": 2,
            },
            "shardId-000000000002": {
                "iteratorType": "AT_TIMESTAMP",
                "timestamp": 1_700_000_000_000,
            },
            "shardId-000000000003": {"iteratorType": "LATEST"},
        }
    }
    opts = parse(
        streamName="orders,clicks",
        region="us-east-1",
        initialPosition=json.dumps(start),
        initialPositionDefault="trim_horizon",
    )
    assert opts.initial_position is InitialPosition.SHARDS
    assert opts.initial_position_default is InitialPosition.TRIM_HORIZON
    shards = opts.shard_starts["orders"]
    assert shards["shardId-000000000000"].position(0) == Position.after(SEQ)
    assert shards["shardId-000000000001"].position(0) == Position.after(SEQ, 2)
    assert shards["shardId-000000000002"].position(0) == Position.at_timestamp(1_700_000_000_000)
    assert shards["shardId-000000000003"] == ShardStart("LATEST")
    assert shards["shardId-000000000003"].position(42) == Position.at_timestamp(42)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('{"orders": {', "initialPosition.*not valid JSON"),
        ("[]", "initialPosition.*expected a JSON object"),
        ('{"other": {}}', "initialPosition.*'other'.*does not read"),
        ('{"orders": {"s": {"iteratorType": "AT_SOMETHING"}}}', "'AT_SOMETHING'.*valid values"),
        ('{"orders": {"s": {"iteratorType": "AT_SEQUENCE_NUMBER"}}}', "takes sequenceNumber"),
        (
            '{"orders": {"s": {"iteratorType": "AT_SEQUENCE_NUMBER", "sequenceNumber": "12x"}}}',
            "sequenceNumber must be a string of digits",
        ),
        ('{"orders": {"s": {"iteratorType": "LATEST", "sequenceNumber": "1"}}}', "LATEST takes"),
    ],
)
def test_bad_json_start_positions_name_the_value(value: str, message: str) -> None:
    with pytest.raises(OptionError, match=message):
        parse(streamName="orders", region="us-east-1", initialPosition=value)


def test_kcl_start_needs_its_table_and_the_extras_need_their_start() -> None:
    opts = parse(
        streamName="orders", region="us-east-1", initialPosition="KCL", kclLeaseTable="app"
    )
    assert (opts.initial_position, opts.kcl_lease_table) == (InitialPosition.KCL, "app")
    assert opts.initial_position_default is InitialPosition.LATEST
    with pytest.raises(OptionError, match="kclLeaseTable.*required"):
        parse(streamName="orders", region="us-east-1", initialPosition="kcl")
    with pytest.raises(OptionError, match="kclLeaseTable.*only allowed"):
        parse(streamName="orders", region="us-east-1", kclLeaseTable="app")
    with pytest.raises(OptionError, match="initialPositionDefault.*only allowed"):
        parse(streamName="orders", region="us-east-1", initialPositionDefault="latest")
    with pytest.raises(OptionError, match="initialPositionDefault.*'at_timestamp'.*valid"):
        parse(
            streamName="orders",
            region="us-east-1",
            initialPosition="kcl",
            kclLeaseTable="app",
            initialPositionDefault="at_timestamp",
        )
