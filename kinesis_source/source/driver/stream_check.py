"""Is each stream there? Asked once at ``load()``, where Spark shows our message first.

PySpark 4.3's streaming runner, when the stream reader's constructor raises, reports its own
``UnboundLocalError: cannot access local variable 'reader'`` on top of our error. An error
raised while Spark asks the data source for its schema (at ``load()``) reaches the user as
an ``AnalysisException`` whose traceback ends in our message alone. So a missing stream, a
stream of another region or an unreachable endpoint fails there, naming stream and region.
"""

from __future__ import annotations

from kinesis_source.aws.clients import kinesis_client
from kinesis_source.aws.retry import policy_of
from kinesis_source.source.driver.discovery import describe_stream, list_shards
from kinesis_source.source.driver.start_positions import resolve_shard_starts
from kinesis_source.source.options import KinesisOptions


def check_streams(opts: KinesisOptions) -> None:
    """Fail, naming the stream and region, unless every stream of the query exists, and
    naming the shard if a JSON ``initialPosition`` names one its stream does not have."""
    for ref in opts.streams:
        describe_stream(opts, ref)
        named = opts.shard_starts.get(ref.name)
        if named:
            listing = list_shards(kinesis_client(opts), ref, opts.region, policy_of(opts))
            resolve_shard_starts(ref.name, named, [s.shard_id for s in listing], 0)
