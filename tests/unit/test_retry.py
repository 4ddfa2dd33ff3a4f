"""Backoff with full jitter: which errors are retried, how often, and how long it waits."""

from __future__ import annotations

import random

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError

from kinesis_source.aws.retry import THROTTLED, TRANSIENT, RetryPolicy, call_with_retry, classify
from kinesis_source.errors import KinesisReadError


def client_error(code: str, status: int = 400) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "GetRecords",
    )


class Flaky:
    """Fails with ``errors`` in turn, then returns "ok"."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (client_error("ProvisionedThroughputExceededException"), THROTTLED),
        (client_error("LimitExceededException"), THROTTLED),
        (client_error("InternalFailure", 500), TRANSIENT),
        (client_error("Whatever", 503), TRANSIENT),
        (EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), TRANSIENT),
        (ReadTimeoutError(endpoint_url="http://127.0.0.1:1"), TRANSIENT),
        (client_error("ResourceNotFoundException"), None),
        (client_error("ExpiredIteratorException"), None),
        (client_error("AccessDeniedException"), None),
    ],
)
def test_errors_are_classified(error: Exception, kind: str | None) -> None:
    assert classify(error) == kind


def test_retries_until_success_and_waits_within_the_jitter_caps() -> None:
    waits: list[float] = []
    call = Flaky(*(client_error("ProvisionedThroughputExceededException") for _ in range(6)))
    policy = RetryPolicy(max_retries=10, base_delay_ms=100, max_delay_ms=1000)
    result = call_with_retry(
        call,
        policy,
        what="GetRecords",
        stream="s",
        shard_id="shard-1",
        sleep=waits.append,
        rng=random.Random(1),
    )
    assert result == "ok" and call.calls == 7
    caps = [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    assert len(waits) == 6
    assert all(0 <= w <= cap for w, cap in zip(waits, caps, strict=True))
    assert len(set(waits)) == 6  # jittered, not a fixed schedule


def test_gives_up_after_max_retries_naming_call_shard_and_last_error() -> None:
    waits: list[float] = []
    call = Flaky(*(client_error("InternalFailure", 500) for _ in range(10)))
    with pytest.raises(KinesisReadError) as err:
        call_with_retry(
            call,
            RetryPolicy(3, 10, 50),
            what="GetRecords",
            stream="orders",
            shard_id="shardId-000000000007",
            sleep=waits.append,
        )
    assert call.calls == 4 and len(waits) == 3
    message = str(err.value)
    assert "GetRecords on stream 'orders' shard shardId-000000000007" in message
    assert "after 4 attempts" in message and "InternalFailure" in message
    assert err.value.shard_id == "shardId-000000000007"


def test_errors_that_retrying_cannot_fix_are_raised_at_once() -> None:
    call = Flaky(client_error("ValidationException"))
    with pytest.raises(ClientError):
        call_with_retry(call, RetryPolicy(5, 1, 1), what="x", stream="s", sleep=lambda _: None)
    assert call.calls == 1


def test_a_denied_call_names_the_action_and_the_resource_at_once() -> None:
    call = Flaky(client_error("AccessDeniedException"))
    with pytest.raises(KinesisReadError) as info:
        call_with_retry(
            call,
            RetryPolicy(5, 1, 1),
            what="GetRecords",
            stream="orders",
            shard_id="shardId-000000000001",
            sleep=lambda _: None,
        )
    assert call.calls == 1
    assert str(info.value).startswith(
        "GetRecords on stream 'orders' shard shardId-000000000001 was denied "
        "(AccessDeniedException): the credentials may not call kinesis:GetRecords there"
    )


def test_zero_retries_means_one_attempt() -> None:
    call = Flaky(client_error("ProvisionedThroughputExceededException"))
    with pytest.raises(KinesisReadError, match="after 1 attempts"):
        call_with_retry(call, RetryPolicy(0, 1, 1), what="x", stream="s", sleep=lambda _: None)
