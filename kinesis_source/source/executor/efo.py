"""Executor side, enhanced fan-out: a shard's SubscribeToShard events as ``RecordsPage``s.

Only the transport differs from polling (docs/design.md section 2): an event carries records,
``MillisBehindLatest`` and a ``ContinuationSequenceNumber`` (or, at a closed shard's end,
``ChildShards`` and no continuation), and becomes a page the shard reader's stop rules,
KPL deaggregation and Arrow output handle exactly as a GetRecords page. The page's
``next_shard_iterator`` holds the continuation: None means the shard ended, as it does
for GetRecords.

Service rules handled here:

- a subscription ends after 5 minutes: the event stream closes and the read resubscribes
  where it stands;
- SubscribeToShard for the same consumer and shard within 5 s of a successful call gets
  ``ResourceInUseException``. With a 1 s trigger a subscription per batch would stall, so
  a read that stopped between events leaves its subscription open in this Python worker
  (``efo_kept``); the next batch of the shard that starts exactly there continues from it
  instead of subscribing again. Spark gives a Python source no say in which worker runs a
  task, so a shard's next batch often runs in another worker, whose SubscribeToShard
  comes within 5 s of the first worker's. That read does not wait out the rule: it reads
  the batch by GetRecords from where it stands (the polling transport, paced by
  ``fetchIntervalMs``; the stop rules, replay bound and put-if-absent are the read's, so
  the rows are those the events would have carried) and a later batch subscribes again,
  taking the subscription over once it is 5 s old. Meanwhile the first worker still
  holds its subscription, now behind the shard's next start: its next batch of the shard
  continues it, dropping the records the GetRecords read took (``behind``), rather than
  subscribe again and be refused by its own subscription. With ``efoFallbackToPolling=false``
  the refused call is retried until the takeover succeeds, as the AWS connectors do;
- a subscription kept open and not continued by the shard's next batch in this worker
  (a read of a later batch of the consumer starts here) or within
  ``limits.EFO_KEEP_OPEN_SECONDS`` is closed, so threads, buffered events and connections
  stay bounded by the shards this worker read lately (``release_stale``);
- SubscribeToShard's refusals (the 5-second rule, a gone shard or a deregistered
  consumer, a sequence number no longer in the shard) are decided in ``efo_subscribe``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Generator
from typing import Any

from kinesis_source import limits
from kinesis_source.records.records_page import RecordsPage, page_from_response
from kinesis_source.source.executor.efo_kept import Kept, keep, release_stale, take
from kinesis_source.source.executor.efo_subscribe import (
    ShardGone,
    ShardSubscriber,
    SubscriptionInUse,
)
from kinesis_source.source.executor.efo_subscription import Ended, Subscription
from kinesis_source.source.executor.get_records import GetRecordsTransport
from kinesis_source.source.executor.stop_rules import after_continuation
from kinesis_source.source.options import KinesisOptions
from kinesis_source.source.positions import AFTER_SEQUENCE_NUMBER, Position

log = logging.getLogger(__name__)


def page_of(event: dict[str, Any], *, deaggregate_kpl: bool) -> RecordsPage:
    """A ``SubscribeToShardEvent`` as a page; ``next_shard_iterator`` is the continuation."""
    page = page_from_response(event, deaggregate_kpl=deaggregate_kpl)
    page.next_shard_iterator = page.continuation = event.get("ContinuationSequenceNumber")
    return page


def rest_of_event(event: dict[str, Any], position: Position) -> dict[str, Any] | None:
    """The part of ``event`` a read that stopped at ``position`` inside it (a record cap)
    has not consumed, or None if ``position`` is not inside the event.

    A split aggregate stays in the rest: the next read's skip mark drops its consumed
    user records, as after a fresh subscription AT its sequence number.
    """
    if position.sequence is None:
        return None
    at = int(position.sequence)
    records = event.get("Records") or []
    if not any(int(r["SequenceNumber"]) == at for r in records):
        return None
    if position.sub is None:
        rest = [r for r in records if int(r["SequenceNumber"]) > at]
    else:
        rest = [r for r in records if int(r["SequenceNumber"]) >= at]
    return {**event, "Records": rest}


def behind(kept: Position, start: Position) -> bool:
    """True if a subscription kept at ``kept`` can serve a read from ``start`` by dropping
    the records up to it: both stand after a whole record, ``kept`` the earlier one (a
    read in another worker took the records in between by GetRecords)."""
    return (
        kept.kind == start.kind == AFTER_SEQUENCE_NUMBER
        and kept.sub is None
        and start.sub is None
        and kept.sequence is not None
        and start.sequence is not None
        and int(kept.sequence) < int(start.sequence)
    )


def records_after(event: dict[str, Any], position: Position) -> dict[str, Any]:
    """``event`` without the records at or before ``position`` (after a whole record)."""
    assert position.sequence is not None
    at = int(position.sequence)
    return {
        **event,
        "Records": [r for r in event.get("Records") or [] if int(r["SequenceNumber"]) > at],
    }


# (consumer ARN, shard id) whose first GetRecords fallback this Python worker logged at INFO.
_FALLBACK_LOGGED: set[tuple[str, str]] = set()


class EventStreamTransport:
    """Pages of one shard by SubscribeToShard, from a kept subscription or a new one.

    The enhanced fan-out counterpart of the GetRecords transport: the same ``pages``
    generator, so the shard reader's loop, stop rules and end recording are shared.
    """

    def __init__(
        self,
        opts: KinesisOptions,
        stream: str,
        shard_id: str,
        consumer_arn: str,
        *,
        batch: int | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.opts = opts
        self.batch = batch
        self.consumer_arn = consumer_arn
        self.stream = stream
        self.shard_id = shard_id
        self.deaggregate_kpl = opts.deaggregate
        self._subscriber = ShardSubscriber(opts, stream, shard_id, consumer_arn, sleep=sleep)
        self._subscription: Subscription | None = None
        # Set while a continued subscription still holds records up to the read's start.
        self._skip_to: Position | None = None
        # Set when the shard is gone and failOnDataLoss=false says to go on: the read then
        # treats the shard as ended, as the GetRecords transport does.
        self.shard_gone = False
        # The GetRecords read that took over once SubscribeToShard was refused.
        self._polling: GetRecordsTransport | None = None

    @property
    def _key(self) -> tuple[str, str]:
        return (self.consumer_arn, self.shard_id)

    def pages(
        self,
        start: Position,
        reached: Callable[[], Position],
        wanted: Callable[[], int | None] = lambda: None,
    ) -> Generator[RecordsPage, None, None]:
        """Pages from ``start`` until the shard ends or the caller stops asking.

        ``reached`` tells where the read stands: a resubscription starts there, and a
        read that stops keeps the subscription open there for the next batch. A
        subscription refused under the 5-second rule hands the rest of the read to
        GetRecords from there (``efoFallbackToPolling``), which then honours ``wanted``
        as the GetRecords transport does; events come as Kinesis pushes them.
        """
        try:
            yield from self._event_pages(start, reached)
        except SubscriptionInUse:
            yield from self._polled_pages(reached, wanted)

    @property
    def fell_back(self) -> bool:
        """This read took its records by GetRecords (SubscribeToShard refused)."""
        return self._polling is not None

    @property
    def last_limit(self) -> int | None:
        """GetRecords' Limit of the last page once fallen back; None for events."""
        return None if self._polling is None else self._polling.last_limit

    def read_ahead(self, page: RecordsPage, units_left: int | None) -> None:
        """Only GetRecords pages are fetched ahead: events arrive as Kinesis pushes them."""
        if self._polling is not None:
            self._polling.read_ahead(page, units_left)

    def _polled_pages(
        self, reached: Callable[[], Position], wanted: Callable[[], int | None]
    ) -> Generator[RecordsPage, None, None]:
        """The rest of the read by GetRecords, from where it stands."""
        polling = self._polling = GetRecordsTransport(self.opts, self.stream, self.shard_id)
        at = reached()
        first = self._key not in _FALLBACK_LOGGED
        _FALLBACK_LOGGED.add(self._key)
        log.log(
            logging.INFO if first else logging.DEBUG,
            "stream %r shard %s: SubscribeToShard refused (ResourceInUseException: consumer "
            "%s subscribed this shard under %d s ago, most likely from the Python worker that "
            "read its last batch); reading this batch by GetRecords from %s instead of "
            "waiting, and subscribing again at a later batch (efoFallbackToPolling=false "
            "waits instead)%s",
            self.stream,
            self.shard_id,
            self.consumer_arn,
            limits.EFO_TAKEOVER_SECONDS,
            at.text(),
            "; logged once per shard in this Python worker" if first else "",
        )
        try:
            yield from polling.pages(at, reached, wanted)
        finally:
            self.shard_gone = polling.shard_gone

    def _event_pages(
        self, start: Position, reached: Callable[[], Position]
    ) -> Generator[RecordsPage, None, None]:
        boundary = start
        event: dict[str, Any] | None = None
        try:
            pending = self.open(start)
            while True:
                event = pending if pending is not None else self.next_event(reached())
                pending = None
                page = page_of(event, deaggregate_kpl=self.deaggregate_kpl)
                if page.sequence_numbers:
                    boundary = Position.after(page.sequence_numbers[-1])
                boundary, _ = after_continuation(boundary, page.continuation, None)
                yield page
                if page.next_shard_iterator is None:
                    return
        except ShardGone:
            # failOnDataLoss=false said to go on: the read treats the shard as ended.
            self.shard_gone = True
            return
        finally:
            at = reached()
            if at == boundary:
                self.close(at)
            else:
                rest = None if event is None else rest_of_event(event, at)
                self.close(None if rest is None else at, rest)

    def _skipped(self, event: dict[str, Any]) -> dict[str, Any]:
        """``event`` of a continued subscription that stood behind the read's start, without
        the records up to the start; skipping ends once the event's continuation is there."""
        assert self._skip_to is not None and self._skip_to.sequence is not None
        rest = records_after(event, self._skip_to)
        continuation = event.get("ContinuationSequenceNumber")
        if (
            rest.get("Records")
            or continuation is None
            or int(continuation) >= int(self._skip_to.sequence)
        ):
            self._skip_to = None
        return rest

    def open(self, start: Position) -> dict[str, Any] | None:
        """Continue the subscription kept at ``start`` (returning the rest of the event it
        stopped in, if any), or subscribe there."""
        kept = take(self._key)
        release_stale(self.consumer_arn, self.batch)
        if kept is not None and kept.position == start:
            log.debug("shard %s: continuing the open subscription at %s", self.shard_id, start)
            self._subscription = kept.subscription
            return kept.pending
        if kept is not None and behind(kept.position, start):
            # Another worker read on from here by GetRecords while this one kept the
            # subscription: continue it, dropping what that read took, rather than
            # subscribe again (which its own subscription, under 5 s old, would refuse).
            log.debug(
                "shard %s: continuing the open subscription at %s from %s",
                self.shard_id,
                kept.position.text(),
                start.text(),
            )
            self._subscription = kept.subscription
            self._skip_to = start
            return None if kept.pending is None else self._skipped(kept.pending)
        if kept is not None:
            kept.subscription.close()
        self._subscription = self._subscriber.subscribe(start)
        return None

    def next_event(self, position: Position) -> dict[str, Any]:
        """Every event that has arrived, as one; resubscribes at ``position`` (where the
        reader stands) when the subscription expired or was taken over."""
        while True:
            if self._subscription is None:
                self._subscription = self._subscriber.subscribe(position)
            assert self._subscription is not None
            item = self._subscription.take()
            if isinstance(item, dict):
                return item if self._skip_to is None else self._skipped(item)
            if isinstance(item, Ended):
                # The 5-minute lifetime ended; the shard's end would have come as an event.
                log.info("shard %s: subscription ended; resubscribing", self.shard_id)
            else:
                log.warning(
                    "shard %s: event stream failed (%s); resubscribing", self.shard_id, item
                )
            self._drop()

    def next_page(self, position: Position) -> RecordsPage:
        """``next_event`` as a page."""
        return page_of(self.next_event(position), deaggregate_kpl=self.deaggregate_kpl)

    def _drop(self) -> None:
        if self._subscription is not None:
            self._subscription.close()
        self._subscription = None

    def close(self, position: Position | None, pending: dict[str, Any] | None = None) -> None:
        """End of the read: keep the subscription open at ``position`` for the next batch,
        with the rest of the event it stopped in (``pending``), or (None) drop it."""
        if self._subscription is None:
            return
        if position is None or position.is_shard_end:
            self._drop()
            return
        keep(self._key, Kept(self._subscription, position, pending, self.batch))
        self._subscription = None
