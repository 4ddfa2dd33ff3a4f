"""One open SubscribeToShard event stream, read by a background thread into a queue.

Kinesis pushes events whether or not anyone reads them. A subscription kept open between
batches therefore holds events that arrived while no task ran, the oldest first; read one
at a time, an old caught-up event (``MillisBehindLatest == 0``) would end the next batch
after a single event and the query would fall further behind with every batch. So a
thread reads the stream as it comes, and a read takes everything that has arrived as one
merged event, as a GetRecords call returns everything available: its
``MillisBehindLatest`` is the newest one's. The queue is bounded, so a subscription that
nobody reads stops taking events from the connection (the service then holds them back).
"""

from __future__ import annotations

import logging
import queue
import threading
from typing import Any

from kinesis_source import limits

log = logging.getLogger(__name__)

# Events buffered per subscription while no read takes them (each holds at most what a
# shard delivers in a moment: 2 MiB/s per consumer and shard).
QUEUE_EVENTS = 64


class Ended:
    """The stream closed without a shard end: the subscription's lifetime is over."""


ENDED = Ended()


def merge_events(first: dict[str, Any], later: dict[str, Any]) -> dict[str, Any]:
    """Two consecutive ``SubscribeToShardEvent``s as one: every record, and the later
    one's continuation, lag and (at the shard's end) child shards."""
    merged: dict[str, Any] = {
        "Records": [*(first.get("Records") or []), *(later.get("Records") or [])],
        "MillisBehindLatest": later.get("MillisBehindLatest"),
    }
    for key in ("ContinuationSequenceNumber", "ChildShards"):
        if later.get(key) is not None:
            merged[key] = later[key]
    return merged


def _closes_shard(event: dict[str, Any]) -> bool:
    return event.get("ContinuationSequenceNumber") is None


class Subscription:
    """An event stream (botocore ``EventStream``) and the thread that drains it."""

    def __init__(self, stream: Any, shard_id: str) -> None:
        self._stream = stream
        self._queue: queue.Queue[dict[str, Any] | Ended | BaseException] = queue.Queue(
            maxsize=QUEUE_EVENTS
        )
        self._closed = threading.Event()
        # A terminal item (end or error) seen while merging, handed out by the next take.
        self._held: Ended | BaseException | None = None
        threading.Thread(target=self._pump, name=f"kinesis-efo-{shard_id}", daemon=True).start()

    def _offer(self, item: dict[str, Any] | Ended | BaseException) -> bool:
        while not self._closed.is_set():
            try:
                self._queue.put(item, timeout=0.5)
                return True
            except queue.Full:
                continue
        return False

    def _pump(self) -> None:
        final: Ended | BaseException = ENDED
        try:
            for event in self._stream:
                body = event.get("SubscribeToShardEvent")
                if body is not None and not self._offer(dict(body)):
                    return
        except BaseException as exc:  # handed to the reader, which resubscribes or fails
            final = exc
        if not self._closed.is_set():
            self._offer(final)

    def take(
        self, max_records: int = limits.GET_RECORDS_MAX_RECORDS
    ) -> dict[str, Any] | Ended | BaseException:
        """Every event that has arrived, merged (waiting for one if none has), up to
        about ``max_records`` records; or how the stream ended."""
        if self._held is not None:
            held, self._held = self._held, None
            return held
        first = self._queue.get()
        if not isinstance(first, dict):
            return first
        merged = first
        while not _closes_shard(merged) and len(merged.get("Records") or []) < max_records:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if not isinstance(item, dict):
                self._held = item
                break
            merged = merge_events(merged, item)
        return merged

    def close(self) -> None:
        self._closed.set()
        try:
            self._stream.close()
        except Exception:  # closing a dead connection: nothing left to release
            log.debug("closing an event stream failed", exc_info=True)
