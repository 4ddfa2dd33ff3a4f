"""Soak mode, ``bench.py --soak MINUTES`` (issue 15, target 6): does anything grow?

``--consumer-mode efo`` reads by enhanced fan-out instead: kinesis-local (node) behind the
SubscribeToShard test double (tests/emulators/efo_server.py), ``EFO_SHARDS`` shards (the
emulator is slow to write), ``EFO_PUT_RATE`` records/s; subscriptions kept open between
batches in the executors' Python workers are what it watches (threads, sockets, memory).

A query reads a 50-shard stream on moto's server (a subprocess on 127.0.0.1) for MINUTES
with a 1 s processingTime trigger, the file checkpoint store and a foreachBatch sink that
counts every record it is given. A producer thread puts a steady ``PUT_RATE`` records/s (less
when moto answers slower) over ``PUT_KEYS`` partition keys, each record's data its own index.

Every ``SAMPLE_S`` the run samples, from /proc: the resident memory and open file
descriptors of this process (the driver's Python), of the JVM, and of each kind of
Python worker under the JVM (the executors' task workers, the streaming source's planner,
the data source lookups; the ``pyspark.daemon`` processes only fork), with each kind's
threads and descriptors by kind (sockets, files, pipes), and the checkpoint
store's entry count (its ``.json`` files), with the thread count of the driver's Python and
of the JVM. It prints a line a minute, with the JVM's heap (jstat) right after a full
collection (jcmd GC.run), whose old generation is the heap's live set. At the end it
compares the median of the minute after warm-up with the median of the last minute, prints
each pair with its growth and a verdict, and checks that every record put was read
exactly once.

Spark's own status store keeps up to 1,000 SQL executions and 100,000 tasks by default: a
micro-batch of 50 tasks a second fills that for the best part of an hour and the JVM grows
meanwhile through no fault of the source. The soak caps those retention settings
(``SPARK_RETENTION``) so that growth seen here is growth that does not stop.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import procs
from .common import figure, kinesis, moto_kinesis, new_stream, source, spark_session

SOAK_SHARDS = 50
SOAK_TRIGGER = "1 second"
PUT_RATE = 300  # records/s: far under 50 shards' 1,000 records/s each
PUT_KEYS = 997
PUT_EVERY_S = 0.1
EFO_SHARDS = 8
EFO_PUT_RATE = 100
SAMPLE_S = 10.0
PRINT_EVERY_S = 60.0
# The first minutes fill caches, pools and the JVM's heap: compared from after them.
WARM_UP_SHARE = 0.1
WARM_UP_MIN_S = 60.0
WARM_UP_MAX_S = 300.0
# The stretch whose median stands for "after warm-up" and "at the end".
WINDOW_S = 60.0
# Growth allowed before a figure is called growing, unless the figure's own spread in the
# minute after warm-up is larger: noise, not a leak.
RSS_TOLERANCE_SHARE = 0.05
RSS_TOLERANCE_BYTES = 16 * procs.MIB
FD_TOLERANCE = 2
# Entries are purged a batch behind the last committed one: a sample may land before or
# after a purge, one batch of entries either way.
ENTRY_TOLERANCE = SOAK_SHARDS
DRAIN_TIMEOUT_S = 180.0
SPARK_RETENTION = {
    "spark.ui.retainedJobs": "50",
    "spark.ui.retainedStages": "50",
    "spark.ui.retainedTasks": "5000",
    "spark.sql.ui.retainedExecutions": "50",
    "spark.worker.ui.retainedExecutors": "10",
}
# The JVM's heap is pinned, as production JVMs are run (-Xms = -Xmx, every page touched at
# start): otherwise G1 commits more heap for an hour or so while what it holds stays flat,
# and the JVM's RSS grows with it. Pinned, the RSS is the rest of the JVM (threads, code,
# direct buffers), and the heap's own verdict comes from its live set after a full GC.
SOAK_HEAP = "1g"
SPARK_HEAP = {
    "spark.driver.memory": SOAK_HEAP,
    "spark.driver.extraJavaOptions": f"-Xms{SOAK_HEAP} -XX:+AlwaysPreTouch",
}
LIVE_HEAP = "jvm live heap after a full gc"


@dataclass
class Sample:
    """One look at every process and at the store, ``at`` seconds into the run."""

    at: float
    values: dict[str, float] = field(default_factory=dict)
    # The JVM's heap (jstat), once a minute: it tells heap growth from the rest of the
    # JVM's RSS, and is sawtooth by nature, so it is shown without a verdict.
    heap: dict[str, float] = field(default_factory=dict)


def _store_entries(root: str) -> int:
    count = 0
    for _, _, files in os.walk(root):
        count += sum(1 for name in files if name.endswith(".json") and not name.startswith("."))
    return count


# Python workers by the module they were started for.
ROLES = {
    "pyspark.worker": "executor python workers",
    "pyspark.sql.streaming.python_streaming_source_runner": "planner python worker",
}


def _role(pid: int) -> str:
    """A Python worker's job, from the module it was started for."""
    command = procs.cmdline(pid).split()
    module = command[-1] if command else "?"
    return ROLES.get(module, module.rsplit(".", 1)[-1])


def _sample(at: float, store_root: str, *, heap: bool) -> Sample:
    sample = Sample(at)
    values = sample.values
    values["driver python rss"] = float(procs.rss() or 0)
    values["driver python fds"] = float(procs.open_fds() or 0)
    values["driver python threads"] = float(procs.threads() or 0)
    spark = procs.spark_processes()
    if spark.jvm is not None:
        values["jvm rss"] = float(procs.rss(spark.jvm) or 0)
        values["jvm fds"] = float(procs.open_fds(spark.jvm) or 0)
        values["jvm threads"] = float(procs.threads(spark.jvm) or 0)
    roles: dict[str, list[int]] = {}
    for pid in spark.workers:
        roles.setdefault(_role(pid), []).append(pid)
    for role, pids in sorted(roles.items()):
        values[f"{role} count"] = float(len(pids))
        values[f"{role} rss"] = float(sum(procs.rss(p) or 0 for p in pids))
        values[f"{role} fds"] = float(sum(procs.open_fds(p) or 0 for p in pids))
        values[f"{role} threads"] = float(sum(procs.threads(p) or 0 for p in pids))
        for kind in ("sockets", "files", "pipes"):
            values[f"{role} {kind}"] = float(sum(procs.fds_by_kind(p).get(kind, 0) for p in pids))
    values["store entries"] = float(_store_entries(store_root))
    if heap and spark.jvm is not None:
        # After a full collection the old generation holds what is live: a figure that
        # must stay flat, unlike the heap's use between collections.
        collected = procs.jvm_full_gc(spark.jvm)
        found = procs.jvm_heap(spark.jvm) or {}
        sample.heap = {f"jvm {k}": float(v) for k, v in found.items()}
        if collected and "old gen used" in found:
            values[LIVE_HEAP] = float(found["old gen used"])
    return sample


def _show(name: str, value: float) -> str:
    if name.endswith(("rss", "used", "committed")) or name == LIVE_HEAP:
        return f"{value / procs.MIB:,.1f} MiB"
    return f"{value:,.0f}"


def _tolerance(name: str, base: float) -> float:
    if name.endswith("rss") or name == LIVE_HEAP:
        return max(RSS_TOLERANCE_SHARE * base, RSS_TOLERANCE_BYTES)
    if name.endswith(("fds", "threads", "sockets", "files", "pipes")):
        return max(FD_TOLERANCE, RSS_TOLERANCE_SHARE * base)
    if name == "store entries":
        return ENTRY_TOLERANCE
    return 0.0  # a worker more is growth too


def _median(samples: Sequence[Sample], name: str) -> float | None:
    values = [s.values[name] for s in samples if name in s.values]
    return statistics.median(values) if values else None


def _slope_per_hour(samples: Sequence[Sample], name: str) -> float:
    points = [(s.at, s.values[name]) for s in samples if name in s.values]
    if len(points) < 2:
        return 0.0
    mean_t = statistics.fmean(t for t, _ in points)
    mean_v = statistics.fmean(v for _, v in points)
    spread = sum((t - mean_t) ** 2 for t, _ in points)
    if spread == 0:
        return 0.0
    return sum((t - mean_t) * (v - mean_v) for t, v in points) / spread * 3600


def verdicts(samples: Sequence[Sample], warm_up_s: float, end_s: float) -> list[str]:
    """One line per figure: after warm-up, at the end, the growth, the trend, a verdict;
    every figure also goes into the bench's table. Returns the names of those that grew."""
    base = [s for s in samples if warm_up_s <= s.at < warm_up_s + WINDOW_S]
    last = [s for s in samples if s.at >= end_s - WINDOW_S]
    after = [s for s in samples if s.at >= warm_up_s]
    names = sorted({name for s in samples for name in s.values})
    grew: list[str] = []
    print(f"  after warm-up ({warm_up_s:.0f} s) vs the last {WINDOW_S:.0f} s, medians:")
    for name in names:
        first, end = _median(base, name), _median(last, name)
        if first is None or end is None:
            # Spark's short-lived workers (data source lookups, read planning) come and go;
            # the long-lived ones are counted in both windows.
            print(
                f"  {name:<40} short-lived ({'gone by the end' if end is None else 'at the end'})"
            )
            continue
        growth = end - first
        # Growth beyond the noise: the fixed tolerance, or the spread seen right after
        # warm-up (open sockets come and go; entries rise and fall with each purge).
        seen = [s.values[name] for s in base if name in s.values]
        ok = growth <= max(_tolerance(name, first), max(seen) - min(seen))
        if not ok:
            grew.append(name)
        slope = _slope_per_hour(after, name)
        print(
            f"  {name:<40} {_show(name, first):>12} -> {_show(name, end):>12}  "
            f"growth {_show(name, growth):>10} ({_show(name, slope)}/h)  "
            f"{'flat' if ok else 'GROWS'}"
        )
        figure(
            "soak",
            f"{name}, after warm-up -> end",
            f"{_show(name, first)} -> {_show(name, end)}",
            "no growth",
            ok,
        )
    heaps = [s for s in after if s.heap]
    if heaps:
        first_heap, last_heap = heaps[0], heaps[-1]
        for name, value in sorted(last_heap.heap.items()):
            before = first_heap.heap.get(name)
            if before is not None:
                print(
                    f"  {name:<40} {_show(name, before):>12} -> {_show(name, value):>12}  "
                    f"(jstat at {first_heap.at / 60:.0f} and {last_heap.at / 60:.0f} min; "
                    "sawtooth, no verdict)"
                )
    return grew


class Producer:
    """Puts ``PUT_RATE`` records/s, data = the record's index, until stopped."""

    def __init__(self, endpoint: str, stream: str, capacity: int, rate: int = PUT_RATE) -> None:
        self.client = kinesis(endpoint)
        self.rate = rate
        self.stream = stream
        self.capacity = capacity
        self.put = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="soak-producer", daemon=True)

    def _run(self) -> None:
        per_call = max(1, int(self.rate * PUT_EVERY_S))
        started = time.monotonic()
        calls = 0
        while not self.stop.is_set() and self.put + per_call <= self.capacity:
            first = self.put
            entries = [
                {"Data": str(i).encode(), "PartitionKey": f"key-{i % PUT_KEYS}"}
                for i in range(first, first + per_call)
            ]
            while entries:
                resp = self.client.put_records(StreamName=self.stream, Records=entries)
                entries = [
                    entry
                    for entry, result in zip(entries, resp["Records"], strict=True)
                    if "ErrorCode" in result
                ]
            self.put = first + per_call
            calls += 1
            self.stop.wait(max(0.0, started + calls * PUT_EVERY_S - time.monotonic()))


class Counter:
    """The sink: how many times each record index was read (255 at most)."""

    def __init__(self, capacity: int) -> None:
        self.seen = bytearray(capacity)
        self.rows = 0
        self.batches = 0
        self.lock = threading.Lock()

    def __call__(self, df: Any, batch_id: int) -> None:
        rows = df.select("data").collect()
        with self.lock:
            for row in rows:
                index = int(bytes(row["data"]))
                if self.seen[index] < 255:
                    self.seen[index] += 1
            self.rows += len(rows)
            self.batches += 1

    def check(self, put: int) -> tuple[int, int, int]:
        """(read once, missing, read more than once) among the first ``put`` indices, and
        the sink must have seen nothing beyond them."""
        with self.lock:
            head = bytes(self.seen[:put])
            beyond = sum(1 for v in self.seen[put:] if v)
        missing = head.count(0)
        once = head.count(1)
        return once, missing, put - once - missing + beyond


def _wait(condition: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)
    return True


def warm_up_seconds(total_s: float) -> float:
    return min(WARM_UP_MAX_S, max(WARM_UP_MIN_S, total_s * WARM_UP_SHARE))


@contextmanager
def _kinesis(consumer_mode: str, tmp: str) -> Iterator[str]:
    """The endpoint to read: moto, or for efo kinesis-local behind the EFO test double."""
    if consumer_mode != "efo":
        with moto_kinesis() as endpoint:
            yield endpoint
        return
    from tests.emulators import kinesis_local
    from tests.emulators.efo_server import EfoServer

    with kinesis_local.running(Path(tmp)) as upstream:
        server = EfoServer(upstream)
        try:
            yield server.start()
        finally:
            server.stop()


def run_soak(minutes: float, consumer_mode: str = "polling") -> None:
    total_s = minutes * 60
    warm_up_s = warm_up_seconds(total_s)
    if total_s < warm_up_s + 2 * WINDOW_S:
        raise SystemExit(
            f"--soak {minutes:g}: too short; it needs {warm_up_s + 2 * WINDOW_S:.0f} s at least "
            f"(a {warm_up_s:.0f} s warm-up, then two {WINDOW_S:.0f} s windows to compare)"
        )
    efo = consumer_mode == "efo"
    rate, shards = (EFO_PUT_RATE, EFO_SHARDS) if efo else (PUT_RATE, SOAK_SHARDS)
    print(
        f"(soak) {minutes:g} min: {shards} shards, {rate} records/s over {PUT_KEYS} keys, "
        f"{SOAK_TRIGGER} trigger, foreachBatch sink, file store, "
        f"{'kinesis-local + EFO double, consumerMode=efo' if efo else 'moto (subprocess)'}; "
        f"warm-up {warm_up_s:.0f} s, a sample every {SAMPLE_S:.0f} s",
        flush=True,
    )
    capacity = int(rate * (total_s + DRAIN_TIMEOUT_S) * 1.5) + 1000
    spark = spark_session({**SPARK_RETENTION, **SPARK_HEAP})
    with tempfile.TemporaryDirectory() as tmp, _kinesis(consumer_mode, tmp) as endpoint:
        client = kinesis(endpoint)
        stream = new_stream(client, shards)
        store_root = os.path.join(tmp, "store")
        counter = Counter(capacity)
        extra = {"consumerMode": "efo"} if efo else {}
        query = (
            source(spark, endpoint, stream, store_root, **extra)
            .writeStream.foreachBatch(counter)
            .option("checkpointLocation", os.path.join(tmp, "ckpt"))
            .trigger(processingTime=SOAK_TRIGGER)
            .start()
        )
        producer = Producer(endpoint, stream, capacity, rate)
        started = time.monotonic()
        producer.thread.start()
        samples: list[Sample] = []
        next_print = 0.0
        try:
            while (now := time.monotonic() - started) < total_s:
                if query.exception() is not None:
                    raise RuntimeError(f"the query failed: {query.exception()}")
                printing = now >= next_print
                sample = _sample(now, store_root, heap=printing)
                samples.append(sample)
                if printing:
                    next_print += PRINT_EVERY_S
                    _print_sample(sample, producer.put, counter)
                time.sleep(max(0.0, started + len(samples) * SAMPLE_S - time.monotonic()))
            producer.stop.set()
            producer.thread.join()
            put = producer.put
            drained = _wait(lambda: counter.rows >= put, DRAIN_TIMEOUT_S)
            if query.exception() is not None:
                raise RuntimeError(f"the query failed: {query.exception()}")
        finally:
            producer.stop.set()
            query.stop()
        print(
            f"  {counter.batches:,} non-empty batches, {counter.rows:,} rows for {put:,} records "
            f"put ({put / total_s:,.0f}/s){'' if drained else '; the drain timed out'}"
        )
        grew = verdicts(samples, warm_up_s, total_s)
        once, missing, extra = counter.check(put)
        exact = missing == 0 and extra == 0
        print(
            f"  records: {once:,} read exactly once, {missing:,} missing, {extra:,} read more "
            f"than once -> {'exactly once' if exact else 'NOT exactly once'}"
        )
        figure("soak", "records put, read exactly once", f"{once:,} of {put:,}", "all", exact)
        print(f"  verdict: {'nothing grew' if not grew else 'grew: ' + ', '.join(grew)}")
    spark.stop()


def _print_sample(sample: Sample, put: int, counter: Counter) -> None:
    figures = {**sample.values, **sample.heap}
    shown = ", ".join(f"{name} {_show(name, value)}" for name, value in figures.items())
    print(f"  [{sample.at / 60:5.1f} min] put {put:,}, read {counter.rows:,}; {shown}", flush=True)
