"""What every section of ``scripts/bench.py`` shares: timing, the final table of figures and
targets, data shaped like Kinesis', moto's server in a subprocess, and a local SparkSession."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import boto3
from aws_kinesis_agg.aggregator import RecordAggregator

from kinesis_source import limits
from tests.emulators.kinesis_rules import Rules

from . import procs

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# GetRecords returns at most 10,000 records per call (limits.GET_RECORDS_MAX_RECORDS).
PAGE_RECORDS = 10_000
RECORD_BYTES = 100
# The KPL's default AggregationMaxSize is 51,200 bytes.
KPL_AGGREGATE_BYTES = 51_200
KPL_USER_RECORDS = 40_000
FIRST_SEQUENCE = 49_590_338_271_490_256_608_559_692_538_361_571_095_921_575_989_136_588_898
FIRST_ARRIVAL_S = 1_795_000_000.0
REGION = "us-east-1"
E2E_SHARDS = 2  # local[2]: one task per core

# The in-memory Kinesis server (tests/emulators/kinesis_server.py) as the bench runs it: pages
# and the data contract as on AWS, no throttling, iterator expiry or empty stretches, so a
# figure measures the client; the sections count GetRecords calls per shard instead.
BENCH_SERVER_RULES = Rules.lenient()


@dataclass(frozen=True)
class Figure:
    """One row of the table printed at the end of a run (and copied into docs/performance.md)."""

    section: str
    what: str
    figure: str
    target: str
    met: bool | None  # None: no target


FIGURES: list[Figure] = []


def figure(section: str, what: str, value: str, target: str = "", met: bool | None = None) -> None:
    FIGURES.append(Figure(section, what, value, target, met))


def print_table() -> None:
    """The run's figures with their targets, as a Markdown table."""
    print()
    print("| | what | figure | target | met |")
    print("|---|---|---|---|---|")
    for f in FIGURES:
        met = "" if f.met is None else ("yes" if f.met else "**no**")
        print(f"| ({f.section}) | {f.what} | {f.figure} | {f.target} | {met} |")


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, float]:
    """(best, median) CPU seconds of ``fn`` over ``repeat`` runs after one warm-up.

    CPU time of this process, not wall time: "per core" is what a core can do, and other
    load on the machine then stretches the wall clock without skewing the ratios.
    """
    fn()
    times = []
    for _ in range(repeat):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return min(times), statistics.median(times)


def timed_together(fns: Sequence[Callable[[], Any]], repeat: int) -> list[tuple[float, float]]:
    """``timed`` for several functions whose runs take turns (one run of each, ``repeat``
    times, after one warm-up each): load from other work then weighs on all of them
    alike, so that their medians can be compared, not only their best runs."""
    for fn in fns:
        fn()
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeat):
        for fn, runs in zip(fns, times, strict=True):
            start = time.process_time()
            fn()
            runs.append(time.process_time() - start)
    return [(min(runs), statistics.median(runs)) for runs in times]


def report(label: str, items: int, best: float, median: float) -> float:
    rate = items / best
    print(f"  {label:<58} {rate:>12,.0f} /s  (median {items / median:,.0f} /s)")
    return rate


def get_records_body(rng: random.Random, blobs: list[bytes]) -> bytes:
    """A GetRecords response body shaped like Kinesis' own (ms-precision timestamps)."""
    records = [
        {
            "SequenceNumber": str(FIRST_SEQUENCE + 2**40 * i),
            "ApproximateArrivalTimestamp": round(FIRST_ARRIVAL_S + i * 0.0007, 3),
            "Data": base64.b64encode(blob).decode(),
            "PartitionKey": f"device-{rng.randrange(10_000):05d}",
        }
        for i, blob in enumerate(blobs)
    ]
    return json.dumps(
        {"Records": records, "NextShardIterator": "AAAA" * 64, "MillisBehindLatest": 0}
    ).encode()


def kpl_aggregates(rng: random.Random, user_records: int = KPL_USER_RECORDS) -> list[bytes]:
    """KPL aggregates of 100-byte user records with random keys, as the KPL packs them."""
    aggregator = RecordAggregator(max_size=KPL_AGGREGATE_BYTES)
    out = []
    for _ in range(user_records):
        full = aggregator.add_user_record(
            f"user-{rng.getrandbits(48):012x}", rng.randbytes(RECORD_BYTES)
        )
        if full is not None:
            out.append(bytes(full.get_contents()[2]))
    last = aggregator.clear_and_get()
    if last is not None:
        out.append(bytes(last.get_contents()[2]))
    return out


def fake_credentials() -> None:
    """The emulator checks none, botocore wants some to sign with. Set before the
    SparkSession starts: its Python workers inherit the JVM's environment."""
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")


@contextlib.contextmanager
def moto_kinesis() -> Iterator[str]:
    """moto's server in a subprocess on 127.0.0.1 (not in this process: its threads would
    take the GIL from the code being timed); its endpoint URL."""
    fake_credentials()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        client = kinesis(endpoint)
        deadline = time.monotonic() + 60
        while True:
            try:
                client.list_streams()
                break
            except Exception:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.2)
        yield endpoint
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def kinesis(endpoint: str) -> Any:
    return boto3.client("kinesis", region_name=REGION, endpoint_url=endpoint)


def new_stream(client: Any, shards: int) -> str:
    name = f"bench-{uuid.uuid4().hex[:8]}"
    client.create_stream(StreamName=name, ShardCount=shards)
    while True:
        desc = client.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
        if desc["StreamStatus"] == "ACTIVE":
            return name
        time.sleep(0.05)


def put_all(client: Any, stream: str, blobs: list[bytes], rng: random.Random) -> None:
    """PutRecords in calls of at most 500 records and 5 MiB (limits.PUT_RECORDS_MAX_*)."""
    entries: list[dict[str, Any]] = []
    size = 0

    def flush() -> None:
        resp = client.put_records(StreamName=stream, Records=entries)
        assert not resp.get("FailedRecordCount"), resp
        entries.clear()

    for blob in blobs:
        key = f"k-{rng.getrandbits(32):08x}"
        if len(entries) == limits.PUT_RECORDS_MAX_RECORDS or (
            size + len(blob) + len(key) > limits.PUT_RECORDS_MAX_BYTES
        ):
            flush()
            size = 0
        entries.append({"Data": blob, "PartitionKey": key})
        size += len(blob) + len(key)
    if entries:
        flush()


def descendants_cpu_seconds(exclude: Collection[int] = ()) -> float | None:
    """CPU seconds (user and system, with their reaped children's) of every process below
    this one, except the subtrees of ``exclude``: Spark's JVM and Python workers. None where
    there is no /proc. On a shared machine this moves less than wall time does."""
    if not os.path.isdir("/proc"):
        return None
    children: dict[int, list[tuple[int, int]]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        fields = procs.stat_fields(entry)
        if fields is None:
            continue
        ticks = procs.ticks(fields, reaped_children=True)
        children.setdefault(int(fields[1]), []).append((int(entry), ticks))
    total, todo = 0, [os.getpid()]
    while todo:
        for pid, ticks in children.get(todo.pop(), []):
            if pid not in exclude:
                total += ticks
                todo.append(pid)
    return total / os.sysconf("SC_CLK_TCK")


def spark_session(conf: dict[str, Any] | None = None) -> Any:
    """A local[2] SparkSession for the bench; ``conf`` adds or overrides settings."""
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    # Spark's Python workers import the package too: the same tree as this process.
    path = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = REPO_ROOT if not path else os.pathsep.join([REPO_ROOT, path])
    fake_credentials()
    from pyspark.sql import SparkSession

    spark = (
        SparkSession.builder.master("local[2]")
        .appName("kinesis_source-bench")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.python.worker.reuse", "true")
        .config(map=dict(conf or {}))
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    from kinesis_source import register

    register(spark)
    return spark


def source_options(endpoint: str, stream: str, store: str, **extra: str) -> dict[str, str]:
    """The bench's source options: from the oldest record, no pause between calls."""
    return {
        "streamName": stream,
        "region": REGION,
        "endpointUrl": endpoint,
        "checkpointStore": store,
        "initialPosition": "trim_horizon",
        "fetchIntervalMs": "0",
        **extra,
    }


def source(spark: Any, endpoint: str, stream: str, store: str, **extra: str) -> Any:
    reader = spark.readStream.format("kinesis")
    for key, value in source_options(endpoint, stream, store, **extra).items():
        reader = reader.option(key, value)
    return reader.load()


def available_now(spark: Any, df_of: Callable[[str], Any]) -> tuple[float, int, int]:
    """Wall seconds from start() to termination of an AvailableNow query of ``df_of(tmp)``
    to the noop sink, its rows, and its micro-batches that read rows."""
    with tempfile.TemporaryDirectory() as tmp:
        df = df_of(tmp)
        start = time.perf_counter()
        query = (
            df.writeStream.format("noop")
            .option("checkpointLocation", os.path.join(tmp, "ckpt"))
            .trigger(availableNow=True)
            .start()
        )
        query.awaitTermination()
        elapsed = time.perf_counter() - start
        progress = [p for p in query.recentProgress if p["numInputRows"]]
    return elapsed, sum(p["numInputRows"] for p in progress), len(progress)


def batch_read(spark: Any, endpoint: str, stream: str) -> tuple[float, int, int]:
    """Wall seconds of ``count()`` on a batch read of ``stream`` (planning included: Spark
    plans it at the first action), its rows, and 1 (one job)."""
    options = source_options(endpoint, stream, store="")
    del options["checkpointStore"]  # a batch read records nothing
    df = spark.read.format("kinesis").options(**options).load()
    start = time.perf_counter()
    rows = df.count()
    return time.perf_counter() - start, rows, 1


def spark_available_now(spark: Any, endpoint: str, stream: str) -> tuple[float, int]:
    """Wall seconds from start() to termination of an AvailableNow query, and its rows."""
    elapsed, rows, _ = available_now(
        spark, lambda tmp: source(spark, endpoint, stream, os.path.join(tmp, "store"))
    )
    return elapsed, rows
