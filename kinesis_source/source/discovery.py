"""Shard discovery on the driver: ListShards, the stream's retention, when to list again.

Listing is paced: a stream is listed when a shard was read to its end (its children may be
readable now) or when ``shardDiscoveryIntervalMs`` has passed since the last listing, not
on every trigger.
"""

from __future__ import annotations

import functools
import time
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from kinesis_source import limits
from kinesis_source.aws.clients import kinesis_client
from kinesis_source.aws.retry import RetryPolicy, call_with_retry, policy_of
from kinesis_source.errors import KinesisReadError, StreamNotFoundError
from kinesis_source.options import KinesisOptions
from kinesis_source.source.lineage import ShardInfo


def list_shards(client: Any, stream: str, region: str, policy: RetryPolicy) -> list[ShardInfo]:
    """Every shard of the stream (open and retained closed ones), following NextToken."""
    shards: list[ShardInfo] = []
    request: dict[str, Any] = {"StreamName": stream}
    try:
        while True:
            resp = call_with_retry(
                functools.partial(client.list_shards, **request),
                policy,
                what="ListShards",
                stream=stream,
            )
            shards.extend(ShardInfo.from_api(s) for s in resp.get("Shards", []))
            token = resp.get("NextToken")
            if not token:
                return shards
            request = {"NextToken": token}
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code == "ResourceNotFoundException":
            raise StreamNotFoundError(
                f"Kinesis stream {stream!r} does not exist in region {region} "
                "(check the options streamName, region and endpointUrl)",
                stream=stream,
            ) from exc
        raise KinesisReadError(f"ListShards on stream {stream!r} failed: {code or exc}") from exc
    except BotoCoreError as exc:
        # No credentials, an unreachable endpoint, a timeout: say which stream and where.
        raise KinesisReadError(
            f"cannot list the shards of Kinesis stream {stream!r} in region {region}: {exc} "
            "(check the options region, endpointUrl and the AWS credentials)",
            stream=stream,
        ) from exc


class ShardDiscovery:
    """The shards of one stream, listed when due."""

    def __init__(self, opts: KinesisOptions, stream: str) -> None:
        self.opts = opts
        self.stream = stream
        self._last_listing_at = float("-inf")

    def listing(self) -> list[ShardInfo]:
        shards = list_shards(
            kinesis_client(self.opts), self.stream, self.opts.region, policy_of(self.opts)
        )
        self._last_listing_at = time.monotonic()
        return shards

    def list_if_due(self, reached_end: bool) -> list[ShardInfo] | None:
        """A fresh listing if a shard was read to its end or the interval passed, else None."""
        due = (time.monotonic() - self._last_listing_at) * 1000.0 >= (
            self.opts.shard_discovery_interval_ms
        )
        return self.listing() if (reached_end or due) else None

    def retention_ms(self) -> int:
        """How long the stream keeps records (DescribeStreamSummary), in milliseconds."""
        client = kinesis_client(self.opts)
        stream = self.stream
        summary = call_with_retry(
            lambda: client.describe_stream_summary(StreamName=stream),
            policy_of(self.opts),
            what="DescribeStreamSummary",
            stream=stream,
        )["StreamDescriptionSummary"]
        return (
            int(summary.get("RetentionPeriodHours") or limits.RETENTION_DEFAULT_HOURS) * 3_600_000
        )
