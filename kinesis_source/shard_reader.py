"""Executor side: read one shard for one batch and record where the read ended.

``read_shard`` is the whole of DESIGN.md section 2's ``read(p)``:

1. If the store has an end for ``(batch, shard)``, this is a replay: read from the start
   position up to and including that end, ignoring every limit.
2. Otherwise read until caught up, the shard ends, or a cap is hit; after the last row was
   handed to Spark, record the end with put-if-absent. Losing that race raises, so Spark
   retries the task, which then takes branch 1.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import pyarrow as pa
from botocore.exceptions import ClientError

from kinesis_source.checkpoint_store import CheckpointStore
from kinesis_source.clients import kinesis_client
from kinesis_source.deaggregation import deaggregate
from kinesis_source.errors import (
    CheckpointConflictError,
    KinesisReadError,
    StreamNotFoundError,
)
from kinesis_source.options import KinesisOptions
from kinesis_source.positions import Position, ShardEnd
from kinesis_source.schema import ARROW_SCHEMA

log = logging.getLogger(__name__)

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True)
class ShardTask:
    """What one read needs besides the options: it travels in the InputPartition."""

    batch: int
    stream: str
    query: str
    shard_id: str
    start: Position


@dataclass
class _Progress:
    """Where a read stands: the last user record handed out and why it stopped."""

    position: Position
    records: int = 0
    millis_behind_latest: int | None = None
    caught_up: bool = False
    done: bool = False


class _Rows:
    """Column buffers for one Arrow batch."""

    def __init__(self) -> None:
        self.data: list[bytes] = []
        self.partition_key: list[str] = []
        self.sequence: list[str] = []
        self.sub: list[int] = []
        self.hash_key: list[str | None] = []
        self.arrival_us: list[int] = []

    def add(
        self, data: bytes, key: str, seq: str, sub: int, hash_key: str | None, arrival_us: int
    ) -> None:
        self.data.append(data)
        self.partition_key.append(key)
        self.sequence.append(seq)
        self.sub.append(sub)
        self.hash_key.append(hash_key)
        self.arrival_us.append(arrival_us)

    def __len__(self) -> int:
        return len(self.data)

    def to_batch(self, stream: str, shard_id: str) -> pa.RecordBatch:
        n = len(self.data)
        return pa.RecordBatch.from_arrays(
            [
                pa.array(self.data, pa.binary()),
                pa.array([stream] * n, pa.string()),
                pa.array([shard_id] * n, pa.string()),
                pa.array(self.partition_key, pa.string()),
                pa.array(self.sequence, pa.string()),
                pa.array(self.sub, pa.int64()),
                pa.array(self.hash_key, pa.string()),
                pa.array(self.arrival_us, pa.timestamp("us", tz="UTC")),
            ],
            schema=ARROW_SCHEMA,
        )


def _arrival_us(value: Any) -> int:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        delta = value - _EPOCH
        return int((delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds)
    return int(float(value) * 1_000_000)


def _passed(seq: int, sub: int, mark: tuple[int, int | None]) -> bool:
    """True if user record (seq, sub) lies at or before ``mark`` = (seq, sub or whole)."""
    mark_seq, mark_sub = mark
    if seq != mark_seq:
        return seq < mark_seq
    return mark_sub is None or sub <= mark_sub


class _ShardRead:
    """One pass over a shard from ``task.start``; ``stop`` set means replay up to it."""

    def __init__(
        self,
        opts: KinesisOptions,
        task: ShardTask,
        stop: Position | None,
    ) -> None:
        self.opts = opts
        self.task = task
        self.stop = stop
        self.client = kinesis_client(opts)
        self.progress = _Progress(position=task.start)
        self.max_records = None if stop is not None else opts.max_records_per_shard
        skip = task.start.skip_through()
        self.skip: tuple[int, int | None] | None = skip
        self.stop_mark: tuple[int, int | None] | None = None
        if stop is not None and stop.sequence is not None:
            self.stop_mark = (int(stop.sequence), stop.sub)

    def _iterator_at(self, position: Position) -> str:
        try:
            resp = self.client.get_shard_iterator(
                StreamName=self.task.stream,
                ShardId=self.task.shard_id,
                **position.iterator_request(),
            )
        except ClientError as exc:
            self._raise_for(exc, "GetShardIterator")
        return str(resp["ShardIterator"])

    def _raise_for(self, exc: ClientError, call: str) -> Any:
        code = exc.response.get("Error", {}).get("Code", "")
        if code == "ResourceNotFoundException":
            raise StreamNotFoundError(
                f"{call}: stream {self.task.stream!r} or its shard {self.task.shard_id} "
                f"does not exist in region {self.opts.region}",
                stream=self.task.stream,
                shard_id=self.task.shard_id,
            ) from exc
        raise KinesisReadError(
            f"{call} failed on stream {self.task.stream!r} shard {self.task.shard_id} "
            f"at {self.progress.position.text()}: {code or exc}",
            stream=self.task.stream,
            shard_id=self.task.shard_id,
            sequence_number=self.progress.position.sequence,
        ) from exc

    def run(self) -> Iterator[pa.RecordBatch]:
        task = self.task
        progress = self.progress
        if self.stop is not None and self.stop == task.start:
            progress.done = True
            return
        deadline = time.monotonic() + self.opts.max_fetch_time_ms / 1000.0
        interval = self.opts.fetch_interval_ms / 1000.0
        iterator: str | None = self._iterator_at(task.start)
        last_call = 0.0
        while iterator is not None and not progress.done:
            wait = last_call + interval - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            last_call = time.monotonic()
            try:
                resp = self.client.get_records(
                    ShardIterator=iterator, Limit=self.opts.get_records_limit
                )
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") == "ExpiredIteratorException":
                    log.info(
                        "shard %s: iterator expired; re-acquiring at %s",
                        task.shard_id,
                        progress.position.text(),
                    )
                    iterator = self._iterator_at(progress.position)
                    continue
                self._raise_for(exc, "GetRecords")
            records = resp.get("Records", [])
            behind = resp.get("MillisBehindLatest")
            progress.millis_behind_latest = behind
            rows = self._consume(records)
            log.debug(
                "shard %s batch %d: %d records, %d rows, %s ms behind",
                task.shard_id,
                task.batch,
                len(records),
                len(rows),
                behind,
            )
            if rows:
                yield rows.to_batch(task.stream, task.shard_id)
            if progress.done:
                break
            iterator = resp.get("NextShardIterator")
            if iterator is None:
                progress.position = Position.shard_end()
                progress.caught_up = True
                progress.done = True
                break
            if self.stop is not None:
                if not records and behind == 0:
                    raise KinesisReadError(
                        f"replay of batch {task.batch} on shard {task.shard_id} reached the "
                        f"end of the shard's data before the recorded end "
                        f"{self.stop.text()}; the records in between are gone",
                        stream=task.stream,
                        shard_id=task.shard_id,
                        sequence_number=self.stop.sequence,
                    )
                continue
            if behind == 0 and len(records) < self.opts.get_records_limit:
                progress.caught_up = True
                break
            if time.monotonic() >= deadline:
                break

    def _consume(self, records: list[dict[str, Any]]) -> _Rows:
        """Turn one page into rows, honouring the skip mark, the stop mark and the cap."""
        rows = _Rows()
        progress = self.progress
        for record in records:
            seq = str(record["SequenceNumber"])
            seq_int = int(seq)
            if self.stop_mark is not None and seq_int > self.stop_mark[0]:
                progress.done = True
                return rows
            data = record["Data"]
            users = deaggregate(data) if self.opts.deaggregate else None
            arrival = _arrival_us(record["ApproximateArrivalTimestamp"])
            if users is None:
                units = [(data, record["PartitionKey"], record.get("ExplicitHashKey"), 0)]
            else:
                units = [tuple(u) for u in users]  # type: ignore[misc]
            last_index = len(units) - 1
            for index, (udata, key, hash_key, sub) in enumerate(units):
                if self.skip is not None and _passed(seq_int, sub, self.skip):
                    continue
                if self.stop_mark is not None and not _passed(seq_int, sub, self.stop_mark):
                    progress.done = True
                    return rows
                rows.add(udata, key, seq, sub, hash_key, arrival)
                progress.records += 1
                progress.position = Position.after(seq, None if index == last_index else sub)
                if self.stop_mark is not None and progress.position == self.stop:
                    progress.done = True
                    return rows
                if self.max_records is not None and progress.records >= self.max_records:
                    progress.done = True
                    return rows
        return rows


def read_shard(
    opts: KinesisOptions, store: CheckpointStore, task: ShardTask
) -> Iterator[pa.RecordBatch]:
    """Rows of ``task``'s shard for its batch; records the end on first success."""
    recorded = store.get(task.stream, task.query, task.batch, task.shard_id)
    if recorded is not None:
        log.info(
            "batch %d shard %s: replaying %s .. %s",
            task.batch,
            task.shard_id,
            task.start.text(),
            recorded.position.text(),
        )
        yield from _ShardRead(opts, task, stop=recorded.position).run()
        return

    read = _ShardRead(opts, task, stop=None)
    yield from read.run()
    progress = read.progress
    end = ShardEnd(
        position=progress.position,
        records=progress.records,
        millis_behind_latest=progress.millis_behind_latest,
        caught_up=progress.caught_up,
    )
    if not store.put_if_absent(task.stream, task.query, task.batch, task.shard_id, end):
        raise CheckpointConflictError(
            f"batch {task.batch} shard {task.shard_id}: another attempt recorded its end "
            "first; failing this attempt so that Spark retries it as a replay of that range",
            stream=task.stream,
            shard_id=task.shard_id,
        )
    log.info(
        "batch %d shard %s: read %d records to %s (%s ms behind)",
        task.batch,
        task.shard_id,
        progress.records,
        progress.position.text(),
        progress.millis_behind_latest,
    )
