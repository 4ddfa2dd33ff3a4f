"""Sending PutRecords calls and retrying the entries a call rejected.

PutRecords is not all-or-nothing: an answer with HTTP 200 may carry ``FailedRecordCount``
and, per entry, an ``ErrorCode`` (``ProvisionedThroughputExceededException``,
``InternalFailure``, ``KMSThrottlingException``, or a KMS error that no retry fixes). The
rejected entries go back to the front of the lane's pending entries and are sent again
after a backoff with full jitter, under the same ``maxRetries`` / ``retryBaseDelayMs`` /
``retryMaxDelayMs`` policy as the source's calls (aws/retry.py, which also retries a call
that fails as a whole). An entry still rejected after ``maxRetries`` retries fails the task.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

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
    ) -> None:
        self.client = client
        self.stream = stream
        self.policy = policy
        self.one_per_key = one_per_key
        self.stats = stats
        self.abort = abort
        self.sleep = sleep
        self.draw = rng.uniform if rng is not None else random.uniform
        # Aggregates that landed on another shard than their target, with that shard.
        self.misrouted: list[tuple[Entry, str]] = []

    def send(self, entries: Sequence[Entry]) -> None:
        # (entry, how many times Kinesis rejected it so far)
        pending: list[tuple[Entry, int]] = [(entry, 0) for entry in entries]
        streak = 0
        while pending and not self.abort.is_set():
            picked = next_call([entry for entry, _ in pending], one_per_key=self.one_per_key)
            results = self._put([pending[i][0] for i in picked])
            rejected: dict[int, str] = {}
            for index, result in zip(picked, results, strict=True):
                code = result.get("ErrorCode")
                if code is not None:
                    rejected[index] = str(code)
                    continue
                entry = pending[index][0]
                self.stats.add(records=entry.user_records, entries=1, bytes=entry.size)
                landed = str(result.get("ShardId"))
                if entry.target_shard is not None and landed != entry.target_shard:
                    self.misrouted.append((entry, landed))
            done = set(picked) - set(rejected)
            if rejected:
                self._check_rejected(pending, rejected)
            pending = [
                (entry, tries + (1 if index in rejected else 0))
                for index, (entry, tries) in enumerate(pending)
                if index not in done
            ]
            if rejected:
                delay_ms = self.draw(0, self.policy.delay_ms_cap(streak))
                streak += 1
                throttled = sum(1 for c in rejected.values() if c in THROTTLED_ENTRY_CODES)
                self.stats.add(retried_entries=len(rejected), throttled_entries=throttled)
                log.warning(
                    "PutRecords on stream %r: %d of %d entries rejected (%s); retrying them "
                    "in %.0f ms",
                    self.stream,
                    len(rejected),
                    len(picked),
                    _counted(rejected.values()),
                    delay_ms,
                )
                self.sleep(delay_ms / 1000.0)
            else:
                streak = 0

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

    def _check_rejected(self, pending: list[tuple[Entry, int]], rejected: dict[int, str]) -> None:
        fatal = {i: c for i, c in rejected.items() if c not in RETRYABLE_ENTRY_CODES}
        exhausted = {i: c for i, c in rejected.items() if pending[i][1] >= self.policy.max_retries}
        if fatal:
            raise KinesisWriteError(
                f"PutRecords on stream {self.stream!r}: {len(fatal)} records were rejected with "
                f"errors no retry fixes ({_counted(fatal.values())}); records written before "
                "stay written (the sink is at least once)",
                stream=self.stream,
            )
        if exhausted:
            failed = {**exhausted}
            raise KinesisWriteError(
                f"PutRecords on stream {self.stream!r}: {len(failed)} records still failed "
                f"after {self.policy.max_retries} retries (maxRetries={self.policy.max_retries}); "
                f"error codes: {_counted(failed.values())}. Records written before stay "
                "written (the sink is at least once); add shards or raise maxRetries / "
                "retryMaxDelayMs",
                stream=self.stream,
            )


def _counted(codes: Any) -> str:
    return ", ".join(f"{code} x{n}" for code, n in sorted(Counter(codes).items()))
