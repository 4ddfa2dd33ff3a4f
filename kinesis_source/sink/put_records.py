"""Sending PutRecords calls and retrying the entries a call rejected.

PutRecords is not all-or-nothing: an answer with HTTP 200 may carry ``FailedRecordCount``
and, per entry, an ``ErrorCode`` (``ProvisionedThroughputExceededException``,
``InternalFailure``, ``KMSThrottlingException``, or a KMS error that no retry fixes). The
rejected entries go back to the front of the lane's pending entries and are sent again
after a wait with full jitter (``RejectionBackoff``), under the same ``maxRetries`` /
``retryBaseDelayMs`` / ``retryMaxDelayMs`` options as the source's calls (aws/retry.py,
which also retries a call that fails as a whole): short and not growing for entries
refused over a shard's write quota, growing for other refusals. A lane that writes nothing
for longer than its retries allow fails the task.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from kinesis_source.aws.retry import RetryPolicy, call_with_retry
from kinesis_source.errors import KinesisWriteError
from kinesis_source.sink.batching import Entry, next_call

log = logging.getLogger(__name__)

THROTTLED_ENTRY_CODES = frozenset(
    {"ProvisionedThroughputExceededException", "KMSThrottlingException"}
)
RETRYABLE_ENTRY_CODES = THROTTLED_ENTRY_CODES | {"InternalFailure"}


@dataclass
class PutStats:
    """What one task wrote: the counts its commit message carries to the driver."""

    records: int = 0  # user records
    entries: int = 0  # Kinesis records (an aggregate is one)
    bytes: int = 0
    calls: int = 0
    retried_entries: int = 0
    throttled_entries: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **counts: int) -> None:
        with self._lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)


class Feed(Protocol):
    """Where a lane takes its entries from (``lanes.LaneFeed``)."""

    def refill(self, pending: list[Entry]) -> None: ...


def _nothing_more(pending: list[Entry]) -> None:
    """A lane given all its entries at once takes no more."""


class LaneSender:
    """Sends one lane's entries, one call after another, retrying rejected entries."""

    def __init__(
        self,
        client: Any,
        stream: str,
        policy: RetryPolicy,
        *,
        one_per_key: bool,
        stats: PutStats,
        abort: threading.Event,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.stream = stream
        self.policy = policy
        self.one_per_key = one_per_key
        self.stats = stats
        self.abort = abort
        self.sleep = sleep
        self.draw = rng.uniform if rng is not None else random.uniform
        self.clock = clock
        # Entries that landed on another shard than their target (a reshard), with it.
        self.misrouted: list[tuple[Entry, str]] = []
        self._lock = threading.Lock()

    def send(self, entries: Sequence[Entry]) -> None:
        """Send ``entries`` and return once all are written."""
        self._send(list(entries), _nothing_more)

    def run(self, feed: Feed) -> None:
        """Send what ``feed`` gives, taking more as calls go out, until it ends."""
        self._send([], feed.refill)

    def take_misrouted(self) -> list[tuple[Entry, str]]:
        with self._lock:
            found, self.misrouted = self.misrouted, []
        return found

    def has_misrouted(self) -> bool:
        with self._lock:
            return bool(self.misrouted)

    def _send(self, pending: list[Entry], refill: Callable[[list[Entry]], None]) -> None:
        # One backoff for the lane's life: a stall is counted across what it is fed.
        backoff = RejectionBackoff(self.policy)
        writes = WriteLog()
        while not self.abort.is_set():
            refill(pending)
            if not pending:
                return
            picked = next_call(pending, one_per_key=self.one_per_key)
            results = self._put([pending[i] for i in picked])
            now_ms = self.clock() * 1000
            rejected: dict[int, str] = {}
            # Counted once per call, not per entry: the counts' lock is shared by the lanes.
            records = entries = size = 0
            landed_on: set[str] = set()
            for index, result in zip(picked, results, strict=True):
                code = result.get("ErrorCode")
                if code is not None:
                    rejected[index] = str(code)
                    continue
                entry = pending[index]
                records += entry.user_records
                entries += 1
                size += entry.size
                if entry.target_shard is None:
                    continue
                landed = str(result.get("ShardId"))
                landed_on.add(landed)
                if landed != entry.target_shard:
                    with self._lock:
                        self.misrouted.append((entry, landed))
            self.stats.add(records=records, entries=entries, bytes=size)
            for shard in landed_on:
                writes.record(shard, now_ms)
            refused_shards = [pending[index].target_shard for index in rejected]
            done = set(picked) - set(rejected)
            pending[:] = [entry for index, entry in enumerate(pending) if index not in done]
            throttled = sum(1 for c in rejected.values() if c in THROTTLED_ENTRY_CODES)
            backoff.record(wrote=bool(done), throttled_only=throttled == len(rejected))
            if not rejected:
                continue
            self._check_rejected(rejected, backoff)
            delay_ms = backoff.wait_ms(self.draw, writes.frees_in_ms(refused_shards, now_ms))
            self.stats.add(retried_entries=len(rejected), throttled_entries=throttled)
            log.warning(
                "PutRecords on stream %r: %d of %d entries rejected (%s); retrying them in %.0f ms",
                self.stream,
                len(rejected),
                len(picked),
                _counted(rejected.values()),
                delay_ms,
            )
            self.sleep(delay_ms / 1000.0)

    def _put(self, entries: list[Entry]) -> list[dict[str, Any]]:
        request = []
        for entry in entries:
            item: dict[str, Any] = {"Data": entry.data, "PartitionKey": entry.partition_key}
            if entry.explicit_hash_key is not None:
                item["ExplicitHashKey"] = entry.explicit_hash_key
            request.append(item)
        response = call_with_retry(
            lambda: self.client.put_records(StreamName=self.stream, Records=request),
            self.policy,
            what="PutRecords",
            stream=self.stream,
            failure=KinesisWriteError,
        )
        self.stats.add(calls=1)
        log.debug("PutRecords on stream %r: %d entries", self.stream, len(entries))
        records: list[dict[str, Any]] = response["Records"]
        return records

    def _check_rejected(self, rejected: dict[int, str], backoff: RejectionBackoff) -> None:
        fatal = [c for c in rejected.values() if c not in RETRYABLE_ENTRY_CODES]
        if fatal:
            raise KinesisWriteError(
                f"PutRecords on stream {self.stream!r}: {len(fatal)} records were rejected with "
                f"errors no retry fixes ({_counted(fatal)}); records written before "
                "stay written (the sink is at least once)",
                stream=self.stream,
            )
        reason = backoff.gave_up()
        if reason is not None:
            raise KinesisWriteError(
                f"PutRecords on stream {self.stream!r}: {len(rejected)} records still failed "
                f"{reason}; error codes: {_counted(rejected.values())}. Records written before "
                "stay written (the sink is at least once); add shards or raise maxRetries / "
                "retryMaxDelayMs",
                stream=self.stream,
            )


class RejectionBackoff:
    """How long a lane waits before it sends rejected entries again, and when it gives up.

    A call that wrote some of its entries ends a stall. In a stall (calls in a row that
    wrote none of their entries):

    - entries refused only over their shard's write quota (throttled) are sent again after
      a short wait, full jitter up to ``retryBaseDelayMs``, that does not grow: the quota is
      per second, so it frees within a second, and a wait grown to seconds would leave it
      unused (at the quota, half of it, in the bench's section (i)). The lane gives up only
      after a stall of as long as ``maxRetries`` retries of a failing call may wait at
      most (31.2 s by default);
    - other retryable refusals (``InternalFailure``) back off as a failing call does
      (``aws/retry.py``), and after ``maxRetries`` such calls the lane gives up.

    Outside a stall the wait after a partly rejected call is the first step's: that lane
    is writing, its rejected entries are for shards at their quota.
    """

    def __init__(self, policy: RetryPolicy) -> None:
        self.policy = policy
        self.stalled = False  # the last call wrote none of its entries
        self.failing = 0  # calls of the stall with a refusal other than a throttle
        self.throttled_only = True  # the last call's refusals were all throttles
        self.waited_ms = 0.0  # waits since the last call that wrote
        self.budget_ms = sum(policy.delay_ms_cap(retry) for retry in range(policy.max_retries))

    def record(self, *, wrote: bool, throttled_only: bool) -> None:
        """A call's outcome: it ``wrote`` some entries; its refusals were all throttles."""
        self.stalled = not wrote
        if wrote:
            self.failing, self.waited_ms = 0, 0.0
        elif not throttled_only:
            self.failing += 1
        self.throttled_only = throttled_only

    def gave_up(self) -> str | None:
        """Why the lane stops after a call with refusals (the end of "N records still
        failed ..."), or None."""
        retries = self.policy.max_retries
        if retries == 0 or self.failing > retries:
            return f"after {retries} retries (maxRetries={retries})"
        if self.stalled and self.throttled_only and self.waited_ms >= self.budget_ms:
            return (
                f"over the write quota after {self.waited_ms / 1000:.1f} s without a record "
                f"written, as long as {retries} retries may wait (maxRetries={retries})"
            )
        return None

    def wait_ms(
        self, draw: Callable[[float, float], float], frees_in_ms: float | None = None
    ) -> float:
        """The wait before the next call (``draw``: a uniform draw, as ``random.uniform``).

        ``frees_in_ms``: when the lane's own write to a throttled shard turns a second old
        (``WriteLog``), so its room in the shard's quota is free again; a throttled lane
        waits no longer than that, never longer than the draw."""
        if self.throttled_only:
            delay = draw(0, self.policy.delay_ms_cap(0))
            if frees_in_ms is not None:
                delay = min(delay, max(0.0, frees_in_ms))
        else:
            delay = draw(0, self.policy.delay_ms_cap(max(0, self.failing - 1)))
        self.waited_ms += delay
        return delay


class WriteLog:
    """When a lane's own writes to each shard turn a second old.

    Kinesis counts a shard's writes over a second (the PutRecords API reference: 1,000
    records and 1 MiB per second per shard); the room a write took is free again a second
    after it. A lane refused over the quota that wrote to that shard within the last
    second knows room frees then, and need not wait longer (other writers' room may free
    sooner: it does not know). Times are taken when the answer came, after Kinesis counted
    the write, so a retry never comes early on their account.
    """

    def __init__(self) -> None:
        self._times: dict[str, deque[float]] = {}

    def record(self, shard: str, now_ms: float) -> None:
        times = self._times.setdefault(shard, deque())
        if not times or times[-1] != now_ms:  # one call's writes: one time
            times.append(now_ms)
        self._expire(times, now_ms)

    @staticmethod
    def _expire(times: deque[float], now_ms: float) -> None:
        while times and times[0] <= now_ms - _QUOTA_WINDOW_MS:
            times.popleft()

    def frees_in_ms(self, shards: Sequence[str | None], now_ms: float) -> float | None:
        """How soon the lane's room frees on one of ``shards`` (the refused entries' target
        shards); None if one is unknown (no open shard held the entry's hash key) or none
        was written to within the last second."""
        soonest: float | None = None
        for shard in set(shards):
            if shard is None:
                return None
            times = self._times.get(shard)
            if times:
                self._expire(times, now_ms)
            if times:
                frees = times[0] + _QUOTA_WINDOW_MS - now_ms
                soonest = frees if soonest is None else min(soonest, frees)
        return soonest


_QUOTA_WINDOW_MS = 1_000


def _counted(codes: Any) -> str:
    return ", ".join(f"{code} x{n}" for code, n in sorted(Counter(codes).items()))
