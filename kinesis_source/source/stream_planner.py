"""Planning one stream's next batch on the driver: the I/O around ``planning``.

One planner per stream: it lists the stream's shards when due (``discovery``), checks for
lost records (``data_loss``), probes idle shards (``probing``) and hands the facts to the
pure ``planning`` functions. It holds plain values only, so the reader that holds it stays
picklable.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Mapping

from kinesis_source.options import InitialPosition, KinesisOptions
from kinesis_source.source import planning
from kinesis_source.source.data_loss import DataLossCheck
from kinesis_source.source.discovery import ShardDiscovery
from kinesis_source.source.lineage import advance_shards, readable_shards
from kinesis_source.source.positions import Offset, ShardEnd
from kinesis_source.source.probing import ShardProber

log = logging.getLogger(__name__)


class StreamPlanner:
    """Plans the batches of one stream; fails at construction if the stream is unusable."""

    def __init__(self, opts: KinesisOptions, stream: str) -> None:
        self.opts = opts
        self.stream = stream
        self.discovery = ShardDiscovery(opts, stream)
        self.discovery.listing()
        self.data_loss = DataLossCheck(
            stream, self.discovery.retention_ms(), opts.fail_on_data_loss
        )
        self.prober = ShardProber(opts, stream, self.data_loss.confirm)

    def initial_offset(self) -> Offset:
        opts = self.opts
        if opts.initial_position is InitialPosition.TRIM_HORIZON:
            since_ms = None
        elif opts.initial_position is InitialPosition.AT_TIMESTAMP:
            since_ms = opts.initial_timestamp_ms
        else:
            # LATEST is resolved once, here, so that a replay or restart does not move it.
            since_ms = int(time.time() * 1000)
        offset = Offset(
            batch=0, stream=self.stream, query=uuid.uuid4().hex, since_ms=since_ms, shards={}
        )
        shards = advance_shards({}, self.discovery.listing(), offset.start_position_for_new_shard())
        return Offset(
            batch=0, stream=offset.stream, query=offset.query, since_ms=since_ms, shards=shards
        )

    def plan(
        self,
        current: Offset,
        ends: Mapping[str, ShardEnd],
        budget: int | None,
        until_ms: int | None,
    ) -> Offset | None:
        """The batch after ``current`` (whose read ended at ``ends``), or None: no batch.

        ``budget`` is the batch's row budget (None: none); ``until_ms`` the AvailableNow
        bound of the run, if any.
        """
        positions = planning.positions_after(current, ends)
        # List when a shard was read to its end in this batch, not for every finished
        # shard still tracked: a merge parent waits there for its co-parent, and an idle
        # stream would be listed on every trigger.
        listing = self.discovery.list_if_due(planning.any_shard_ended(ends))
        self.data_loss.confirm_ends(ends)
        listed = None if listing is None else [s.shard_id for s in listing]
        positions = self.data_loss.check(positions, listed, int(time.time() * 1000))
        positions = advance_shards(positions, listing, current.start_position_for_new_shard())

        readable = readable_shards(positions)
        known = planning.with_backlog(readable, ends, current)
        exhausted = planning.done_for_the_run(readable, ends, until_ms)
        if budget == 0:
            return None
        todo = [sid for sid in readable if sid not in known and sid not in exhausted]
        with_data = known | self.prober.shards_with_new_data(positions, todo, until_ms)
        nxt = planning.next_offset(
            current,
            positions,
            readable,
            with_data,
            budget,
            self.opts.max_records_per_shard,
            until_ms,
        )
        if nxt is not None:
            log.info(
                "stream %s: planned batch %d over %d of %d shards (%d probed; row budget %s)",
                current.stream,
                nxt.batch,
                len(nxt.planned_shards()),
                len(readable),
                len(todo),
                budget,
            )
        return nxt
