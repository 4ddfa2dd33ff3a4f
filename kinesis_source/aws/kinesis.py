"""Kinesis control calls, in one place: DescribeStreamSummary and ListShards paging.

The driver's planning, the stream check at ``load()``, enhanced fan-out's consumer
registration and the sink's shard map all ask Kinesis the same two things; each answer's
errors are translated here once, naming the stream and the region. Data calls (GetRecords,
SubscribeToShard, PutRecords) stay with the transport that makes them: their errors carry
the shard and decide data loss, which is no business of this module.

``failure`` is the error class a call that cannot be made raises: ``KinesisReadError`` for
the source, ``KinesisWriteError`` for the sink, so that a user catching one direction's
errors sees this call's too. A stream that does not exist is ``StreamNotFoundError``
either way.
"""

from __future__ import annotations

import functools
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from kinesis_source.aws.retry import RetryPolicy, call_with_retry, is_denied
from kinesis_source.errors import KinesisReadError, KinesisSourceError, StreamNotFoundError
from kinesis_source.streams import StreamRef

_CHECK_OPTIONS = "check the options streamName or streamARN, region and endpointUrl"


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def describe_stream_summary(
    client: Any,
    ref: StreamRef,
    region: str,
    policy: RetryPolicy,
    *,
    failure: type[KinesisSourceError] = KinesisReadError,
) -> dict[str, Any]:
    """``StreamDescriptionSummary`` of ``ref``; errors name the stream and the region."""
    where = f"Kinesis stream {ref.describe()} in region {region}"
    try:
        resp = call_with_retry(
            functools.partial(client.describe_stream_summary, **ref.api_args()),
            policy,
            what="DescribeStreamSummary",
            stream=ref.name,
            failure=failure,
        )
    except ClientError as exc:
        if _code(exc) == "ResourceNotFoundException":
            raise StreamNotFoundError(
                f"{where} does not exist ({_CHECK_OPTIONS})", stream=ref.name
            ) from exc
        raise failure(f"cannot describe {where}: {_code(exc) or exc}", stream=ref.name) from exc
    except (BotoCoreError, KinesisSourceError) as exc:
        if is_denied(exc.__cause__):
            raise  # names the call and the stream (call_with_retry)
        # No credentials, an unreachable endpoint (a region that is no region), timeouts.
        raise failure(
            f"cannot reach {where}: {exc} (check the options region and endpointUrl and the "
            "AWS credentials)",
            stream=ref.name,
        ) from exc
    summary: dict[str, Any] = resp["StreamDescriptionSummary"]
    return summary


def list_shards(
    client: Any,
    ref: StreamRef,
    region: str,
    policy: RetryPolicy,
    *,
    failure: type[KinesisSourceError] = KinesisReadError,
) -> list[dict[str, Any]]:
    """Every shard of the stream (open and retained closed ones) as ListShards gives them,
    following ``NextToken`` (a request with a token names no stream: the API refuses both)."""
    shards: list[dict[str, Any]] = []
    request: dict[str, Any] = dict(ref.api_args())
    try:
        while True:
            resp = call_with_retry(
                functools.partial(client.list_shards, **request),
                policy,
                what="ListShards",
                stream=ref.name,
                failure=failure,
            )
            shards.extend(resp.get("Shards", []))
            token = resp.get("NextToken")
            if not token:
                return shards
            request = {"NextToken": token}
    except ClientError as exc:
        if _code(exc) == "ResourceNotFoundException":
            raise StreamNotFoundError(
                f"Kinesis stream {ref.describe()} does not exist in region {region} "
                f"({_CHECK_OPTIONS})",
                stream=ref.name,
            ) from exc
        raise failure(
            f"ListShards on stream {ref.describe()} failed: {_code(exc) or exc}", stream=ref.name
        ) from exc
    except BotoCoreError as exc:
        # No credentials, an unreachable endpoint, a timeout: say which stream and where.
        raise failure(
            f"cannot list the shards of Kinesis stream {ref.describe()} in region {region}: {exc} "
            "(check the options region, endpointUrl and the AWS credentials)",
            stream=ref.name,
        ) from exc
