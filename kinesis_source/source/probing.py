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
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from botocore.exceptions import ClientError

from kinesis_source import limits
from kinesis_source.aws.clients import kinesis_client
from kinesis_source.aws.retry import call_with_retry, policy_of
from kinesis_source.errors import KinesisReadError
from kinesis_source.options import KinesisOptions
from kinesis_source.source.positions import Position

log = logging.getLogger(__name__)


def _arrival_ms(record: Mapping[str, Any]) -> int:
    stamp = record["ApproximateArrivalTimestamp"]
    return int(stamp.timestamp() * 1000) if hasattr(stamp, "timestamp") else int(stamp * 1000)


class ShardProber:
    """Probes the shards of one stream; ``confirm(shard, epoch ms)`` hears of idle ones."""

    def __init__(
        self, opts: KinesisOptions, stream: str, confirm: Callable[[str, int], None]
    ) -> None:
        self.opts = opts
        self.stream = stream
        self._confirm = confirm
        # Probe iterators to reuse: shard -> (position text, iterator, monotonic expiry).
        self._iterators: dict[str, tuple[str, str, float]] = {}

    def shards_with_new_data(
        self, shards: Mapping[str, Position], todo: Sequence[str], until_ms: int | None
    ) -> set[str]:
        """The shards of ``todo`` a probe finds data on, probed in bounded parallel."""
        if not todo:
            return set()
        with ThreadPoolExecutor(max_workers=min(limits.PROBE_THREADS, len(todo))) as pool:
            found = pool.map(lambda sid: self.probe(shards[sid], sid, until_ms), todo)
            return {sid for sid, has in zip(todo, found, strict=True) if has}

    def probe(self, position: Position, shard_id: str, until_ms: int | None) -> bool:
        """True if the shard has records at ``position``, or has ended there.

        With an AvailableNow bound, a first record that arrived after it is no data.
        """
        probed_at_ms = int(time.time() * 1000)
        client = kinesis_client(self.opts)
        try:
            resp = self._first_record(client, position, shard_id)
        except (ClientError, KinesisReadError) as exc:
            # Planning a batch is the safe answer: the read itself will retry or fail loudly.
            log.warning("probe of shard %s failed (%s); planning a batch", shard_id, exc)
            return True
        records = resp.get("Records") or []
        following = resp.get("NextShardIterator")
        if not records and following:
            # An empty page's next iterator is at the same position: the next probe of an
            # idle shard is one GetRecords call instead of two.
            expiry = time.monotonic() + limits.PROBE_ITERATOR_REUSE_SECONDS
            self._iterators[shard_id] = (position.text(), following, expiry)
        else:
            self._iterators.pop(shard_id, None)
        if records:
            return until_ms is None or _arrival_ms(records[0]) <= until_ms
        has_work = bool(
            (resp.get("MillisBehindLatest") or 0) > 0 or resp.get("NextShardIterator") is None
        )
        if not has_work:
            self._confirm(shard_id, probed_at_ms)
        return has_work

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
