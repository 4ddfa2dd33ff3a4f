"""Is each stream there? Asked once at ``load()``, where Spark shows our message first.

PySpark 4.3's streaming runner, when the stream reader's constructor raises, reports its own
``UnboundLocalError: cannot access local variable 'reader'`` on top of our error. An error
raised while Spark asks the data source for its schema (at ``load()``) reaches the user as
an ``AnalysisException`` whose traceback ends in our message alone. So a missing stream, a
stream of another region or an unreachable endpoint fails there, naming stream and region.
"""

from __future__ import annotations

import functools
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from kinesis_source import limits
from kinesis_source.aws.clients import kinesis_client
from kinesis_source.aws.retry import call_with_retry, policy_of
from kinesis_source.errors import KinesisReadError, StreamNotFoundError
from kinesis_source.options import KinesisOptions
from kinesis_source.source.start_positions import resolve_shard_starts
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


def check_streams(opts: KinesisOptions) -> None:
    """Fail, naming the stream and region, unless every stream of the query exists, and
    naming the shard if a JSON ``initialPosition`` names one its stream does not have."""
    # discovery imports this module (for the retention): import it here, not at the top.
    from kinesis_source.source.discovery import list_shards

    for ref in opts.streams:
        describe_stream(opts, ref)
        named = opts.shard_starts.get(ref.name)
        if named:
            listing = list_shards(kinesis_client(opts), ref, opts.region, policy_of(opts))
            resolve_shard_starts(ref.name, named, [s.shard_id for s in listing], 0)
