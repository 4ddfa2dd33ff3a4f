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
from kinesis_source.source.streams import StreamRef


def describe_stream(opts: KinesisOptions, ref: StreamRef) -> dict[str, Any]:
    """DescribeStreamSummary of ``ref``; errors name the stream and the region."""
    where = f"Kinesis stream {ref.describe()} in region {opts.region}"
    client = kinesis_client(opts)
    try:
        resp = call_with_retry(
            functools.partial(client.describe_stream_summary, **ref.api_args()),
            policy_of(opts),
            what="DescribeStreamSummary",
            stream=ref.name,
        )
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code == "ResourceNotFoundException":
            raise StreamNotFoundError(
                f"{where} does not exist (check the options streamName or streamARN, region "
                "and endpointUrl)",
                stream=ref.name,
            ) from exc
        raise KinesisReadError(f"cannot describe {where}: {code or exc}", stream=ref.name) from exc
    except (BotoCoreError, KinesisReadError) as exc:
        # No credentials, an unreachable endpoint (a region that is no region), timeouts.
        raise KinesisReadError(
            f"cannot reach {where}: {exc} (check the options region and endpointUrl and the "
            "AWS credentials)",
            stream=ref.name,
        ) from exc
    summary: dict[str, Any] = resp["StreamDescriptionSummary"]
    return summary


def retention_ms(summary: dict[str, Any]) -> int:
    hours = int(summary.get("RetentionPeriodHours") or limits.RETENTION_DEFAULT_HOURS)
    return hours * 3_600_000


def list_shards(client: Any, ref: StreamRef, region: str, policy: RetryPolicy) -> list[ShardInfo]:
    """Every shard of the stream (open and retained closed ones), following NextToken."""
    shards: list[ShardInfo] = []
    stream = ref.name
    request: dict[str, Any] = dict(ref.api_args())
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
                f"Kinesis stream {ref.describe()} does not exist in region {region} "
                "(check the options streamName or streamARN, region and endpointUrl)",
                stream=stream,
            ) from exc
        raise KinesisReadError(
            f"ListShards on stream {ref.describe()} failed: {code or exc}"
        ) from exc
    except BotoCoreError as exc:
        # No credentials, an unreachable endpoint, a timeout: say which stream and where.
        raise KinesisReadError(
            f"cannot list the shards of Kinesis stream {ref.describe()} in region {region}: {exc} "
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
            kinesis_client(self.opts),
            self.opts.stream_ref(self.stream),
            self.opts.region,
            policy_of(self.opts),
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
        return retention_ms(describe_stream(self.opts, self.opts.stream_ref(self.stream)))
