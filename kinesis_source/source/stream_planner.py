"""Planning one stream's part of the next batch on the driver: the I/O around ``planning``.

One planner per stream: it lists the stream's shards when due (``discovery``), checks for
lost records (``data_loss``), probes idle shards (``probing``) and hands the facts to the
pure ``planning`` functions. It holds plain values only, so the reader that holds it stays
picklable.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from kinesis_source.options import KinesisOptions
from kinesis_source.source import planning
from kinesis_source.source.data_loss import DataLossCheck
from kinesis_source.source.discovery import ShardDiscovery
from kinesis_source.source.lineage import advance_shards, readable_shards
from kinesis_source.source.positions import Position, ShardEnd, StreamOffset
from kinesis_source.source.probing import ShardProber
from kinesis_source.source.stream_start import initial_stream_offset


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

    def initial(self, now_ms: int, leases: Mapping[str, Position] | None) -> StreamOffset:
        """The stream's positions at its first batch (``stream_start``)."""
        listing = self.discovery.listing()
        return initial_stream_offset(self.opts, self.stream, listing, now_ms, leases)

    def step(
        self, current: StreamOffset, ends: Mapping[str, ShardEnd], until_ms: int | None
    ) -> planning.StreamStep:
        """The stream's facts for the batch after ``current``, whose read ended at ``ends``.

        ``until_ms`` is the AvailableNow bound of the run, if any.
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
        todo = [sid for sid in readable if sid not in known and sid not in exhausted]
        with_data = known | self.prober.shards_with_new_data(positions, todo, until_ms)
        return planning.StreamStep(current, positions, readable, with_data)
