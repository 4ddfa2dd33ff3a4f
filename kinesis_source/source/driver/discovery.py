"""Shard discovery on the driver: ListShards, the stream's retention, when to list again.

Listing is paced: a stream is listed when a shard was read to its end (its children may be
readable now) or when ``shardDiscoveryIntervalMs`` has passed since the last listing, not
on every trigger.

A listing due by the interval runs in the background and counts at the first trigger after
it finished: listing 10,000 shards takes ten ListShards pages and most of a second of
botocore parsing, which no trigger should wait for. A listing taken at once (at start, for
the first offset, or for a shard read to its end) drops a background one still out and is
what the next trigger applies: listings apply in the order they were taken, so a shard
found by a newer one is never missing from an older one applied after it (which would read
as a shard that vanished, i.e. data loss).
"""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from kinesis_source import limits
from kinesis_source.aws import kinesis
from kinesis_source.aws.clients import kinesis_client
from kinesis_source.aws.retry import RetryPolicy, policy_of
from kinesis_source.source.driver.lineage import ShardInfo
from kinesis_source.source.options import KinesisOptions
from kinesis_source.source.shard_range import ShardRange
from kinesis_source.streams import StreamRef


def describe_stream(opts: KinesisOptions, ref: StreamRef) -> dict[str, Any]:
    """DescribeStreamSummary of ``ref``; errors name the stream and the region."""
    return kinesis.describe_stream_summary(kinesis_client(opts), ref, opts.region, policy_of(opts))


def retention_ms(summary: dict[str, Any]) -> int:
    hours = int(summary.get("RetentionPeriodHours") or limits.RETENTION_DEFAULT_HOURS)
    return hours * 3_600_000


def list_shards(client: Any, ref: StreamRef, region: str, policy: RetryPolicy) -> list[ShardInfo]:
    """Every shard of the stream (open and retained closed ones)."""
    return [ShardInfo.from_api(s) for s in kinesis.list_shards(client, ref, region, policy)]


class ShardDiscovery:
    """The shards of one stream, listed when due."""

    def __init__(self, opts: KinesisOptions, stream: str) -> None:
        self.opts = opts
        self.stream = stream
        self._last_listing_at = float("-inf")
        self._pool: ThreadPoolExecutor | None = None
        # The listing the next trigger applies: one taken at once, or one due by the
        # interval and running in the background.
        self._pending: Future[list[ShardInfo]] | None = None
        # Shard id -> the range outside which its aggregates' user records are resent copies
        # (ShardInfo.resent_copies_range), from every listing so far: only children of a
        # reshard have one.
        self.ranges: dict[str, ShardRange] = {}

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_pool"], state["_pending"] = None, None
        return state

    def listing(self) -> list[ShardInfo]:
        """List the shards now; the next trigger applies this listing."""
        shards = self._list()
        ready: Future[list[ShardInfo]] = Future()
        ready.set_result(shards)
        self._pending = ready
        return shards

    def _list(self) -> list[ShardInfo]:
        shards = list_shards(
            kinesis_client(self.opts),
            self.opts.stream_ref(self.stream),
            self.opts.region,
            policy_of(self.opts),
        )
        self._last_listing_at = time.monotonic()
        self.ranges.update(
            (s.shard_id, s.resent_copies_range) for s in shards if s.resent_copies_range is not None
        )
        return shards

    def list_if_due(self, reached_end: bool) -> list[ShardInfo] | None:
        """A fresh listing if a shard was read to its end, or a background listing started
        when the interval passed once it has finished; else None."""
        if reached_end:
            shards = self.listing()
            self._pending = None
            return shards
        if self._pending is not None:
            if not self._pending.done():
                return None
            finished, self._pending = self._pending, None
            # Its errors are raised here, on the planning thread, as a listing's would be.
            return finished.result()
        due = (time.monotonic() - self._last_listing_at) * 1000.0 >= (
            self.opts.shard_discovery_interval_ms
        )
        if due:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    max_workers=1, thread_name_prefix=f"list-shards-{self.stream}"
                )
            self._pending = self._pool.submit(self._list)
        return None

    def retention_ms(self) -> int:
        """How long the stream keeps records (DescribeStreamSummary), in milliseconds."""
        return retention_ms(describe_stream(self.opts, self.opts.stream_ref(self.stream)))
