"""Driver side: plan micro-batches (DESIGN.md section 2).

The reader is pickled once at query start and the copy runs ``read()`` on executors, so it
holds only the options and plain values; clients and the store are built where used.
"""

from __future__ import annotations

import functools
import logging
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pyarrow as pa
from botocore.exceptions import BotoCoreError, ClientError
from pyspark.sql.datasource import DataSourceStreamReader, InputPartition
from pyspark.sql.streaming.datasource import (
    ReadAllAvailable,
    ReadLimit,
    ReadMaxRows,
    SupportsTriggerAvailableNow,
)

from kinesis_source import limits
from kinesis_source.aws.clients import kinesis_client
from kinesis_source.aws.retry import RetryPolicy, call_with_retry, policy_of
from kinesis_source.errors import DataLossError, KinesisReadError, StreamNotFoundError
from kinesis_source.options import InitialPosition, KinesisOptions
from kinesis_source.source import admission
from kinesis_source.source.data_loss import iso, span, stale_shards, vanished_shards
from kinesis_source.source.lineage import ShardInfo, advance_shards, readable_shards
from kinesis_source.source.multi_shard import read_shards
from kinesis_source.source.positions import Offset, Position, ShardEnd
from kinesis_source.source.shard_reader import ShardTask
from kinesis_source.stores import CheckpointStore, open_store

log = logging.getLogger(__name__)


class ShardPartition(InputPartition):
    """One or more shards (``shardsPerTask``) of one batch, read by one task.

    Holds no credentials: those stay in the reader's options.
    """

    def __init__(self, tasks: Sequence[ShardTask]) -> None:
        super().__init__(",".join(t.shard_id for t in tasks))
        self.tasks = tuple(tasks)

    def __repr__(self) -> str:
        shards = ",".join(t.shard_id for t in self.tasks)
        return f"ShardPartition(batch={self.tasks[0].batch}, shards={shards})"


def _arrival_ms(record: Mapping[str, Any]) -> int:
    stamp = record["ApproximateArrivalTimestamp"]
    return int(stamp.timestamp() * 1000) if hasattr(stamp, "timestamp") else int(stamp * 1000)


def _reached(bound_ms: int | None, until_ms: int | None) -> bool:
    """True if a read that stopped at ``bound_ms`` met this run's bound ``until_ms``."""
    return bound_ms is not None and until_ms is not None and bound_ms >= until_ms


def lag_report(batch: int, ends: Mapping[str, ShardEnd]) -> dict[str, Any]:
    """What ``reportLatestOffset`` shows in progress: the last finished batch per shard."""
    behind = [e.millis_behind_latest for e in ends.values() if e.millis_behind_latest is not None]
    shards: dict[str, dict[str, Any]] = {}
    for sid in sorted(ends):
        entry: dict[str, Any] = {"recordsRead": ends[sid].records}
        if ends[sid].millis_behind_latest is not None:
            entry["millisBehindLatest"] = ends[sid].millis_behind_latest
        shards[sid] = entry
    report: dict[str, Any] = {
        "batch": batch,
        "recordsRead": sum(e.records for e in ends.values()),
    }
    if behind:
        report["maxMillisBehindLatest"] = max(behind)
    report["shards"] = shards
    return report


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


class KinesisStreamReader(DataSourceStreamReader, SupportsTriggerAvailableNow):
    def __init__(self, opts: KinesisOptions) -> None:
        self.opts = opts
        self._last_listing_at = float("-inf")
        # Trigger.AvailableNow's arrival-time bound (epoch ms), set by prepare on the driver.
        self._until_ms: int | None = None
        # The last finished batch's per-shard figures, for reportLatestOffset.
        self._lag: dict[str, Any] | None = None
        # Probe iterators to reuse: shard -> (position text, iterator, monotonic expiry).
        self._probe_iterators: dict[str, tuple[str, str, float]] = {}
        # Shard -> (position text, monotonic time) of its last probe that found nothing.
        # An idle shard is probed at most every fetchIntervalMs, which keeps a tight
        # trigger loop within Kinesis' 5 GetRecords calls/s per shard.
        self._idle_at: dict[str, tuple[str, float]] = {}
        # Shard id -> when its position was last known up to date (epoch ms): by a read
        # that recorded its end, or a probe that found nothing new. For failOnDataLoss.
        self._confirmed_ms: dict[str, int] = {}
        # Fail on the driver, before any task runs, if the stream or store is unusable.
        self._list_shards()
        self._retention_ms = self._describe_retention_ms()
        self._store().check()

    # -- helpers -------------------------------------------------------------------------

    def _store(self) -> CheckpointStore:
        return open_store(self.opts)

    def _list_shards(self) -> list[ShardInfo]:
        shards = list_shards(
            kinesis_client(self.opts),
            self.opts.stream_name,
            self.opts.region,
            policy_of(self.opts),
        )
        self._last_listing_at = time.monotonic()
        return shards

    def _describe_retention_ms(self) -> int:
        client = kinesis_client(self.opts)
        stream = self.opts.stream_name
        summary = call_with_retry(
            lambda: client.describe_stream_summary(StreamName=stream),
            policy_of(self.opts),
            what="DescribeStreamSummary",
            stream=stream,
        )["StreamDescriptionSummary"]
        return (
            int(summary.get("RetentionPeriodHours") or limits.RETENTION_DEFAULT_HOURS) * 3_600_000
        )

    def _lost(self, shard_id: str, message: str) -> None:
        if self.opts.fail_on_data_loss:
            raise DataLossError(
                f"{message} Set the option failOnDataLoss=false to log this and go on from "
                "the oldest record still in the shard.",
                stream=self.opts.stream_name,
                shard_id=shard_id,
            )
        log.warning("%s failOnDataLoss=false: going on from the oldest record.", message)

    def _check_data_loss(
        self, positions: dict[str, Position], listing: list[ShardInfo] | None, now_ms: int
    ) -> dict[str, Position]:
        """Fail or warn about lost records (data_loss.py); vanished shards count as ended."""
        stream = self.opts.stream_name
        if listing is not None:
            for sid in vanished_shards(positions, (s.shard_id for s in listing)):
                self._lost(
                    sid,
                    f"Data loss on stream {stream!r}: shard {sid} is no longer in the stream "
                    f"(it closed and aged out of the retention before it was read to its "
                    f"end); its records after {positions[sid].text()} are lost.",
                )
                positions[sid] = Position.shard_end()
        stale = stale_shards(positions, self._confirmed_ms, now_ms, self._retention_ms)
        for sid, confirmed in stale.items():
            horizon = now_ms - self._retention_ms
            self._lost(
                sid,
                f"Possible data loss on stream {stream!r} shard {sid}: its position "
                f"{positions[sid].text()} was last confirmed at {iso(confirmed)}, more than "
                f"the stream's retention ({span(self._retention_ms)}) ago; records that "
                f"arrived between {iso(confirmed)} and {iso(horizon)} (about "
                f"{span(horizon - confirmed)}) were trimmed before they were read.",
            )
            self._confirmed_ms[sid] = now_ms
        return positions

    def _probe(self, position: Position, shard_id: str, until_ms: int | None) -> bool:
        """True if the shard has records at ``position``, or has ended there.

        With an AvailableNow bound, a first record that arrived after it is no data.
        """
        probed_at_ms = int(time.time() * 1000)
        client = kinesis_client(self.opts)
        try:
            resp = self._probe_records(client, position, shard_id)
        except (ClientError, KinesisReadError) as exc:
            # Planning a batch is the safe answer: the read itself will retry or fail loudly.
            log.warning("probe of shard %s failed (%s); planning a batch", shard_id, exc)
            return True
        records = resp.get("Records") or []
        following = resp.get("NextShardIterator")
        if not records and following:
            # An empty page's next iterator is at the same position: the next probe of an
            # idle shard is one GetRecords call instead of two.
            expiry = time.monotonic() + limits.PROBE_ITERATOR_REUSE_SECONDS
            self._probe_iterators[shard_id] = (position.text(), following, expiry)
        else:
            self._probe_iterators.pop(shard_id, None)
        if records:
            return until_ms is None or _arrival_ms(records[0]) <= until_ms
        has_work = bool(
            (resp.get("MillisBehindLatest") or 0) > 0 or resp.get("NextShardIterator") is None
        )
        if has_work:
            self._idle_at.pop(shard_id, None)
        else:
            self._confirmed_ms[shard_id] = probed_at_ms
            self._idle_at[shard_id] = (position.text(), time.monotonic())
        return has_work

    def _probe_records(self, client: Any, position: Position, shard_id: str) -> Any:
        """GetRecords Limit=1 at ``position``, reusing the last probe's iterator if valid."""
        stream, policy = self.opts.stream_name, policy_of(self.opts)

        def first_record(iterator: str) -> Any:
            return call_with_retry(
                functools.partial(client.get_records, ShardIterator=iterator, Limit=1),
                policy,
                what="GetRecords (probe)",
                stream=stream,
                shard_id=shard_id,
            )

        cached = self._probe_iterators.pop(shard_id, None)
        if cached is not None and cached[0] == position.text() and time.monotonic() < cached[2]:
            try:
                return first_record(cached[1])
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "ExpiredIteratorException":
                    raise
        request = position.iterator_request()
        iterator = call_with_retry(
            lambda: client.get_shard_iterator(StreamName=stream, ShardId=shard_id, **request),
            policy,
            what="GetShardIterator (probe)",
            stream=stream,
            shard_id=shard_id,
        )["ShardIterator"]
        return first_record(iterator)

    def _shards_with_new_data(
        self, shards: Mapping[str, Position], todo: Sequence[str], until_ms: int | None
    ) -> set[str]:
        """The shards of ``todo`` a probe finds data on, probed in bounded parallel.

        A shard found idle at the same position less than fetchIntervalMs ago is not probed
        again yet: it counts as still idle.
        """
        now, gap = time.monotonic(), self.opts.fetch_interval_ms / 1000.0
        todo = [
            sid
            for sid in todo
            if not (
                sid in self._idle_at
                and self._idle_at[sid][0] == shards[sid].text()
                and now - self._idle_at[sid][1] < gap
            )
        ]
        if not todo:
            return set()
        with ThreadPoolExecutor(max_workers=min(limits.PROBE_THREADS, len(todo))) as pool:
            found = pool.map(lambda sid: self._probe(shards[sid], sid, until_ms), todo)
            return {sid for sid, has in zip(todo, found, strict=True) if has}

    # -- DataSourceStreamReader ----------------------------------------------------------

    def initialOffset(self) -> dict[str, Any]:
        opts = self.opts
        if opts.initial_position is InitialPosition.TRIM_HORIZON:
            since_ms = None
        elif opts.initial_position is InitialPosition.AT_TIMESTAMP:
            since_ms = opts.initial_timestamp_ms
        else:
            # LATEST is resolved once, here, so that a replay or restart does not move it.
            since_ms = int(time.time() * 1000)
        offset = Offset(
            batch=0, stream=opts.stream_name, query=uuid.uuid4().hex, since_ms=since_ms, shards={}
        )
        shards = advance_shards({}, self._list_shards(), offset.start_position_for_new_shard())
        offset = Offset(
            batch=0, stream=offset.stream, query=offset.query, since_ms=since_ms, shards=shards
        )
        log.info("stream %s: initial offset %s", opts.stream_name, offset.to_json())
        return offset.to_json()

    def getDefaultReadLimit(self) -> ReadLimit:
        if self.opts.max_records_per_trigger is None:
            return ReadAllAvailable()
        return ReadMaxRows(self.opts.max_records_per_trigger)

    def prepareForTriggerAvailableNow(self) -> None:
        # Records that arrived by now are what "available now" means. Kinesis stamps arrival
        # on its own clock: a driver clock off by d moves the bound by d.
        self._until_ms = int(time.time() * 1000)
        log.info(
            "stream %s: Trigger.AvailableNow reads records that arrived by %d (epoch ms)",
            self.opts.stream_name,
            self._until_ms,
        )

    def reportLatestOffset(self) -> dict[str, Any] | None:
        return self._lag

    def latestOffset(self, start: dict[str, Any], limit: ReadLimit) -> dict[str, Any]:
        current = Offset.from_json(start)
        ends = self._store().get_batch(current.stream, current.query, current.batch)
        if ends and (self._lag is None or self._lag["batch"] != current.batch):
            # Once per finished batch, not on every idle trigger after it.
            self._lag = lag_report(current.batch, ends)
            log.info("stream %s: batch %d read %s", current.stream, current.batch, self._lag)
        positions = {
            sid: ends[sid].position if sid in ends else pos for sid, pos in current.shards.items()
        }
        # List when a shard was read to its end in this batch (its children may be readable
        # now), not for every finished shard still tracked: a merge parent waits there for
        # its co-parent, and an idle stream would be listed on every trigger.
        reached_end = any(end.position.is_shard_end for end in ends.values())
        due = (time.monotonic() - self._last_listing_at) * 1000.0 >= (
            self.opts.shard_discovery_interval_ms
        )
        listing = self._list_shards() if (reached_end or due) else None
        for sid, shard_end in ends.items():
            if shard_end.written_at_ms is not None:
                known_at = self._confirmed_ms.get(sid, 0)
                self._confirmed_ms[sid] = max(known_at, shard_end.written_at_ms)
        positions = self._check_data_loss(positions, listing, int(time.time() * 1000))
        positions = advance_shards(positions, listing, current.start_position_for_new_shard())

        readable = readable_shards(positions)
        until_ms = self._until_ms
        # A shard whose last read stopped short of its data (a cap) has more: no probe.
        known = {
            sid
            for sid in readable
            if sid in ends and sid in current.shards and not ends[sid].caught_up
        }
        # Under AvailableNow, a shard whose read met this run's bound is done for the run.
        exhausted = {
            sid
            for sid in readable
            if sid in ends and _reached(ends[sid].reached_bound_ms, until_ms)
        }
        budget = admission.max_rows(limit)
        if budget == 0:
            return start
        todo = [sid for sid in readable if sid not in known and sid not in exhausted]
        with_data = known | self._shards_with_new_data(positions, todo, until_ms)
        # A shard change is logged in a batch of its own even with no data, so that the
        # next trigger starts from it rather than finding (and listing) it all over again.
        shards_changed = positions.keys() != current.shards.keys()
        if not with_data and not shards_changed:
            return start
        nxt = Offset(
            batch=current.batch + 1,
            stream=current.stream,
            query=current.query,
            since_ms=current.since_ms,
            shards=positions,
            limits=admission.plan_limits(
                readable, with_data, budget, self.opts.max_records_per_shard, current.batch + 1
            ),
            until_ms=until_ms,
        )
        log.info(
            "stream %s: planned batch %d over %d of %d shards (%d probed; row budget %s)",
            current.stream,
            nxt.batch,
            len(nxt.planned_shards()),
            len(readable),
            len(todo),
            budget,
        )
        return nxt.to_json()

    def partitions(self, start: dict[str, Any], end: dict[str, Any]) -> Sequence[InputPartition]:
        if start == end:
            return []
        offset = Offset.from_json(end)
        tasks = [
            ShardTask(
                batch=offset.batch,
                stream=offset.stream,
                query=offset.query,
                shard_id=sid,
                start=offset.shards[sid],
                max_records=offset.limits.get(sid),
                until_ms=offset.until_ms,
            )
            for sid in offset.planned_shards()
        ]
        size = self.opts.shards_per_task
        return [ShardPartition(tasks[i : i + size]) for i in range(0, len(tasks), size)]

    def read(self, partition: InputPartition) -> Iterator[pa.RecordBatch]:
        assert isinstance(partition, ShardPartition)
        return read_shards(self.opts, self._store(), partition.tasks)

    def commit(self, end: dict[str, Any]) -> None:
        offset = Offset.from_json(end)
        # Keep batch end-1 too: latestOffset(end) still reads batch `end.batch`'s entries,
        # and a replay of the last committed batch may still happen after a restart.
        self._store().purge_before(offset.stream, offset.query, offset.batch - 1)
