"""Probing on the driver: does an idle shard have new records? One GetRecords Limit=1.

A shard whose last read stopped at its tip is probed before a batch is planned for it, so
that an idle stream runs no batch. An empty page's next iterator is reused, so a probe of
an idle shard is one call, not two. Which shards are probed, and how often, is decided by
``pacing`` (a budget per trigger, at most one call per ``fetchIntervalMs`` per shard).
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as futures_wait
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from kinesis_source import limits
from kinesis_source.aws.clients import kinesis_client
from kinesis_source.aws.retry import call_with_retry, policy_of
from kinesis_source.errors import KinesisReadError
from kinesis_source.source.options import KinesisOptions
from kinesis_source.source.positions import Position

log = logging.getLogger(__name__)


def _arrival_ms(record: Mapping[str, Any]) -> int:
    stamp = record["ApproximateArrivalTimestamp"]
    return int(stamp.timestamp() * 1000) if hasattr(stamp, "timestamp") else int(stamp * 1000)


@dataclass(frozen=True)
class ProbeResults:
    """What the probes finished by now found: shards with data, and every shard probed."""

    found: set[str]
    probed: list[str]


class ShardProber:
    """Probes the shards of one stream; ``confirm(shard, epoch ms)`` hears of idle ones.

    Probes run on a pool kept across triggers, so a trigger need not wait for them: when a
    batch is planned anyway (a backlog, data flowing), the probes it started finish while
    that batch runs and count at the next trigger. A result counts only if the shard is
    still at the position probed; the pool and the probes in flight are not pickled.
    """

    def __init__(
        self, opts: KinesisOptions, stream: str, confirm: Callable[[str, int], None]
    ) -> None:
        self.opts = opts
        self.stream = stream
        self._confirm = confirm
        # Probe iterators to reuse: shard -> (position text, iterator, monotonic expiry).
        self._iterators: dict[str, tuple[str, str, float]] = {}
        self._pool: ThreadPoolExecutor | None = None
        # Probes in flight: shard -> (position text, bound, future of the probe's answer).
        self._pending: dict[str, tuple[str, int | None, Future[tuple[bool, int | None]]]] = {}

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_pool"], state["_pending"] = None, {}
        return state

    @property
    def in_flight(self) -> set[str]:
        return set(self._pending)

    def start(
        self, shards: Mapping[str, Position], todo: Sequence[str], until_ms: int | None
    ) -> None:
        """Start probes of ``todo`` (none of them in flight) in bounded parallel."""
        if not todo:
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(
                max_workers=limits.PROBE_THREADS, thread_name_prefix=f"probe-{self.stream}"
            )
        for sid in todo:
            position = shards[sid]
            future = self._pool.submit(self.probe, position, sid, until_ms)
            self._pending[sid] = (position.text(), until_ms, future)

    def collect(
        self, shards: Mapping[str, Position], until_ms: int | None, wait: bool
    ) -> ProbeResults:
        """The probes finished by now (with ``wait``, all of them): which found data.

        A probe of a position the shard has left, or under another AvailableNow bound, is
        dropped: it says nothing of where the shard is now.
        """
        if wait:
            futures_wait([future for _, _, future in self._pending.values()])
        # Bounded by the tracked shards: a shard no longer tracked is never probed again.
        for sid in set(self._iterators) - set(shards):
            self._iterators.pop(sid, None)
        found: set[str] = set()
        probed: list[str] = []
        for sid, (text, bound, future) in list(self._pending.items()):
            if not future.done():
                continue
            del self._pending[sid]
            has_data, idle_at_ms = future.result()
            position = shards.get(sid)
            if position is None or position.text() != text or bound != until_ms:
                continue
            probed.append(sid)
            if has_data:
                found.add(sid)
            if idle_at_ms is not None:
                # Here, not in the probe's thread: the data-loss check iterates what this
                # updates.
                self._confirm(sid, idle_at_ms)
        return ProbeResults(found, probed)

    def probe(
        self, position: Position, shard_id: str, until_ms: int | None
    ) -> tuple[bool, int | None]:
        """(True if the shard has records at ``position`` or has ended there; when the probe
        was sent, in epoch ms, if it found the shard idle there: its position is up to date).

        With an AvailableNow bound, a first record that arrived after it is no data.
        """
        probed_at_ms = int(time.time() * 1000)
        client = kinesis_client(self.opts)
        try:
            resp = self._first_record(client, position, shard_id)
        except (ClientError, KinesisReadError) as exc:
            # Planning a batch is the safe answer: the read itself will retry or fail loudly.
            log.warning("probe of shard %s failed (%s); planning a batch", shard_id, exc)
            return True, None
        records = resp.get("Records") or []
        following = resp.get("NextShardIterator")
        if not records and following:
            # An empty page's next iterator reads on from the same position (past empty
            # storage only): the next probe of an idle shard is one GetRecords call, not two.
            expiry = time.monotonic() + limits.PROBE_ITERATOR_REUSE_SECONDS
            self._iterators[shard_id] = (position.text(), following, expiry)
        else:
            self._iterators.pop(shard_id, None)
        if records:
            return until_ms is None or _arrival_ms(records[0]) <= until_ms, None
        if following is None:
            return True, None  # the shard's end: a read records SHARD_END
        behind = int(resp.get("MillisBehindLatest") or 0)
        if behind > 0:
            # An empty stretch of the shard's storage: records may lie further on, and only
            # a read walks it and records how far it got (stop_rules.walked_position). Under
            # AvailableNow a stretch that reaches past the run's bound holds nothing to read.
            reached_ms = int(time.time() * 1000) - behind - limits.WALK_CLOCK_MARGIN_MS
            return until_ms is None or reached_ms <= until_ms, None
        return False, probed_at_ms

    def _first_record(self, client: Any, position: Position, shard_id: str) -> Any:
        """GetRecords Limit=1 at ``position``, reusing the last probe's iterator if valid."""
        stream, policy = self.stream, policy_of(self.opts)
        stream_args = self.opts.stream_ref(stream).api_args()

        def first_record(iterator: str) -> Any:
            return call_with_retry(
                functools.partial(client.get_records, ShardIterator=iterator, Limit=1),
                policy,
                what="GetRecords (probe)",
                stream=stream,
                shard_id=shard_id,
            )

        cached = self._iterators.pop(shard_id, None)
        if cached is not None and cached[0] == position.text() and time.monotonic() < cached[2]:
            try:
                return first_record(cached[1])
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "ExpiredIteratorException":
                    raise
        request = position.iterator_request()
        iterator = call_with_retry(
            lambda: client.get_shard_iterator(**stream_args, ShardId=shard_id, **request),
            policy,
            what="GetShardIterator (probe)",
            stream=stream,
            shard_id=shard_id,
        )["ShardIterator"]
        return first_record(iterator)
