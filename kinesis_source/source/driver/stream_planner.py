"""Planning one stream's part of the next batch on the driver: the I/O around ``planning``.

One planner per stream: it lists the stream's shards when due (``discovery``), checks for
lost records (``data_loss``), probes idle shards (``probing``) and hands the facts to the
pure ``planning`` functions. It holds plain values only, so the reader that holds it stays
picklable.

Which shards a trigger probes and when a shard may be called again is ``pacing``'s: the
cost of a trigger stays flat in the number of shards (a probe budget in rotation, no probe
of a shard with a backlog or with data flowing), and no shard gets GetRecords calls,
probes and reads together, more often than every ``fetchIntervalMs``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping

from kinesis_source import limits
from kinesis_source.source.driver import pacing, planning
from kinesis_source.source.driver.discovery import ShardDiscovery
from kinesis_source.source.driver.lineage import ShardInfo, advance_shards, readable_shards
from kinesis_source.source.driver.loss_check import DataLossCheck
from kinesis_source.source.driver.probing import ShardProber
from kinesis_source.source.driver.stream_start import initial_stream_offset
from kinesis_source.source.driver.trim_probe import OldestRecord
from kinesis_source.source.options import KinesisOptions
from kinesis_source.source.positions import Position, ShardEnd, StreamOffset


class StreamPlanner:
    """Plans the batches of one stream; fails at construction if the stream is unusable."""

    def __init__(self, opts: KinesisOptions, stream: str) -> None:
        self.opts = opts
        self.stream = stream
        self.discovery = ShardDiscovery(opts, stream)
        # Shards the last listing showed closed: their reads go on to their end (ShardTask).
        self.closed: set[str] = set()
        self._saw_listing(self.discovery.listing())
        self.data_loss = DataLossCheck(
            stream,
            self.discovery.retention_ms(),
            opts.fail_on_data_loss,
            oldest_record=OldestRecord(opts, stream),
        )
        self.prober = ShardProber(opts, stream, self.data_loss.confirm)
        self.pacing = pacing.ShardPacing()

    def initial(self, now_ms: int, leases: Mapping[str, Position] | None) -> StreamOffset:
        """The stream's positions at its first batch (``stream_start``)."""
        listing = self.discovery.listing()
        self._saw_listing(listing)
        return initial_stream_offset(
            self.opts, self.stream, listing, now_ms, leases, self.data_loss.retention_ms
        )

    def step(
        self,
        batch: int,
        current: StreamOffset,
        ends: Mapping[str, ShardEnd],
        until_ms: int | None,
    ) -> planning.StreamStep:
        """The stream's facts for the batch after ``current`` (batch ``batch``), whose read
        ended at ``ends``.

        ``until_ms`` is the AvailableNow bound of the run, if any.
        """
        self.pacing.saw_batch(batch, ends, int(time.time() * 1000))
        positions = planning.positions_after(current, ends)
        # List when a shard was read to its end in this batch, not for every finished
        # shard still tracked: a merge parent waits there for its co-parent, and an idle
        # stream would be listed on every trigger.
        listing = self.discovery.list_if_due(planning.any_shard_ended(ends))
        if listing is not None:
            self._saw_listing(listing)
        self.data_loss.confirm_ends(ends)
        listed = None if listing is None else [s.shard_id for s in listing]
        positions = self.data_loss.check(positions, listed, int(time.time() * 1000))
        positions = advance_shards(positions, listing, current.start_position_for_new_shard())
        if listing is not None:
            self.pacing.forget_except(positions)

        readable = readable_shards(positions)
        known = planning.with_backlog(readable, ends, current)
        exhausted = planning.done_for_the_run(readable, ends, until_ms)
        rest = [sid for sid in readable if sid not in known and sid not in exhausted]
        now_ms, interval = int(time.time() * 1000), self.opts.fetch_interval_ms
        # Under AvailableNow every batch must be one the run needs: no read on a guess.
        flowing = set() if until_ms is not None else self.pacing.flowing(rest)
        # Under AvailableNow a bounded run reads its backlog at once, waits and all.
        held = {} if until_ms is not None else self._held_by_quota(known, now_ms)
        known = known - held.keys()
        with_data = known | self.pacing.flowing_to_read(flowing, now_ms, interval)
        in_flight = self.prober.in_flight
        candidates = [sid for sid in rest if sid not in in_flight and sid not in with_data]
        budget = max(0, self.opts.max_probes_per_trigger - len(in_flight))
        if until_ms is not None and not with_data:
            # "No data" ends an AvailableNow run: every shard not done is looked at first.
            budget = len(candidates)
        todo = pacing.probe_order(
            [sid for sid in candidates if sid not in flowing],
            self.pacing.last_call_ms,
            now_ms,
            interval,
            budget,
        )
        self.prober.start(positions, todo, until_ms)
        # With a batch to plan anyway, its planning does not wait for the idle shards'
        # probes: they finish while it runs and count at the next trigger. With none, the
        # probes decide whether there is a batch at all, so they are waited for.
        probes = self.prober.collect(positions, until_ms, wait=not with_data)
        self.pacing.saw_probes(probes.probed, probes.found, int(time.time() * 1000))
        found = probes.found
        if not with_data and not found and held:
            # Only shards whose quota is spent have data: waiting here for the first of
            # them (at most a few seconds) holds no task slot, and "no data" would end a
            # processAllAvailable() with their records unread.
            time.sleep(min(min(held.values()), limits.READ_QUOTA_WAIT_MAX_MS) / 1000)
            now_ms = int(time.time() * 1000)
            found = set(held) - self._held_by_quota(held, now_ms).keys()
        if not with_data and not found:
            waiting = [sid for sid in candidates if sid not in todo][: budget - len(todo)]
            found = self._probe_held_back(positions, waiting, until_ms)
        return planning.StreamStep(current, positions, readable, with_data | found)

    def _held_by_quota(self, shards: Iterable[str], now_ms: int) -> dict[str, int]:
        return pacing.held_by_quota(
            shards, self.pacing.last_call_ms, now_ms, self.opts.fetch_interval_ms
        )

    def _probe_held_back(
        self, positions: Mapping[str, Position], held: list[str], until_ms: int | None
    ) -> set[str]:
        """Probe ``held``, readable shards left out of this trigger's probes only because
        they were called less than ``fetchIntervalMs`` ago, once they are due.

        This trigger would otherwise say "no new data", which ends a Trigger.AvailableNow
        run and returns ``processAllAvailable()``; a shard read or probed just before
        (its parent's end, records put since) may hold records. Only shards due within
        ``HELD_BACK_PROBE_WAIT_MS`` are waited for, and only on a trigger that has found
        nothing else to do: a longer ``fetchIntervalMs`` is kept, not waited out.
        """
        interval = self.opts.fetch_interval_ms
        now_ms = int(time.time() * 1000)
        last_call = self.pacing.last_call_ms
        held = [
            sid
            for sid in held
            if pacing.wait_until_due_ms([sid], last_call, now_ms, interval)
            <= limits.HELD_BACK_PROBE_WAIT_MS
        ]
        if not held:
            return set()
        time.sleep(pacing.wait_until_due_ms(held, last_call, now_ms, interval) / 1000)
        now_ms = int(time.time() * 1000)
        todo = pacing.probe_order(held, self.pacing.last_call_ms, now_ms, interval, len(held))
        self.prober.start(positions, todo, until_ms)
        probes = self.prober.collect(positions, until_ms, wait=True)
        self.pacing.saw_probes(probes.probed, probes.found, int(time.time() * 1000))
        return probes.found

    def _saw_listing(self, listing: list[ShardInfo]) -> None:
        self.closed = {info.shard_id for info in listing if info.closed}

    def is_closed(self, shard_id: str) -> bool:
        """The last listing showed ``shard_id`` closed: its read goes on to its end."""
        return shard_id in self.closed

    def not_before_ms(self, shard_id: str) -> int | None:
        """When the read of ``shard_id`` planned now may send its first GetRecords."""
        now_ms = int(time.time() * 1000)
        return self.pacing.not_before_ms(shard_id, now_ms, self.opts.fetch_interval_ms)
