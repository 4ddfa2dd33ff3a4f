"""One sink task: its input rows become PutRecords entries, sent on several lanes at once."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from kinesis_source import limits
from kinesis_source.aws import kinesis
from kinesis_source.aws.clients import kinesis_client
from kinesis_source.aws.glue import SchemaVersion
from kinesis_source.aws.retry import RetryPolicy, policy_of
from kinesis_source.errors import KinesisWriteError
from kinesis_source.records.aggregation import AggregateBuilder
from kinesis_source.sink.batching import Entry, check_record, record_size
from kinesis_source.sink.columns import ColumnLayout
from kinesis_source.sink.lanes import LanePool
from kinesis_source.sink.options import SinkOptions
from kinesis_source.sink.put_records import LaneSender, PutStats
from kinesis_source.sink.shard_map import ShardMap, hash_key_of
from kinesis_source.streams import StreamRef

log = logging.getLogger(__name__)

# (data, partition key, explicit hash key) of one input row.
UserRecord = tuple[bytes, str, str | None]


@dataclass(frozen=True)
class SinkPlan:
    """Everything a task needs, made on the driver and pickled to the executors."""

    options: SinkOptions
    columns: ColumnLayout
    # schemaRegistry=glue: the schema version that encodes the value column.
    writer_schema: SchemaVersion | None = None


def write_partition(
    plan: SinkPlan,
    batches: Iterable[pa.RecordBatch],
    partition: int,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> PutStats:
    """Write one partition's rows; ``sleep`` waits before rejected entries are sent again
    (``clock``: the time it waits by, in seconds).

    The task reads its rows in windows and makes their entries (rows checked, aggregated)
    while its lanes send: each entry goes on the queue of its shard's lane
    (``lanes.LanePool``), and a lane sends from its queue for the whole task, so a lane
    waiting on its shard's quota never holds up the others. The queues are bounded: the
    task holds a window and a window's worth of queued entries at most.
    """
    opts = plan.options
    writer = _Writer(plan, sleep, clock)
    per_lane = (
        limits.SINK_AGGREGATE_WINDOW_RECORDS_PER_LANE
        if opts.aggregate
        else limits.SINK_WINDOW_RECORDS_PER_LANE
    )
    lanes = opts.max_in_flight_requests
    records = _user_records(plan, batches, partition)
    with LanePool(
        [writer.sender() for _ in range(lanes)],
        writer.abort,
        max_entries=per_lane,
        max_bytes=limits.SINK_WINDOW_BYTES_PER_LANE,
        one_per_key=opts.preserve_order,
    ) as pool:
        for window in _windows(records, lanes * per_lane, lanes):
            pool.put(writer.entries(window))
            if pool.has_misrouted():
                writer.resend_misrouted(pool)
        pool.drain()
        writer.resend_misrouted(pool)
        pool.close()
    return writer.stats


class _Writer:
    """One task's client, counts and shard map, shared by its lanes."""

    def __init__(
        self, plan: SinkPlan, sleep: Callable[[float], None], clock: Callable[[], float]
    ) -> None:
        self.opts = plan.options
        self.client = kinesis_client(self.opts)
        self.policy = policy_of(self.opts)
        self.stats = PutStats()
        self.abort = threading.Event()
        self.sleep = sleep
        self.clock = clock
        self.cap = aggregate_max_bytes(self.opts.max_record_bytes)
        self.shard_map: ShardMap | None = None

    def sender(self) -> LaneSender:
        return LaneSender(
            self.client,
            self.opts.stream_name,
            self.policy,
            one_per_key=self.opts.preserve_order,
            stats=self.stats,
            abort=self.abort,
            sleep=self.sleep,
            clock=self.clock,
        )

    def entries(self, window: list[UserRecord]) -> list[Entry]:
        if self.shard_map is None:
            self.shard_map = load_shard_map(self.client, self.opts, self.policy)
        if self.opts.aggregate:
            return aggregate_entries(window, self.shard_map, self.cap)
        # Plain records too are sent on their shard's lane (``lanes``): a lane then waits
        # on one shard's quota only, and knows when its room there frees.
        shard_for = self.shard_map.shard_for
        return [
            Entry(
                data,
                key,
                hash_key,
                record_size(data, key),
                key,
                target_shard=shard_for(hash_key_of(key, hash_key)),
            )
            for data, key, hash_key in window
        ]

    def resend_misrouted(self, pool: LanePool) -> None:
        """After a reshard: once the lanes have written all they hold (made with the old
        map, so checked here too), read the map again and send again the user records
        that an aggregate put on a shard whose range does not hold them (the KCL would
        drop them there; the KPL does the same). Windows made afterwards use the new map."""
        opts = self.opts
        for _ in range(limits.SINK_RESHARD_ROUNDS):
            pool.drain()
            misrouted = pool.misrouted()
            if not misrouted:
                return
            shard_map = self.shard_map = load_shard_map(self.client, opts, self.policy)
            again = [
                user
                for entry, landed in misrouted
                for user in entry.users
                if shard_map.shard_for(hash_key_of(user[1], user[2])) != landed
            ]
            log.warning(
                "stream %r was resharded: %d entries landed on other shards than the "
                "task's shard map said; %d user records of their aggregates are written "
                "again to their own shard",
                opts.stream_name,
                len(misrouted),
                len(again),
            )
            pool.put(aggregate_entries(again, shard_map, self.cap))
        pool.drain()
        if not pool.has_misrouted():
            return
        raise KinesisWriteError(
            f"stream {opts.stream_name!r} kept resharding while aggregates were "
            f"written ({limits.SINK_RESHARD_ROUNDS} rounds); try again",
            stream=opts.stream_name,
        )


def _user_records(
    plan: SinkPlan, batches: Iterable[pa.RecordBatch], partition: int
) -> Iterator[UserRecord]:
    columns = plan.columns
    max_bytes = plan.options.max_record_bytes
    position = 0
    encode = _value_encoder(plan)
    for batch in batches:
        datas: list[Any]
        if encode is not None:
            datas = encode(batch.column(columns.data), name=columns.data)
        else:
            datas = batch.column(columns.data).to_pylist()
        if columns.data_is_string:
            datas = [None if d is None else d.encode("utf-8") for d in datas]
        keys: list[Any] = (
            batch.column(columns.partition_key).to_pylist()
            if columns.partition_key is not None
            else [_random_key() for _ in range(batch.num_rows)]
        )
        hash_keys: list[Any] = (
            batch.column(columns.explicit_hash_key).to_pylist()
            if columns.explicit_hash_key is not None
            else [None] * batch.num_rows
        )
        for data, key, hash_key in zip(datas, keys, hash_keys, strict=True):
            check_record(position, partition, data, key, hash_key, max_bytes)
            position += 1
            yield data, key, hash_key


def _value_encoder(plan: SinkPlan) -> Any:
    """schemaRegistry=glue: the task's encoder of the value column (its ``encode``)."""
    version = plan.writer_schema
    if version is None:
        return None
    # Imported here: fastavro only where the registry is used.
    from kinesis_source.records.glue_encode import AvroEncoder

    encoder = AvroEncoder(version.version_id, version.definition, plan.options.compression)
    return encoder.encode


_KEY_DIGITS = limits.RANDOM_PARTITION_KEY_HEX_DIGITS


def _random_key() -> str:
    # Spreads records over the shards; not a secret, so no need for a crypto source.
    return f"{random.getrandbits(4 * _KEY_DIGITS):0{_KEY_DIGITS}x}"


def _windows(
    records: Iterator[UserRecord], max_records: int, lanes: int
) -> Iterator[list[UserRecord]]:
    max_bytes = lanes * limits.SINK_WINDOW_BYTES_PER_LANE
    window: list[UserRecord] = []
    size = 0
    for record in records:
        window.append(record)
        size += len(record[0])
        if len(window) >= max_records or size >= max_bytes:
            yield window
            window, size = [], 0
    if window:
        yield window


def aggregate_max_bytes(max_record_bytes: int) -> int:
    """The size of an aggregate (data and key): a record's limit, but at most a quarter of
    a shard's 1 MiB/s write quota. Kinesis counts a shard's writes per second: four such
    aggregates fill a second, where one of 1 MiB fits only in a second nothing else was
    written in, and one of 600 KiB leaves the other 400 KiB of its second unused."""
    return min(max_record_bytes, limits.SINK_AGGREGATE_MAX_BYTES)


def load_shard_map(client: Any, opts: SinkOptions, policy: RetryPolicy) -> ShardMap:
    shards = kinesis.list_shards(
        client, StreamRef(opts.stream_name), opts.region, policy, failure=KinesisWriteError
    )
    shard_map = ShardMap(shards)
    log.debug("stream %r: %d open shards to aggregate for", opts.stream_name, len(shard_map))
    return shard_map


def aggregate_entries(
    records: Iterable[UserRecord], shard_map: ShardMap, max_bytes: int
) -> list[Entry]:
    """KPL aggregates of ``records``, each holding records of one target shard only.

    A shard's records keep their order; a record that fits no aggregate (one record is
    all an aggregate would hold) goes out plain. Records with and without an explicit hash
    key are never mixed in one aggregate.
    """
    by_shard: dict[str, list[UserRecord]] = {}
    for record in records:
        data, key, hash_key = record
        shard = shard_map.shard_for(hash_key_of(key, hash_key))
        by_shard.setdefault(shard if shard is not None else "", []).append(record)
    entries: list[Entry] = []
    for shard, shard_records in by_shard.items():
        target = shard or None
        builder = AggregateBuilder(max_bytes)
        for data, key, hash_key in shard_records:
            if builder.has_hash_keys() is not None and builder.has_hash_keys() != (
                hash_key is not None
            ):
                # aws-kinesis-agg's Python deaggregator gives a record without an explicit
                # hash key the table's first one: never mix the two in one aggregate.
                entries.extend(_flush(builder, shard, target))
                builder = AggregateBuilder(max_bytes)
            if builder.add(key, hash_key, data):
                continue
            entries.extend(_flush(builder, shard, target))
            builder = AggregateBuilder(max_bytes)
            if not builder.add(key, hash_key, data):
                entries.append(Entry(data, key, hash_key, record_size(data, key), shard, 1, target))
        entries.extend(_flush(builder, shard, target))
    return entries


def _flush(builder: AggregateBuilder, shard: str, target: str | None) -> list[Entry]:
    if len(builder) == 0:
        return []
    if len(builder) == 1:
        # A lone record goes out plain: readers take both, and it is smaller.
        ((key, hash_key, data),) = builder.user_records()
        return [Entry(data, key, hash_key, record_size(data, key), shard, 1, target)]
    blob = builder.build()
    users = tuple((data, key, hash_key) for key, hash_key, data in builder.user_records())
    return [
        Entry(
            blob,
            builder.partition_key,
            builder.explicit_hash_key,
            builder.size(),
            shard,
            len(builder),
            target,
            users,
        )
    ]
