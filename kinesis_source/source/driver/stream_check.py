"""Is each stream there? Asked once at ``load()``, where Spark shows our message first.

PySpark 4.3's streaming runner, when the stream reader's constructor raises, reports its own
``UnboundLocalError: cannot access local variable 'reader'`` on top of our error. An error
raised while Spark asks the data source for its schema (at ``load()``) reaches the user as
an ``AnalysisException`` whose traceback ends in our message alone. So a missing stream, a
stream of another region or an unreachable endpoint fails there, naming stream and region.
"""

from __future__ import annotations

from kinesis_source.source.driver.discovery import describe_stream
from kinesis_source.source.options import KinesisOptions


def check_streams(opts: KinesisOptions) -> None:
    """Fail, naming the stream and region, unless every stream of the query exists.

    A JSON ``initialPosition``'s shards are checked against the listing only when a stream
    starts (``stream_start``), not here: ``load()`` runs again at every restart of a
    checkpointed query, which goes on from its offsets, and a named shard that has aged
    out since must not stop it.
    """
    for ref in opts.streams:
        describe_stream(opts, ref)
