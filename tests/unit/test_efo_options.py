"""Enhanced fan-out options and consumer decisions: pure, no server."""

from __future__ import annotations

import pytest

from kinesis_source.errors import OptionError
from kinesis_source.source.driver.consumers import Step, default_consumer_name, next_step
from kinesis_source.source.options import ConsumerMode, parse_options

BASE = {"streamName": "orders", "region": "us-east-1", "checkpointStore": "/tmp/x"}
ARN = "arn:aws:kinesis:us-east-1:123456789012:stream/orders/consumer/mine:1700000000"


def test_polling_is_the_default_and_efo_options_need_efo() -> None:
    assert parse_options(BASE).consumer_mode is ConsumerMode.POLLING
    with pytest.raises(OptionError, match="consumerName.*only allowed with consumerMode=efo"):
        parse_options({**BASE, "consumerName": "mine"})
    with pytest.raises(OptionError, match="efoFallbackToPolling.*only allowed with consumerMode"):
        parse_options({**BASE, "efoFallbackToPolling": "false"})


def test_efo_defaults() -> None:
    opts = parse_options({**BASE, "consumermode": "EFO"})
    assert opts.consumer_mode is ConsumerMode.EFO
    assert opts.consumer_name is None and opts.consumer_arn is None
    assert opts.deregister_consumer_on_stop is False
    assert opts.consumer_registration_timeout_ms == 120_000
    assert opts.efo_fallback_to_polling is True
    off = parse_options({**BASE, "consumerMode": "efo", "efoFallbackToPolling": "FALSE"})
    assert off.efo_fallback_to_polling is False


def test_bad_mode_lists_the_valid_values() -> None:
    with pytest.raises(OptionError, match="consumerMode.*'push'.*polling, efo"):
        parse_options({**BASE, "consumerMode": "push"})


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"consumerName": "bad name"}, "consumerName.*1 to 128"),
        ({"consumerARN": "arn:aws:kinesis:us-east-1:1:stream/orders"}, "consumerARN.*expected"),
        (
            {"consumerARN": ARN.replace("orders", "payments")},
            "consumerARN.*stream 'payments'; the query reads 'orders'",
        ),
        (
            {"streamName": "orders,payments", "consumerARN": ARN},
            "consumerARN.*one stream; this query reads 2: use consumerName",
        ),
        ({"consumerARN": ARN, "consumerName": "mine"}, "either consumerName or consumerARN"),
        ({"consumerARN": ARN, "deregisterConsumerOnStop": "true"}, "never deregistered"),
        ({"consumerRegistrationTimeoutMs": "0"}, "consumerRegistrationTimeoutMs.*>= 1"),
        ({"efoFallbackToPolling": "maybe"}, "efoFallbackToPolling.*'maybe'"),
    ],
)
def test_bad_efo_options_name_the_option(extra: dict[str, str], message: str) -> None:
    with pytest.raises(OptionError, match=message):
        parse_options({**BASE, "consumerMode": "efo", **extra})


def test_consumer_arn_is_kept_as_given() -> None:
    opts = parse_options({**BASE, "consumerMode": "efo", "consumerARN": ARN})
    assert opts.consumer_arn == ARN


def test_default_consumer_name_is_stable_per_query_and_valid() -> None:
    query = "0123456789abcdef0123456789abcdef"
    assert default_consumer_name(query) == default_consumer_name(query)
    assert default_consumer_name(query) != default_consumer_name(query[::-1])
    parse_options({**BASE, "consumerMode": "efo", "consumerName": default_consumer_name(query)})


@pytest.mark.parametrize(
    ("status", "step"),
    [
        (None, Step.REGISTER),
        ("CREATING", Step.WAIT),
        ("UPDATING", Step.WAIT),
        ("ACTIVE", Step.USE),
        ("DELETING", Step.WAIT_GONE),
    ],
)
def test_next_step_per_consumer_status(status: str | None, step: Step) -> None:
    assert next_step(status) is step
