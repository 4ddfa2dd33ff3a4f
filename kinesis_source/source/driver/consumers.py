"""Enhanced fan-out consumers: find or register the query's consumer and wait until ACTIVE.

Runs on the driver before the first batch is planned. A consumer is registered per
stream under a name; registration takes a while on AWS (CREATING, then ACTIVE), and two
drivers of the same query (a restart racing a stale one) may register the same name at
once: the loser gets ``ResourceInUseException`` and simply uses the winner's consumer.
A stream has at most 20 consumers; hitting that limit is a clear error telling the user
how to list and remove leftovers.

``ConsumerStatus`` decisions are pure (``next_step``); the rest is thin I/O.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from enum import Enum
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from kinesis_source import limits
from kinesis_source.aws import kinesis
from kinesis_source.aws.clients import kinesis_client
from kinesis_source.aws.retry import policy_of
from kinesis_source.errors import ConsumerError
from kinesis_source.source.options import KinesisOptions

if TYPE_CHECKING:
    from kinesis_source.streams import StreamRef

log = logging.getLogger(__name__)

DEFAULT_NAME_PREFIX = "kinesis-source-"
# How often DescribeStreamConsumer is polled while a consumer is CREATING or DELETING
# (DescribeStreamConsumer allows 20 calls/s per account; one driver polls far below that).
POLL_SECONDS = 0.5


def default_consumer_name(query: str) -> str:
    """The consumer name of a query: from its id, which the offset log keeps across
    restarts of one checkpoint, so a restarted query finds its own consumer again."""
    return (DEFAULT_NAME_PREFIX + query)[:128]


class Step(Enum):
    USE = "use"  # ACTIVE: read with it
    WAIT = "wait"  # CREATING or UPDATING: poll again
    REGISTER = "register"  # absent: register it
    WAIT_GONE = "wait_gone"  # DELETING: a leftover of the same name is going away


def next_step(status: str | None) -> Step:
    """What to do about a consumer whose DescribeStreamConsumer status is ``status``
    (None: it does not exist)."""
    if status is None:
        return Step.REGISTER
    if status == "ACTIVE":
        return Step.USE
    if status == "DELETING":
        return Step.WAIT_GONE
    return Step.WAIT


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class ConsumerRegistry:
    """Consumer calls for one stream; ``client`` is a Kinesis client (no retries of its own
    needed: throttling is waited out within the registration timeout)."""

    def __init__(
        self,
        client: Any,
        stream: str,
        stream_arn: str,
        timeout_ms: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self.stream = stream
        self.stream_arn = stream_arn
        self.timeout_ms = timeout_ms
        self.clock = clock
        self.sleep = sleep

    def _describe(self, **who: str) -> dict[str, Any] | None:
        try:
            resp = self.client.describe_stream_consumer(**who)
        except ClientError as exc:
            if _code(exc) == "ResourceNotFoundException":
                return None
            raise
        return dict(resp["ConsumerDescription"])

    def _error(self, message: str, cause: BaseException | None = None) -> ConsumerError:
        error = ConsumerError(message, stream=self.stream)
        error.__cause__ = cause
        return error

    def count(self) -> int:
        """How many consumers the stream has (ListStreamConsumers, every page)."""
        total = 0
        request: dict[str, Any] = {"StreamARN": self.stream_arn}
        while True:
            resp = self.client.list_stream_consumers(**request)
            page = resp.get("Consumers") or []
            total += len(page)
            token = resp.get("NextToken")
            if not page or not token:
                return total
            request = {"StreamARN": self.stream_arn, "NextToken": token}

    def ensure(self, name: str) -> str:
        """The ARN of the ACTIVE consumer ``name``, registering it if missing."""
        deadline = self.clock() + self.timeout_ms / 1000.0
        while True:
            try:
                found = self._describe(StreamARN=self.stream_arn, ConsumerName=name)
                step = next_step(None if found is None else str(found["ConsumerStatus"]))
                if step is Step.USE:
                    assert found is not None
                    return str(found["ConsumerARN"])
                if step is Step.REGISTER:
                    self._register(name)
            except ClientError as exc:
                if _code(exc) not in (
                    "LimitExceededException",
                    "ResourceInUseException",
                    "ThrottlingException",
                ):
                    raise self._error(
                        f"cannot register the enhanced fan-out consumer {name!r} on stream "
                        f"{self.stream!r}: {_code(exc) or exc}",
                        exc,
                    ) from exc
                # A race (another driver registered it) or a rate limit: look again.
                log.info("consumer %r on stream %r: %s; retrying", name, self.stream, _code(exc))
            if self.clock() >= deadline:
                raise self._error(
                    f"the enhanced fan-out consumer {name!r} of stream {self.stream!r} did not "
                    f"become ACTIVE within consumerRegistrationTimeoutMs={self.timeout_ms}; "
                    "raise that option (registration can take a minute or more)"
                )
            self.sleep(POLL_SECONDS)

    def _register(self, name: str) -> None:
        try:
            self.client.register_stream_consumer(StreamARN=self.stream_arn, ConsumerName=name)
            log.info("registered enhanced fan-out consumer %r on stream %r", name, self.stream)
        except ClientError as exc:
            if _code(exc) == "LimitExceededException":
                consumers = self.count()
                if consumers >= limits.EFO_MAX_CONSUMERS:
                    raise self._error(
                        f"stream {self.stream!r} already has {consumers} enhanced fan-out "
                        f"consumers, the most Kinesis allows ({limits.EFO_MAX_CONSUMERS}), so "
                        f"consumer {name!r} cannot be registered. List them with `aws kinesis "
                        f"list-stream-consumers --stream-arn {self.stream_arn}`, remove "
                        "leftovers with `aws kinesis deregister-stream-consumer --consumer-arn "
                        "ARN`, or set the option consumerARN to reuse one of them",
                        exc,
                    ) from exc
            raise

    def check(self, consumer_arn: str) -> str:
        """``consumer_arn`` once ACTIVE (the option consumerARN: used as it is, never
        registered or deregistered by the connector)."""
        deadline = self.clock() + self.timeout_ms / 1000.0
        while True:
            found = self._describe(ConsumerARN=consumer_arn)
            step = next_step(None if found is None else str(found["ConsumerStatus"]))
            if step is Step.USE:
                return consumer_arn
            if step in (Step.REGISTER, Step.WAIT_GONE):
                raise self._error(
                    f"option 'consumerARN': consumer {consumer_arn} does not exist or is being "
                    f"deleted on stream {self.stream!r}; register it, or leave consumerARN "
                    "unset to let the connector register one"
                )
            if self.clock() >= deadline:
                raise self._error(
                    f"option 'consumerARN': consumer {consumer_arn} did not become ACTIVE "
                    f"within consumerRegistrationTimeoutMs={self.timeout_ms}"
                )
            self.sleep(POLL_SECONDS)

    def deregister(self, consumer_arn: str) -> None:
        """Deregister ``consumer_arn``; one that is already gone is fine."""
        try:
            self.client.deregister_stream_consumer(ConsumerARN=consumer_arn)
            log.info("deregistered enhanced fan-out consumer %s", consumer_arn)
        except ClientError as exc:
            if _code(exc) == "ResourceInUseException":
                found = self._describe(ConsumerARN=consumer_arn)
                if found is None or next_step(str(found["ConsumerStatus"])) is Step.WAIT_GONE:
                    return  # already going away
            if _code(exc) != "ResourceNotFoundException":
                raise self._error(
                    f"cannot deregister consumer {consumer_arn}: {_code(exc) or exc}", exc
                ) from exc


def registry_for(opts: KinesisOptions, ref: StreamRef) -> ConsumerRegistry:
    """The registry of the stream ``ref`` (one DescribeStreamSummary for its ARN)."""
    client = kinesis_client(opts)
    summary = kinesis.describe_stream_summary(client, ref, opts.region, policy_of(opts))
    return ConsumerRegistry(
        client, ref.name, str(summary["StreamARN"]), opts.consumer_registration_timeout_ms
    )


def resolve_consumer(opts: KinesisOptions, query: str, ref: StreamRef) -> str:
    """The ARN of the ACTIVE consumer the query reads ``ref`` with: consumerARN as given
    (one stream only), else consumerName (default: from the query's id) on every stream,
    registered if missing."""
    registry = registry_for(opts, ref)
    if opts.consumer_arn is not None:
        arn = registry.check(opts.consumer_arn)
    else:
        name = opts.consumer_name or default_consumer_name(query)
        arn = registry.ensure(name)
    log.info("stream %r: reading with enhanced fan-out consumer %s", ref.name, arn)
    return arn
