"""A task's lanes: one thread per lane, each fed by its own bounded queue for the whole task.

The task (``task.write_partition``) makes entries and puts each on the lane of the shard
its task's shard map routes it to (``lane_key``, ``batching.LaneRouter``); each
lane sends its entries one call after another (``put_records.LaneSender``), taking more
from its queue as it goes. A lane waiting on its shard's quota therefore holds up only
its own queue: the other lanes go on sending, where windows sent on all lanes at once and
waited for together left every other shard idle while the slowest one finished.

Per-key order holds: a key routes to one shard, so to one lane, while the map holds (it is
read again only once the lanes have written all they hold); a lane sends in the order
it was fed and retries rejected entries before later ones. A queue holds at most
``max_entries`` entries or ``max_bytes`` (one entry always fits an empty queue), so a
task holds a bounded amount, and the task stops making entries while the lane it must
feed is full.
"""

from __future__ import annotations

import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from kinesis_source import limits
from kinesis_source.sink.batching import ONE_PER_KEY_SCAN, Entry, LaneRouter
from kinesis_source.sink.put_records import LaneSender


def has_room(queued_entries: int, queued_bytes: int, max_entries: int, max_bytes: int) -> bool:
    """A lane's queue takes another entry: it is empty, or under both of its bounds."""
    return queued_entries == 0 or (queued_entries < max_entries and queued_bytes < max_bytes)


def wants_more(pending_entries: int, pending_bytes: int, *, one_per_key: bool) -> bool:
    """A lane takes more entries from its queue before its next call: it has less than its
    next call could hold (a one-per-key call looks ``ONE_PER_KEY_SCAN`` entries ahead for
    keys that are not blocked)."""
    most = ONE_PER_KEY_SCAN if one_per_key else limits.PUT_RECORDS_MAX_RECORDS
    return pending_entries < most and pending_bytes < limits.PUT_RECORDS_MAX_BYTES


def lane_key(entry: Entry) -> str:
    """What picks an entry's lane: the shard the task's map routes it to ("" while no open
    shard holds its hash key). A key's records all route to one shard while the map
    holds, and the map is read again only when the lanes have written all they hold."""
    return entry.target_shard or ""


class LaneFeed:
    """One lane's queue: the task puts entries, the lane takes them into its pending ones."""

    def __init__(
        self, max_entries: int, max_bytes: int, abort: threading.Event, *, one_per_key: bool
    ) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.abort = abort
        self.one_per_key = one_per_key
        self._queue: deque[Entry] = deque()
        self._bytes = 0
        self._busy = False  # the lane holds entries it has not written yet
        self._closed = False
        self._cond = threading.Condition()

    def put(self, entry: Entry) -> bool:
        """Queue ``entry``, waiting while the queue is full; False if the task was aborted."""
        with self._cond:
            while not has_room(len(self._queue), self._bytes, self.max_entries, self.max_bytes):
                if self.abort.is_set():
                    return False
                self._cond.wait()
            if self.abort.is_set():
                return False
            self._queue.append(entry)
            self._bytes += entry.size
            self._cond.notify_all()
            return True

    def refill(self, pending: list[Entry]) -> None:
        """The lane's side: move queued entries to the end of ``pending``; when ``pending``
        is empty (all the lane took is written), wait for entries or the end of the feed."""
        with self._cond:
            if not pending:
                self._busy = False
                self._cond.notify_all()  # a drain may be waiting for this
                while not self._queue and not self._closed and not self.abort.is_set():
                    self._cond.wait()
            size = sum(entry.size for entry in pending)
            while self._queue and wants_more(len(pending), size, one_per_key=self.one_per_key):
                entry = self._queue.popleft()
                self._bytes -= entry.size
                size += entry.size
                pending.append(entry)
            if pending:
                self._busy = True
            self._cond.notify_all()  # room for the task's next put

    def drain(self) -> None:
        """Wait until the lane has written everything it was fed (or the task aborted)."""
        with self._cond:
            while (self._queue or self._busy) and not self.abort.is_set():
                self._cond.wait()

    def close(self) -> None:
        """No more entries: the lane ends once it has written what it holds."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def wake(self) -> None:
        """Wake the waits on this feed (after ``abort`` was set)."""
        with self._cond:
            self._cond.notify_all()


class LanePool:
    """A task's lanes, running from its first entry to its end."""

    def __init__(
        self,
        senders: list[LaneSender],
        abort: threading.Event,
        *,
        max_entries: int,
        max_bytes: int,
        one_per_key: bool,
    ) -> None:
        self.abort = abort
        self.router = LaneRouter(len(senders))
        self.senders = senders
        self.feeds = [
            LaneFeed(max_entries, max_bytes, abort, one_per_key=one_per_key) for _ in senders
        ]
        self._threads = ThreadPoolExecutor(
            max_workers=len(senders), thread_name_prefix="kinesis-put"
        )
        self.futures: list[Future[None]] = []
        for sender, feed in zip(senders, self.feeds, strict=True):
            future = self._threads.submit(sender.run, feed)
            future.add_done_callback(self._on_done)
            self.futures.append(future)

    def _on_done(self, future: Future[None]) -> None:
        if future.exception() is not None:
            self.stop()  # the other lanes stop after their current call

    def stop(self) -> None:
        self.abort.set()
        for feed in self.feeds:
            feed.wake()

    def put(self, entries: list[Entry]) -> None:
        for entry in entries:
            if not self.feeds[self.router.lane_of(lane_key(entry))].put(entry):
                self._raise_failure()

    def drain(self) -> None:
        """Wait until every lane has written all it was fed; raise a lane's failure."""
        for feed in self.feeds:
            feed.drain()
        self._raise_failure()

    def misrouted(self) -> list[tuple[Entry, str]]:
        """The entries the lanes found on another shard than planned, taken."""
        return [found for sender in self.senders for found in sender.take_misrouted()]

    def has_misrouted(self) -> bool:
        return any(sender.has_misrouted() for sender in self.senders)

    def close(self) -> None:
        """End the lanes (after what they hold is written, unless aborted); raise a lane's
        failure."""
        for feed in self.feeds:
            feed.close()
        self._threads.shutdown(wait=True)
        self._raise_failure()

    def _raise_failure(self) -> None:
        for future in self.futures:
            if future.done() and future.exception() is not None:
                future.result()
        if self.abort.is_set():
            # Stopped from outside the lanes (the task failed): its error is on its way.
            raise _Aborted("the task's lanes were stopped")

    def __enter__(self) -> LanePool:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()
        self._threads.shutdown(wait=True)


class _Aborted(Exception):
    """The lanes were stopped by the task, whose own error is being raised."""
