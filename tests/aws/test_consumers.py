"""Enhanced fan-out consumer registration against kinesis-local, which serves the consumer
APIs as AWS does: CREATING then ACTIVE, DELETING then gone, at most 20 per stream."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from kinesis_source.aws.clients import kinesis_client
from kinesis_source.errors import ConsumerError
from kinesis_source.source.driver.consumers import ConsumerRegistry
from kinesis_source.source.options import parse_options
from tests.helpers import REGION, create_stream, wait_for


def _registry(
    endpoint: str, client: Any, stream: str, timeout_ms: int = 30_000
) -> ConsumerRegistry:
    opts = parse_options(
        {
            "streamName": stream,
            "region": REGION,
            "endpointUrl": endpoint,
            "checkpointStore": "unused",
            "consumerMode": "efo",
        }
    )
    summary = client.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]
    return ConsumerRegistry(kinesis_client(opts), stream, summary["StreamARN"], timeout_ms)


def _names(client: Any, registry: ConsumerRegistry) -> list[str]:
    consumers = client.list_stream_consumers(StreamARN=registry.stream_arn)["Consumers"]
    return sorted(c["ConsumerName"] for c in consumers)


def test_registers_a_missing_consumer_once_and_waits_until_active(
    kinesis_local_endpoint: str, kinesis_local: Any, stream_name: str
) -> None:
    create_stream(kinesis_local, stream_name, 1)
    registry = _registry(kinesis_local_endpoint, kinesis_local, stream_name)
    arn = registry.ensure("q1")
    desc = kinesis_local.describe_stream_consumer(ConsumerARN=arn)["ConsumerDescription"]
    assert desc["ConsumerStatus"] == "ACTIVE" and desc["ConsumerName"] == "q1"
    # A restart finds the same consumer rather than registering another.
    assert registry.ensure("q1") == arn
    assert _names(kinesis_local, registry) == ["q1"]
    assert registry.check(arn) == arn


def test_two_drivers_racing_to_register_share_one_consumer(
    kinesis_local_endpoint: str, kinesis_local: Any, stream_name: str
) -> None:
    create_stream(kinesis_local, stream_name, 1)
    registry = _registry(kinesis_local_endpoint, kinesis_local, stream_name)
    arns: list[str] = []
    errors: list[BaseException] = []
    go = threading.Barrier(4)

    def driver() -> None:
        go.wait()
        try:
            arns.append(registry.ensure("shared"))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=driver) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(arns) == 4 and len(set(arns)) == 1
    assert _names(kinesis_local, registry) == ["shared"]


def _registered(client: Any, stream_arn: str, name: str) -> bool:
    try:
        client.register_stream_consumer(StreamARN=stream_arn, ConsumerName=name)
    except client.exceptions.LimitExceededException:
        return False
    return True


def test_twenty_consumers_is_a_clear_error(
    kinesis_local_endpoint: str, kinesis_local: Any, stream_name: str
) -> None:
    create_stream(kinesis_local, stream_name, 1)
    registry = _registry(kinesis_local_endpoint, kinesis_local, stream_name)
    for i in range(20):
        # Kinesis (and kinesis-mock) creates at most 5 consumers at a time: a registration
        # beyond that is refused until earlier ones are ACTIVE.
        wait_for(
            lambda i=i: _registered(kinesis_local, registry.stream_arn, f"c{i}"),
            what=f"consumer c{i} registered",
        )
    with pytest.raises(ConsumerError) as failed:
        registry.ensure("one-too-many")
    message = str(failed.value)
    assert "already has 20 enhanced fan-out consumers" in message
    assert f"aws kinesis list-stream-consumers --stream-arn {registry.stream_arn}" in message
    assert "deregister-stream-consumer" in message and "consumerARN" in message


def test_given_consumer_arn_must_exist(
    kinesis_local_endpoint: str, kinesis_local: Any, stream_name: str
) -> None:
    create_stream(kinesis_local, stream_name, 1)
    registry = _registry(kinesis_local_endpoint, kinesis_local, stream_name)
    with pytest.raises(ConsumerError, match="option 'consumerARN'.*does not exist"):
        registry.check(f"{registry.stream_arn}/consumer/nobody:1")


def test_deregistered_name_is_registered_anew(
    kinesis_local_endpoint: str, kinesis_local: Any, stream_name: str
) -> None:
    create_stream(kinesis_local, stream_name, 1)
    registry = _registry(kinesis_local_endpoint, kinesis_local, stream_name)
    first = registry.ensure("again")
    registry.deregister(first)
    registry.deregister(first)  # already going away: fine
    # DELETING is waited out, then the name is registered again (a new ARN).
    second = registry.ensure("again")
    assert second != first
    assert _names(kinesis_local, registry) == ["again"]


def test_registration_timeout_names_the_option(
    kinesis_local_endpoint: str, kinesis_local: Any, stream_name: str
) -> None:
    create_stream(kinesis_local, stream_name, 1)
    registry = _registry(kinesis_local_endpoint, kinesis_local, stream_name, timeout_ms=1)
    # kinesis-local keeps a new consumer CREATING for a while: 1 ms is too short.
    with pytest.raises(ConsumerError, match="consumerRegistrationTimeoutMs=1"):
        registry.ensure("slow")
