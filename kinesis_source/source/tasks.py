"""What a task receives: the driver plans these, Spark pickles them to an executor.

``ShardPartition`` is the ``InputPartition`` of one task; it carries a ``ShardTask`` per
shard the task reads. Everything ``read()`` needs besides the options travels here: the
reader ``read()`` runs on is a copy pickled at the query's start, so state the driver sets
later is not visible on the executor (docs/design.md section 6).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pyspark.sql.datasource import InputPartition

from kinesis_source.source.positions import Position
from kinesis_source.source.shard_range import ShardRange


@dataclass(frozen=True)
class ShardTask:
    """What one read needs besides the options: it travels in the InputPartition."""

    batch: int
    stream: str
    query: str
    shard_id: str
    start: Position
    # The batch's record limit for this shard (admission control); None: maxRecordsPerShard.
    max_records: int | None = None
    # The batch's byte limit for this shard (maxBytesPerTrigger's share); None: no limit.
    max_bytes: int | None = None
    # Trigger.AvailableNow: records that arrived after this (epoch ms) are not read.
    until_ms: int | None = None
    # consumerMode=efo: the enhanced fan-out consumer to subscribe with; None: GetRecords.
    consumer_arn: str | None = None
    # The earliest time (epoch ms) of the read's first GetRecords: fetchIntervalMs after the
    # driver's last call on the shard, a probe or the last batch's read (source/driver/pacing.py).
    # Pacing only, not part of what is read: a replay may ignore it.
    not_before_ms: int | None = None
    # A batch read (spark.read, docs/design.md section 19): the range is fixed in the task
    # (``start``, ``until_ms`` and ``end``), read whole, and nothing is recorded.
    batch_read: bool = False
    # A batch read's last user record (AFTER_SEQUENCE_NUMBER), from the endingPosition JSON.
    end: Position | None = None
    # The driver's last listing showed the shard closed (it has an EndingSequenceNumber): the
    # read goes on to its end instead of stopping at a tip, since the end may come in a
    # later, empty call (docs/design.md section 12).
    closed: bool = False
    # The shard's ranges from the driver's last listing: user records of KPL aggregates
    # outside its hash-key range are not emitted (records/hash_range.py). None: not known.
    shard_range: ShardRange | None = None


class ShardPartition(InputPartition):
    """One or more shards (``shardsPerTask``) of one batch, read by one task.

    Holds no credentials: those stay in the reader's options.
    """

    def __init__(self, tasks: Sequence[ShardTask]) -> None:
        super().__init__(",".join(f"{t.stream}/{t.shard_id}" for t in tasks))
        self.tasks = tuple(tasks)

    def __repr__(self) -> str:
        shards = ",".join(f"{t.stream}/{t.shard_id}" for t in self.tasks)
        return f"ShardPartition(batch={self.tasks[0].batch}, shards={shards})"
