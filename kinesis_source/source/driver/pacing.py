"""Pacing GetRecords per shard and choosing what a trigger probes, decided without I/O.

Kinesis allows 5 GetRecords calls/s per shard, shared by every consumer of the stream. The
driver's probes and the executors' reads both spend them, so one record of the last call
on each shard (``ShardPacing.last_call_ms``) paces both: the last batch's reads are known
from the time the store wrote their ends (``writtenAtMs``, taken after a read's last call),
the probes from the driver's own clock. No call on a shard is planned sooner than
``fetchIntervalMs`` after the last one: a probe waits until the shard is due, and a read
planned sooner carries the time its first call may go (``not_before_ms``). A read whose
last page was large spent the shard's 2 MiB/s of reads for longer (``quotaWaitMs``): its
last call counts as that much later, so that neither a probe nor the next batch's read is
refused (executor/get_records.call_gap_s).

Three rules keep a trigger's cost flat in the number of shards while data flows:

- **A probe budget in rotation.** A trigger probes at most ``maxProbesPerTrigger`` of a
  stream's idle shards, those called least recently first (never-called ones before all).
  An idle shard is thus probed at least once every ``ceil(idle shards / budget)``
  triggers; with no more idle shards than the budget, on every trigger it is due, as before.
- **No probe where the answer is known.** A shard whose last read stopped short (a cap) has
  a backlog and is planned without a probe (``planning.with_backlog``).
- **Flowing shards are read without a probe.** A shard whose last ``FLOWING_READS`` reads in
  a row each caught up with the shard's tip and found records on the way (with no probe
  finding it idle in between) most likely has new records again: it is planned directly,
  its read holding its first call until the shard is due, and the read is its probe. A
  probe then a read would cost two calls per batch where one does; at a 100 ms trigger
  that is the difference between fitting in 5 calls/s and not. The price: when such a
  stream stops, one last batch reads nothing; after it the shards are idle again and
  probed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from kinesis_source import limits
from kinesis_source.source.positions import ShardEnd

# Reads in a row that caught up and found records before a shard counts as flowing. One is
# not enough: the read that drains a backlog put before the query started does that too,
# and a stream written in bursts would then run an empty batch after every burst.
FLOWING_READS = 2


def is_due(last_call_ms: int | None, now_ms: int, interval_ms: int) -> bool:
    """A shard last called at ``last_call_ms`` (None: never) may be called again now."""
    return last_call_ms is None or now_ms - last_call_ms >= interval_ms


def probe_order(
    candidates: Iterable[str],
    last_call_ms: Mapping[str, int],
    now_ms: int,
    interval_ms: int,
    budget: int,
) -> list[str]:
    """The shards of ``candidates`` to probe now: due ones, least recently called first
    (never-called ones first, ties by shard id), at most ``budget``."""
    due = [sid for sid in candidates if is_due(last_call_ms.get(sid), now_ms, interval_ms)]
    due.sort(key=lambda sid: (last_call_ms.get(sid, -1), sid))
    return due[:budget]


def wait_until_due_ms(
    shards: Iterable[str], last_call_ms: Mapping[str, int], now_ms: int, interval_ms: int
) -> int:
    """How long (ms) until every shard of ``shards`` may be called again: at most one
    interval, 0 if all are due."""
    waits = [last_call_ms[sid] + interval_ms - now_ms for sid in shards if sid in last_call_ms]
    return max(0, min(interval_ms, max(waits, default=0)))


def held_by_quota(
    shards: Iterable[str], last_call_ms: Mapping[str, int], now_ms: int, interval_ms: int
) -> dict[str, int]:
    """The shards of ``shards`` whose next call is more than one interval away (a large
    last page spent their read quota), with how long until they are due (ms).

    A read planned for one of them would sleep in its task until then, holding a slot that
    another shard's read could use; they wait for a later trigger instead."""
    held = {}
    for sid in shards:
        last = last_call_ms.get(sid)
        if last is not None and interval_ms > 0:
            wait = last + interval_ms - now_ms
            if wait > interval_ms:
                held[sid] = wait
    return held


def not_before_ms(last_call_ms: int | None, now_ms: int, interval_ms: int) -> int | None:
    """When a read planned now may send its first GetRecords (epoch ms), or None: at once."""
    if last_call_ms is None or interval_ms <= 0 or now_ms - last_call_ms >= interval_ms:
        return None
    return last_call_ms + interval_ms


def launch_order(not_before: Sequence[int | None]) -> list[int]:
    """The order (indices into ``not_before``) in which a batch's reads are handed to Spark:
    those that may call at once first, then those held back by their shard's interval,
    soonest due first; ties keep their order.

    Spark starts a stage's tasks in partition order, as slots free up. A read that must
    wait sleeps in its task and holds the slot; at the end of the stage its wait has mostly
    passed by the time a slot reaches it. With 64 shards on 2 cores, each planned right after
    the last batch read it, tasks waited about 150 ms of their 200 ms each.
    """
    return sorted(
        range(len(not_before)), key=lambda i: (not_before[i] is not None, not_before[i] or 0)
    )


@dataclass
class ShardPacing:
    """What the driver knows of each shard's recent calls: the last one, and how many reads
    in a row found records. Plain values: the reader that holds it stays picklable."""

    last_call_ms: dict[str, int] = field(default_factory=dict)
    # Shard -> reads in a row that caught up and found records (reset by any other read, or
    # by a probe finding nothing).
    found_in_a_row: dict[str, int] = field(default_factory=dict)
    # The batch whose ends were last taken in: each trigger reads them again until the next
    # batch is planned, and a read must count once.
    seen_batch: int | None = None

    def saw_batch(
        self, batch: int, ends: Mapping[str, ShardEnd], now_ms: int | None = None
    ) -> None:
        """Take in the ends batch ``batch`` recorded (once per batch).

        ``writtenAtMs`` is an executor's clock, ``now_ms`` the driver's: a time ahead of
        the driver's now is taken as now, or an executor clock ahead by seconds would hold
        the shard's probes and reads back by as much (docs/design.md, clocks).
        """
        if self.seen_batch == batch:
            return
        self.seen_batch = batch
        for sid, end in ends.items():
            if end.written_at_ms is not None:
                written = end.written_at_ms if now_ms is None else min(end.written_at_ms, now_ms)
                # A read whose last page spent the shard's read quota holds the next call
                # back by as much, as if it had been called that much later.
                written += min(end.quota_wait_ms, limits.READ_QUOTA_WAIT_MAX_MS)
                self.last_call_ms[sid] = max(self.last_call_ms.get(sid, 0), written)
            # Records found at the tip are evidence of arrivals; a read that stopped at a
            # cap only says the backlog was not drained yet.
            found = end.records > 0 and end.caught_up and not end.position.is_shard_end
            self.found_in_a_row[sid] = self.found_in_a_row.get(sid, 0) + 1 if found else 0

    def saw_probes(self, probed: Iterable[str], found: Iterable[str], at_ms: int) -> None:
        """Probes of ``probed`` finished by ``at_ms``; those not in ``found`` were idle."""
        with_data = set(found)
        for sid in probed:
            self.last_call_ms[sid] = max(self.last_call_ms.get(sid, 0), at_ms)
            if sid not in with_data:
                self.found_in_a_row[sid] = 0

    def flowing(self, candidates: Iterable[str]) -> set[str]:
        """The shards of ``candidates`` whose recent reads say data keeps arriving."""
        return {sid for sid in candidates if self.found_in_a_row.get(sid, 0) >= FLOWING_READS}

    def flowing_to_read(self, candidates: Iterable[str], now_ms: int, interval_ms: int) -> set[str]:
        """The flowing shards of ``candidates`` a batch planned now reads: every one whose
        next call is at most one interval away, its read holding its first call until
        then (``not_before_ms``).

        Waiting for a later trigger instead would read a flowing shard only every trigger
        interval rounded up past ``fetchIntervalMs`` (every 300 ms at a 100 ms trigger,
        with Spark's cost per batch often more), and each record would wait for its read
        that much longer; a read held in its task overlaps Spark's own work before the
        task (the offset log's write, planning, the task's launch). A shard whose last page
        spent its read quota for longer than that waits for a later trigger, as a backlog
        does (``held_by_quota``): its task would hold a slot asleep.
        """
        flowing = self.flowing(candidates)
        held = held_by_quota(flowing, self.last_call_ms, now_ms, interval_ms)
        return flowing - held.keys()

    def due(self, shards: Iterable[str], now_ms: int, interval_ms: int) -> set[str]:
        return {sid for sid in shards if is_due(self.last_call_ms.get(sid), now_ms, interval_ms)}

    def not_before_ms(self, shard_id: str, now_ms: int, interval_ms: int) -> int | None:
        return not_before_ms(self.last_call_ms.get(shard_id), now_ms, interval_ms)

    def forget_except(self, tracked: Iterable[str]) -> None:
        """Drop shards no longer tracked (finished, or their stream dropped)."""
        keep = set(tracked)
        for table in (self.last_call_ms, self.found_in_a_row):
            for sid in [s for s in table if s not in keep]:
                del table[sid]
