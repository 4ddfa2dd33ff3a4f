"""Driver side: the oldest record a shard still holds, for the data-loss check.

Asked only of a shard whose position was last confirmed longer ago than the retention
(``loss_check.trimmed_unread`` decides what the answer means): one GetShardIterator at
TRIM_HORIZON and GetRecords ``Limit=1``, a few more only while Kinesis answers empty pages
short of the tip (records further on; GetRecords may return none at a time).
"""

from __future__ import annotations

import functools
from typing import Any

from kinesis_source.aws.clients import kinesis_client
from kinesis_source.aws.retry import call_with_retry, policy_of
from kinesis_source.source.options import KinesisOptions

# Empty pages short of the tip followed before the shard counts as holding no record.
MAX_EMPTY_PAGES = 5


class OldestRecord:
    """``oldest(shard_id)``: the sequence number of the shard's oldest record, or None if it
    holds none. Plain values only: the planner that holds it stays picklable."""

    def __init__(self, opts: KinesisOptions, stream: str) -> None:
        self.opts = opts
        self.stream = stream

    def __call__(self, shard_id: str) -> str | None:
        client, policy, stream = kinesis_client(self.opts), policy_of(self.opts), self.stream
        stream_args = self.opts.stream_ref(stream).api_args()
        iterator: Any = call_with_retry(
            lambda: client.get_shard_iterator(
                **stream_args, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
            ),
            policy,
            what="GetShardIterator (oldest record)",
            stream=stream,
            shard_id=shard_id,
        )["ShardIterator"]
        for _ in range(MAX_EMPTY_PAGES):
            resp = call_with_retry(
                functools.partial(client.get_records, ShardIterator=iterator, Limit=1),
                policy,
                what="GetRecords (oldest record)",
                stream=stream,
                shard_id=shard_id,
            )
            records = resp.get("Records") or []
            if records:
                return str(records[0]["SequenceNumber"])
            iterator = resp.get("NextShardIterator")
            if iterator is None or not resp.get("MillisBehindLatest"):
                return None
        return None
