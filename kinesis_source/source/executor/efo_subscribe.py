"""Executor side, enhanced fan-out: opening a shard's subscription (SubscribeToShard).

The calls' refusals are decided here, apart from reading the events (``efo.py``):

- ``ResourceInUseException``: another subscription of this consumer and shard started
  under 5 s ago. With ``efoFallbackToPolling`` (the default) ``SubscriptionInUse`` hands
  the read to GetRecords at once; without it the call is retried until the takeover
  succeeds, as the AWS connectors do;
- ``ResourceNotFoundException`` for a gone shard (or a deregistered consumer: checked, an
  error) and ``InvalidArgumentException`` for a sequence number no longer in the shard:
  lost data, decided as for polling (``data_loss.go_on_after``): an error, or with
  ``failOnDataLoss=false`` a warning and the shard treated as ended (``ShardGone``) or
  subscribed from its oldest record.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from kinesis_source import limits
from kinesis_source.aws.clients import kinesis_client
from kinesis_source.aws.retry import call_with_retry, policy_of
from kinesis_source.errors import ConsumerError, KinesisReadError
from kinesis_source.source.data_loss import ReadLoss, go_on_after, read_loss
from kinesis_source.source.executor.efo_subscription import Subscription
from kinesis_source.source.options import KinesisOptions
from kinesis_source.source.positions import Position

log = logging.getLogger(__name__)

# How long a SubscribeToShard refused with ResourceInUseException is retried: the 5 s
# rule plus margin for clocks and a takeover in flight.
TAKEOVER_WAIT_SECONDS = limits.EFO_TAKEOVER_SECONDS + 5
TAKEOVER_RETRY_SECONDS = 0.5


def starting_position(position: Position) -> dict[str, Any]:
    """SubscribeToShard's ``StartingPosition`` for a read that starts at ``position``
    (a split aggregate restarts AT its sequence number; the reader skips what it read)."""
    request = position.iterator_request()
    start: dict[str, Any] = {"Type": request["ShardIteratorType"]}
    if "StartingSequenceNumber" in request:
        start["SequenceNumber"] = request["StartingSequenceNumber"]
    if "Timestamp" in request:
        start["Timestamp"] = request["Timestamp"]
    return start


class ShardGone(Exception):
    """SubscribeToShard found the shard gone and failOnDataLoss=false: the read ends."""


class SubscriptionInUse(Exception):
    """SubscribeToShard refused under the 5-second rule, and efoFallbackToPolling says to
    read by GetRecords rather than wait."""


class ShardSubscriber:
    """SubscribeToShard for one consumer and shard, its refusals decided."""

    def __init__(
        self,
        opts: KinesisOptions,
        stream: str,
        shard_id: str,
        consumer_arn: str,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = kinesis_client(opts)
        self.policy = policy_of(opts)
        self.stream = stream
        self.shard_id = shard_id
        self.consumer_arn = consumer_arn
        self.sleep = sleep
        self.fail_on_data_loss = opts.fail_on_data_loss
        self.fallback_to_polling = opts.efo_fallback_to_polling

    def subscribe(self, position: Position) -> Subscription:
        """A subscription at ``position``, or where the data-loss rules say to go on."""
        start = starting_position(position)
        waited_since = time.monotonic()
        while True:
            try:
                resp = self._subscribe_at(start)
                break
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                waited = time.monotonic() - waited_since
                if code == "ResourceInUseException" and waited < TAKEOVER_WAIT_SECONDS:
                    # Another subscription of this consumer and shard started under 5 s ago.
                    if self.fallback_to_polling:
                        raise SubscriptionInUse from exc
                    log.info(
                        "shard %s: subscription in use; retrying in %.1f s",
                        self.shard_id,
                        TAKEOVER_RETRY_SECONDS,
                    )
                    self.sleep(TAKEOVER_RETRY_SECONDS)
                    continue
                loss = read_loss(code, position)
                if loss is None:
                    raise KinesisReadError(
                        f"SubscribeToShard on stream {self.stream!r} shard {self.shard_id} "
                        f"with consumer {self.consumer_arn} at {position.text()} failed: "
                        f"{code or exc}",
                        stream=self.stream,
                        shard_id=self.shard_id,
                        sequence_number=position.sequence,
                    ) from exc
                if loss is ReadLoss.SHARD_GONE:
                    self._check_consumer(exc)
                position = go_on_after(
                    loss,
                    stream=self.stream,
                    shard_id=self.shard_id,
                    position=position,
                    refusal=f"SubscribeToShard: {code}",
                    fail_on_data_loss=self.fail_on_data_loss,
                    cause=exc,
                )
                if position.is_shard_end:
                    raise ShardGone from exc
                start = starting_position(position)
        log.debug("shard %s: subscribed at %s", self.shard_id, position.text())
        return Subscription(resp["EventStream"], self.shard_id)

    def _subscribe_at(self, start: dict[str, Any]) -> Any:
        return call_with_retry(
            lambda: self.client.subscribe_to_shard(
                ConsumerARN=self.consumer_arn, ShardId=self.shard_id, StartingPosition=start
            ),
            self.policy,
            what="SubscribeToShard",
            stream=self.stream,
            shard_id=self.shard_id,
        )

    def _check_consumer(self, refusal: ClientError) -> None:
        """SubscribeToShard's ResourceNotFoundException also means a deregistered consumer:
        that is no data loss, and no reason to skip the shard."""
        try:
            call_with_retry(
                lambda: self.client.describe_stream_consumer(ConsumerARN=self.consumer_arn),
                self.policy,
                what="DescribeStreamConsumer",
                stream=self.stream,
                shard_id=self.shard_id,
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                raise
            raise ConsumerError(
                f"SubscribeToShard on stream {self.stream!r} shard {self.shard_id}: the "
                f"enhanced fan-out consumer {self.consumer_arn} is no longer registered; "
                "restart the query to register it again (or set consumerARN to a registered "
                "consumer)",
                stream=self.stream,
                shard_id=self.shard_id,
            ) from refusal
