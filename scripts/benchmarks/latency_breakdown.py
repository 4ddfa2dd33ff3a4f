"""Where (e)'s put-to-row time goes: each row's put, arrival, first serving GetRecords call and
arrival at the sink, next to the query's progress reports and the server's call trace
(``KinesisServer.trace``). The server, Spark and the sink share this machine's clock."""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple

# Spark's parts of a micro-batch before its tasks run (``durationMs``).
BEFORE_TASKS = ("latestOffset", "walCommit", "getBatch", "queryPlanning")


class Arrival(NamedTuple):
    """One row at the sink: put (epoch s, the producer's clock), seen by the sink (epoch s),
    its shard, and Kinesis' arrival time (epoch ms)."""

    put_s: float
    seen_s: float
    shard_id: str
    arrival_ms: int


def _median(values: Iterable[float]) -> float | None:
    got = list(values)
    return statistics.median(got) if got else None


def first_served(trace: Sequence[Sequence[Any]]) -> dict[tuple[str, int], int]:
    """(shard id, arrival ms) -> server ms of the first GetRecords call that served it."""
    served: dict[tuple[str, int], int] = {}
    for op, shard, at_ms, arrivals in trace:
        if op != "GetRecords":
            continue
        shard_id = shard.rpartition("/")[2]
        for arrival in arrivals:
            served.setdefault((shard_id, arrival), at_ms)
    return served


def call_gaps(trace: Sequence[Sequence[Any]], since_ms: float) -> tuple[list[int], list[int]]:
    """Gaps (ms) between a shard's consecutive GetRecords calls, and from each
    GetShardIterator to the shard's next GetRecords, for calls from ``since_ms`` on."""
    last_records: dict[str, int] = {}
    pending_iterator: dict[str, int] = {}
    gaps, iterator_to_records = [], []
    for op, shard, at_ms, _ in trace:
        if at_ms < since_ms:
            continue
        if op == "GetShardIterator":
            pending_iterator[shard] = at_ms
            continue
        if shard in last_records:
            gaps.append(at_ms - last_records[shard])
        last_records[shard] = at_ms
        if shard in pending_iterator:
            iterator_to_records.append(at_ms - pending_iterator.pop(shard))
    return gaps, iterator_to_records


def _epoch_ms(timestamp: str) -> float:
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp() * 1000


def tasks_to_first_call(
    batches: Sequence[Mapping[str, Any]], trace: Sequence[Sequence[Any]]
) -> list[float]:
    """Per batch, ms from the end of Spark's parts before its tasks (``BEFORE_TASKS``) to the
    first read call of the batch: the job's start, the task's launch in a Python worker,
    the store's look-up."""
    calls = sorted(at_ms for _, _, at_ms, _ in trace)
    out = []
    for p in batches:
        start = _epoch_ms(p["timestamp"])
        durations = p["durationMs"]
        end = start + durations.get("triggerExecution", 0)
        first = next((at for at in calls if start <= at <= end), None)
        if first is not None:
            out.append(first - start - sum(durations.get(step, 0) for step in BEFORE_TASKS))
    return out


def breakdown(
    rows: Sequence[Arrival],
    trace: Sequence[Sequence[Any]],
    batches: Sequence[Mapping[str, Any]],
) -> dict[str, float | None]:
    """Medians in ms: per row, put to arrival, arrival to the first GetRecords that served
    it (waiting for a read), that call to the sink (the call's answer, our decoding, the
    rest of Spark's job); per shard, between GetRecords calls and from GetShardIterator to
    GetRecords; per batch, from Spark's parts before the tasks to the first call."""
    served = first_served(trace)
    waits, reads = [], []
    for row in rows:
        at = served.get((row.shard_id, row.arrival_ms))
        if at is not None:
            waits.append(at - row.arrival_ms)
            reads.append(row.seen_s * 1000 - at)
    since = min((row.arrival_ms for row in rows), default=0)
    gaps, iterator_to_records = call_gaps(trace, since)
    return {
        "put to arrival": _median(row.arrival_ms - row.put_s * 1000 for row in rows),
        "arrival to its GetRecords": _median(waits),
        "GetRecords to the sink": _median(reads),
        "between a shard's GetRecords": _median(gaps),
        "GetShardIterator to GetRecords": _median(iterator_to_records),
        "tasks' start to the first call": _median(tasks_to_first_call(batches, trace)),
    }
