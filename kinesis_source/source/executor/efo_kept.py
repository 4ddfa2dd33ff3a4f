"""Enhanced fan-out subscriptions kept open in this Python worker between batches.

A read that stopped leaves its subscription here, by (consumer ARN, shard id), so that
the shard's next batch in this worker continues it instead of subscribing again within
the 5-second rule (docs/design.md section 13). Each kept subscription holds a thread, up
to ``QUEUE_EVENTS`` buffered events and a connection, so one that will not be continued
is closed:

- at the start of a read of batch B of its consumer, if it was kept by a batch before
  B - 1: the batch after it, the one that would have continued it, is over (Spark ran
  the shard's read in another worker, or no longer reads the shard);
- after ``limits.EFO_KEEP_OPEN_SECONDS`` without being continued, by a thread that runs
  while anything is kept: a worker that gets no more tasks releases them too.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from kinesis_source import limits
from kinesis_source.source.executor.efo_subscription import Subscription
from kinesis_source.source.positions import Position

log = logging.getLogger(__name__)

Key = tuple[str, str]


@dataclass
class Kept:
    """A subscription left open between batches, where its reader stopped, and the rest
    of the event it stopped in (None: it stopped between events)."""

    subscription: Subscription
    position: Position
    pending: dict[str, Any] | None = None
    # The batch whose read kept it (None: unknown), and when (time.monotonic()).
    batch: int | None = None
    kept_at: float = field(default_factory=time.monotonic)


_KEPT: dict[Key, Kept] = {}
_LOCK = threading.Lock()
# The thread that closes kept subscriptions nobody continued (one, while any is kept).
_REAPER: list[threading.Thread] = []


def stale(kept: Kept, consumer_arn: str | None, batch: int | None, now: float) -> bool:
    """True if ``kept`` will not be continued: kept longer than EFO_KEEP_OPEN_SECONDS, or
    (``consumer_arn`` being its consumer's) kept by a batch before ``batch - 1``."""
    if now - kept.kept_at > limits.EFO_KEEP_OPEN_SECONDS:
        return True
    return (
        consumer_arn is not None
        and batch is not None
        and kept.batch is not None
        and kept.batch < batch - 1
    )


def take(key: Key) -> Kept | None:
    """The subscription kept for ``key``, no longer kept (the caller continues or closes it)."""
    with _LOCK:
        return _KEPT.pop(key, None)


def keep(key: Key, kept: Kept) -> None:
    """Keep ``kept`` for ``key``, closing one kept there before."""
    with _LOCK:
        previous = _KEPT.pop(key, None)
        _KEPT[key] = kept
        if not _REAPER:
            reaper = threading.Thread(target=_reap, name="kinesis-efo-reaper", daemon=True)
            _REAPER.append(reaper)
            reaper.start()
    if previous is not None:
        previous.subscription.close()


def kept_count() -> int:
    with _LOCK:
        return len(_KEPT)


def release_stale(
    consumer_arn: str | None = None, batch: int | None = None, now: float | None = None
) -> int:
    """Close the kept subscriptions ``stale`` says will not be continued (those of other
    consumers by time only); how many were closed."""
    at = time.monotonic() if now is None else now
    with _LOCK:
        gone = [
            key
            for key, kept in _KEPT.items()
            if stale(kept, consumer_arn if key[0] == consumer_arn else None, batch, at)
        ]
        closing = {key: _KEPT.pop(key) for key in gone}
    for (_, shard_id), kept in closing.items():
        log.debug("shard %s: closing the subscription kept at %s", shard_id, kept.position)
        kept.subscription.close()
    return len(closing)


def _reap() -> None:
    while True:
        time.sleep(limits.EFO_KEEP_OPEN_SECONDS / 3)
        release_stale()
        with _LOCK:
            if not _KEPT:
                _REAPER.clear()
                return
