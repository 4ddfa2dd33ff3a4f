"""Benchmarks of the source, printed in one run on one machine (issue 4, part 7).

    python scripts/bench.py            # every section
    python scripts/bench.py --only a,b # some sections
    python scripts/bench.py --repeat 9

Sections:
  (a) decode throughput per core, plain 100-byte records: our fast decoder (raw JSON body
      to an Arrow batch) vs botocore's parser alone (body to dicts). Target >= 6x.
  (b) KPL user records per core: ``deaggregation.deaggregate_into`` (aggregate bytes to
      Arrow columns) vs aws_kinesis_agg's deaggregator. Target >= 2x.
  (c) end to end through Spark (local[2], noop sink, Trigger.AvailableNow) vs a plain
      single-process boto3 GetRecords loop over the same records on the same local
      emulator, in wall-clock seconds: plain 100-byte records, and KPL aggregates (the
      loop then deaggregates with aws_kinesis_agg). Target >= 1.0x.
  (d) planning time of one trigger (``latestOffset`` on the driver: store look-up and the
      parallel GetRecords Limit=1 probes) on a 200-shard stream with no new data.
      Target < 1 s.
  (e) put-to-row latency with a 1 s processingTime trigger: a producer puts a record
      every 50 ms holding its put time, the foreachBatch sink notes when each row
      arrives. Target p50 < 2 s.
  (f) the sink: user records/s written by ``df.write.format("kinesis")`` (local[2], a
      cached DataFrame) vs a single-process boto3 PutRecords loop on the same emulator, in
      wall-clock seconds: aggregation off (the loop puts 500 records a call) and on (the
      loop aggregates with aws_kinesis_agg's RecordAggregator), and the cost of
      ``preserveOrder=true`` against the default, with 1,000 and with 10 distinct keys.

(a) and (b) run in this one process on one core; each figure is the best of ``--repeat``
runs over the same data, timed in process CPU seconds (the median is printed too), after
one warm-up run. (c), (d), (e) and (f) start moto's Kinesis server in a subprocess on
127.0.0.1 and a local[2] SparkSession, and stop both when done.
"""

from __future__ import annotations

import argparse
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
import threading
import time
import uuid
from binascii import a2b_base64
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import botocore.session
import pyarrow as pa
from aws_kinesis_agg.aggregator import RecordAggregator
from aws_kinesis_agg.deaggregator import deaggregate_records, iter_deaggregate_records
from botocore.parsers import create_parser

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from kinesis_source import limits
from kinesis_source.options import parse_options
from kinesis_source.records.deaggregation import PROTOBUF_BACKEND, deaggregate_into
from kinesis_source.records.fast_decode import decode_records
from kinesis_source.records.records_page import page_from_response

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# GetRecords returns at most 10,000 records per call (limits.GET_RECORDS_MAX_RECORDS).
PAGE_RECORDS = 10_000
RECORD_BYTES = 100
# The KPL's default AggregationMaxSize is 51,200 bytes.
KPL_AGGREGATE_BYTES = 51_200
KPL_USER_RECORDS = 40_000
FIRST_SEQUENCE = 49_590_338_271_490_256_608_559_692_538_361_571_095_921_575_989_136_588_898
FIRST_ARRIVAL_S = 1_795_000_000.0


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


def section_a(repeat: int) -> None:
    print(f"(a) GetRecords decode, {PAGE_RECORDS:,} plain {RECORD_BYTES}-byte records, per core")
    rng = random.Random(1)
    body = get_records_body(rng, [rng.randbytes(RECORD_BYTES) for _ in range(PAGE_RECORDS)])
    model = botocore.session.get_session().get_service_model("kinesis")
    shape = model.operation_model("GetRecords").output_shape
    parser = create_parser("json")

    def botocore_parse() -> Any:
        return parser.parse({"body": body, "headers": {}, "status_code": 200}, shape)

    def reference_to_arrow() -> pa.RecordBatch:
        page = page_from_response(botocore_parse(), deaggregate_kpl=True)
        return page.to_batch(0, page.unit_count, "stream", "shardId-000000000000")

    def fast_to_arrow() -> pa.RecordBatch:
        page = decode_records(body, deaggregate_kpl=True)
        return page.to_batch(0, page.unit_count, "stream", "shardId-000000000000")

    assert fast_to_arrow().equals(reference_to_arrow())
    theirs = report("botocore parser (body -> dicts)", PAGE_RECORDS, *timed(botocore_parse, repeat))
    reference = report(
        "reference path: botocore + page + Arrow (decoder=boto3)",
        PAGE_RECORDS,
        *timed(reference_to_arrow, repeat),
    )
    ours = report(
        "fast path: orjson + base64 -> Arrow batch (decoder=fast)",
        PAGE_RECORDS,
        *timed(fast_to_arrow, repeat),
    )
    print(f"  ratio fast / botocore parser: {ours / theirs:.1f}x (target >= 6x)")
    print(f"  ratio fast / reference path:  {ours / reference:.1f}x")


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


def section_b(repeat: int) -> None:
    print(
        f"(b) KPL deaggregation, {KPL_USER_RECORDS:,} user records of {RECORD_BYTES} bytes "
        f"in {KPL_AGGREGATE_BYTES:,}-byte aggregates, per core (protobuf: {PROTOBUF_BACKEND})"
    )
    aggregates = kpl_aggregates(random.Random(2))
    boto3_shaped = [
        {
            "SequenceNumber": str(FIRST_SEQUENCE + i),
            "ApproximateArrivalTimestamp": FIRST_ARRIVAL_S,
            "Data": blob,
            "PartitionKey": "aggregate",
        }
        for i, blob in enumerate(aggregates)
    ]
    lambda_shaped = [
        {
            "kinesis": {
                "kinesisSchemaVersion": "1.0",
                "sequenceNumber": r["SequenceNumber"],
                "partitionKey": r["PartitionKey"],
                "approximateArrivalTimestamp": r["ApproximateArrivalTimestamp"],
                "data": base64.b64encode(r["Data"]).decode(),
            }
        }
        for r in boto3_shaped
    ]
    encoded = [r["kinesis"]["data"] for r in lambda_shaped]

    def aws_iterator() -> list[Any]:
        return list(iter_deaggregate_records(boto3_shaped, data_format="Boto3"))

    def aws_lambda() -> list[Any]:
        return deaggregate_records(lambda_shaped)

    def ours(blobs: list[bytes]) -> list[pa.Array]:
        data: list[bytes] = []
        keys: list[str] = []
        hash_keys: list[str | None] = []
        for blob in blobs:
            deaggregate_into(blob, data, keys, hash_keys)
        return [pa.array(data, pa.binary()), pa.array(keys), pa.array(hash_keys, pa.string())]

    def ours_bytes() -> list[pa.Array]:
        return ours(aggregates)

    def ours_base64() -> list[pa.Array]:
        return ours([a2b_base64(text) for text in encoded])

    assert len(aws_iterator()) == len(ours_bytes()[0]) == KPL_USER_RECORDS
    n = KPL_USER_RECORDS
    it_rate = report(
        "aws_kinesis_agg iter_deaggregate_records (bytes)", n, *timed(aws_iterator, repeat)
    )
    lam_rate = report("aws_kinesis_agg deaggregate_records (base64)", n, *timed(aws_lambda, repeat))
    our_rate = report("ours: deaggregate_into -> Arrow (bytes)", n, *timed(ours_bytes, repeat))
    our_b64 = report("ours: base64 + deaggregate_into -> Arrow", n, *timed(ours_base64, repeat))
    print(f"  ratio ours / aws iterator (bytes in):  {our_rate / it_rate:.1f}x (target >= 2x)")
    print(f"  ratio ours / aws deaggregate_records (base64 in): {our_b64 / lam_rate:.1f}x")


# --- (c) (d) (e): end to end, against a local emulator ---------------------------------

REGION = "us-east-1"
E2E_SHARDS = 2  # local[2]: one task per core
E2E_PLAIN_RECORDS = 200_000
E2E_KPL_USER_RECORDS = 400_000
PLANNING_SHARDS = 200
PLANNING_TRIGGERS = 10
LATENCY_PUT_INTERVAL_S = 0.05
LATENCY_RUN_S = 20.0
LATENCY_TRIGGER = "1 second"


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


def boto3_loop(client: Any, stream: str, *, deaggregate: bool) -> int:
    """The plain consumer: each shard from TRIM_HORIZON until caught up, one process."""
    rows = 0
    for shard in client.list_shards(StreamName=stream)["Shards"]:
        iterator = client.get_shard_iterator(
            StreamName=stream, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while iterator:
            resp = client.get_records(ShardIterator=iterator, Limit=PAGE_RECORDS)
            records = resp["Records"]
            if deaggregate:
                rows += sum(1 for _ in iter_deaggregate_records(records, data_format="Boto3"))
            else:
                rows += sum(1 for r in records if r["Data"] is not None)
            iterator = resp.get("NextShardIterator")
            if resp.get("MillisBehindLatest") == 0 and len(records) < PAGE_RECORDS:
                break
    return rows


def spark_session() -> Any:
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
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    from kinesis_source import register

    register(spark)
    return spark


def source(spark: Any, endpoint: str, stream: str, store: str, **extra: str) -> Any:
    reader = spark.readStream.format("kinesis")
    options = {
        "streamName": stream,
        "region": REGION,
        "endpointUrl": endpoint,
        "checkpointStore": store,
        "initialPosition": "trim_horizon",
        "fetchIntervalMs": "0",
        **extra,
    }
    for key, value in options.items():
        reader = reader.option(key, value)
    return reader.load()


def spark_available_now(spark: Any, endpoint: str, stream: str) -> tuple[float, int]:
    """Wall seconds from start() to termination of an AvailableNow query, and its rows."""
    with tempfile.TemporaryDirectory() as tmp:
        df = source(spark, endpoint, stream, os.path.join(tmp, "store"))
        start = time.perf_counter()
        query = (
            df.writeStream.format("noop")
            .option("checkpointLocation", os.path.join(tmp, "ckpt"))
            .trigger(availableNow=True)
            .start()
        )
        query.awaitTermination()
        elapsed = time.perf_counter() - start
        rows = sum(p["numInputRows"] for p in query.recentProgress)
    return elapsed, rows


def section_c(repeat: int) -> None:
    runs = max(1, min(repeat, 3))
    print(
        f"(c) end to end, {E2E_SHARDS} shards on moto (subprocess, 127.0.0.1): Spark local[2] "
        f"noop sink, AvailableNow vs a boto3 GetRecords loop; best of {runs} wall-clock runs"
    )
    rng = random.Random(3)
    spark = spark_session()
    with moto_kinesis() as endpoint:
        client = kinesis(endpoint)
        cases = [
            ("plain", f"{E2E_PLAIN_RECORDS:,} plain {RECORD_BYTES}-byte records", False),
            ("kpl", f"{E2E_KPL_USER_RECORDS:,} KPL user records of {RECORD_BYTES} bytes", True),
        ]
        for kind, label, aggregated in cases:
            stream = new_stream(client, E2E_SHARDS)
            if aggregated:
                blobs = kpl_aggregates(rng, E2E_KPL_USER_RECORDS)
                rows = E2E_KPL_USER_RECORDS
            else:
                blobs = [rng.randbytes(RECORD_BYTES) for _ in range(E2E_PLAIN_RECORDS)]
                rows = E2E_PLAIN_RECORDS
            put_all(client, stream, blobs, rng)
            print(f"  {label} ({len(blobs):,} Kinesis records)")
            loop_times = []
            for _ in range(runs):
                start = time.perf_counter()
                got = boto3_loop(client, stream, deaggregate=aggregated)
                loop_times.append(time.perf_counter() - start)
                assert got == rows, (got, rows)
            spark_available_now(spark, endpoint, stream)  # warm-up: JVM, Python workers
            spark_times = []
            for _ in range(runs):
                elapsed, got = spark_available_now(spark, endpoint, stream)
                spark_times.append(elapsed)
                assert got == rows, (got, rows)
            loop_s, spark_s = min(loop_times), min(spark_times)
            print(f"    boto3 loop, one process     {loop_s:6.2f} s {rows / loop_s:>10,.0f} rows/s")
            print(
                f"    Spark, query start to stop  {spark_s:6.2f} s {rows / spark_s:>10,.0f} rows/s"
            )
            ratio = loop_s / spark_s
            # The target is for plain records; the KPL line shows where the query's
            # fixed start and stop cost dominates (the loop finishes in about 2 s).
            target = "target >= 1.0x" if kind == "plain" else "no target"
            print(f"    ratio Spark / boto3 loop ({kind}): {ratio:.2f}x ({target})")
    spark.stop()


def section_d(repeat: int) -> None:
    from pyspark.sql.streaming.datasource import ReadAllAvailable

    from kinesis_source.source.stream_reader import KinesisStreamReader

    print(
        f"(d) planning one trigger with no new data, {PLANNING_SHARDS} shards on moto "
        f"(subprocess, 127.0.0.1), {PLANNING_TRIGGERS} triggers after one warm-up"
    )
    with moto_kinesis() as endpoint, tempfile.TemporaryDirectory() as tmp:
        client = kinesis(endpoint)
        stream = new_stream(client, PLANNING_SHARDS)
        opts = parse_options(
            {
                "streamName": stream,
                "region": REGION,
                "endpointUrl": endpoint,
                "checkpointStore": os.path.join(tmp, "store"),
                "initialPosition": "trim_horizon",
                # Probe every shard on every trigger: the full cost, not the paced one.
                "fetchIntervalMs": "0",
            }
        )
        reader = KinesisStreamReader(opts)
        start = reader.initialOffset()
        assert reader.latestOffset(start, ReadAllAvailable()) is start
        times = []
        for _ in range(PLANNING_TRIGGERS):
            begin = time.perf_counter()
            assert reader.latestOffset(start, ReadAllAvailable()) is start
            times.append(time.perf_counter() - begin)
    times.sort()
    print(f"  latestOffset, median {statistics.median(times):.3f} s, max {times[-1]:.3f} s")
    print(f"  planning per trigger: {statistics.median(times):.3f} s (target < 1 s)")


def section_e(repeat: int) -> None:
    print(
        f"(e) put-to-row latency, {LATENCY_TRIGGER} trigger, a put every "
        f"{LATENCY_PUT_INTERVAL_S * 1000:.0f} ms for {LATENCY_RUN_S:.0f} s, moto (subprocess)"
    )
    spark = spark_session()
    latencies: list[float] = []
    with moto_kinesis() as endpoint, tempfile.TemporaryDirectory() as tmp:
        client = kinesis(endpoint)
        stream = new_stream(client, E2E_SHARDS)

        warmed_up = threading.Event()

        def sink(df: Any, batch_id: int) -> None:
            rows = df.select("data").collect()
            now = time.time()
            for row in rows:
                text = bytes(row["data"]).decode()
                if text == "warm-up":
                    warmed_up.set()
                else:
                    latencies.append(now - float(text))

        query = (
            source(spark, endpoint, stream, os.path.join(tmp, "store"))
            .writeStream.foreachBatch(sink)
            .option("checkpointLocation", os.path.join(tmp, "ckpt"))
            .trigger(processingTime=LATENCY_TRIGGER)
            .start()
        )
        stop = threading.Event()

        def produce() -> None:
            producer = kinesis(endpoint)
            i = 0
            while not stop.is_set():
                producer.put_record(
                    StreamName=stream, PartitionKey=f"k{i}", Data=f"{time.time():.6f}".encode()
                )
                i += 1
                stop.wait(LATENCY_PUT_INTERVAL_S)

        # A first batch starts the executors' Python workers: not part of the latency.
        client.put_record(StreamName=stream, PartitionKey="w", Data=b"warm-up")
        if not warmed_up.wait(120):
            raise RuntimeError("the warm-up record was not read within 120 s")
        thread = threading.Thread(target=produce, daemon=True)
        thread.start()
        time.sleep(LATENCY_RUN_S)
        stop.set()
        thread.join()
        time.sleep(3)  # the last puts' rows
        query.stop()
    spark.stop()
    latencies.sort()
    p50 = latencies[len(latencies) // 2]
    p95 = latencies[int(len(latencies) * 0.95)]
    print(f"  {len(latencies):,} rows: p50 {p50:.2f} s, p95 {p95:.2f} s, max {latencies[-1]:.2f} s")
    print(f"  latency p50 {p50:.2f} s (target < 2 s), p95 {p95:.2f} s")


SINK_RECORDS = 40_000
SINK_KEYS = 1_000
# Aggregation puts a few records where plain puts 40,000: more user records, so that the
# figure is not only a Spark job's fixed start cost.
SINK_AGG_RECORDS = 400_000
# preserveOrder with few keys: a call holds at most one record per key.
SINK_FEW_KEYS = 10
SINK_FEW_KEYS_RECORDS = 4_000


def boto3_put_loop(
    client: Any, stream: str, rows: list[tuple[bytes, str]], aggregate: bool
) -> None:
    """The plain producer: PutRecords of 500 records (or of aws_kinesis_agg aggregates)."""
    entries: list[dict[str, Any]] = []
    size = 0

    def flush() -> None:
        nonlocal size
        if entries:
            resp = client.put_records(StreamName=stream, Records=entries)
            assert not resp.get("FailedRecordCount"), resp
            entries.clear()
            size = 0

    def add(data: bytes, key: str, hash_key: str | None = None) -> None:
        nonlocal size
        if size + len(data) + len(key) > limits.PUT_RECORDS_MAX_BYTES:
            flush()
        entry: dict[str, Any] = {"Data": data, "PartitionKey": key}
        if hash_key is not None:
            entry["ExplicitHashKey"] = hash_key
        entries.append(entry)
        size += len(data) + len(key)
        if len(entries) == limits.PUT_RECORDS_MAX_RECORDS:
            flush()

    if not aggregate:
        for data, key in rows:
            add(data, key)
    else:
        aggregator = RecordAggregator()
        for data, key in rows:
            full = aggregator.add_user_record(key, data)
            if full is not None:
                agg_key, agg_hash_key, agg_data = full.get_contents()
                add(agg_data, agg_key, agg_hash_key)
        last = aggregator.clear_and_get()
        if last is not None:
            agg_key, agg_hash_key, agg_data = last.get_contents()
            add(agg_data, agg_key, agg_hash_key)
    flush()


def section_f(repeat: int) -> None:
    runs = max(1, min(repeat, 2))
    print(
        f"(f) sink, records of {RECORD_BYTES} bytes, "
        f"{E2E_SHARDS} shards on moto (subprocess, 127.0.0.1): Spark local[2] batch write vs "
        f"a boto3 PutRecords loop; best of {runs} wall-clock runs"
    )
    rng = random.Random(6)

    def make_rows(n: int, keys: int) -> list[tuple[bytes, str]]:
        return [(rng.randbytes(RECORD_BYTES), f"key-{i % keys}") for i in range(n)]

    spark = spark_session()
    datasets = {
        "plain": make_rows(SINK_RECORDS, SINK_KEYS),
        "aggregated": make_rows(SINK_AGG_RECORDS, SINK_KEYS),
        "few keys": make_rows(SINK_FEW_KEYS_RECORDS, SINK_FEW_KEYS),
    }
    frames = {
        name: spark.createDataFrame(rows, "data binary, partitionKey string").repartition(2).cache()
        for name, rows in datasets.items()
    }
    for name, frame in frames.items():
        assert frame.count() == len(datasets[name])
    with moto_kinesis() as endpoint:
        client = kinesis(endpoint)

        # Each timed write goes to a fresh stream: the emulator's cost grows with a stream.
        def spark_write(name: str, **extra: str) -> float:
            options = {
                "streamName": new_stream(client, E2E_SHARDS),
                "region": REGION,
                "endpointUrl": endpoint,
                **extra,
            }
            start = time.perf_counter()
            frames[name].write.format("kinesis").options(**options).mode("append").save()
            return time.perf_counter() - start

        def best(fn: Callable[[], float]) -> float:
            return min(fn() for _ in range(runs))

        def loop(name: str) -> float:
            stream = new_stream(client, E2E_SHARDS)
            start = time.perf_counter()
            boto3_put_loop(client, stream, datasets[name], name == "aggregated")
            return time.perf_counter() - start

        # Warm-up: JVM, Python workers, clients.
        spark.createDataFrame(
            datasets["plain"][:1000], "data binary, partitionKey string"
        ).write.format("kinesis").options(
            streamName=new_stream(client, E2E_SHARDS), region=REGION, endpointUrl=endpoint
        ).mode("append").save()
        for name in ("plain", "aggregated"):
            n = len(datasets[name])
            loop_s = best(lambda: loop(name))  # noqa: B023
            spark_s = best(lambda: spark_write(name, aggregate=str(name == "aggregated").lower()))  # noqa: B023
            print(f"  {name}, {n:,} records")
            print(f"    boto3 loop, one process   {loop_s:6.2f} s {n / loop_s:>10,.0f} records/s")
            print(f"    Spark batch write         {spark_s:6.2f} s {n / spark_s:>10,.0f} records/s")
            print(f"    ratio Spark / boto3 loop ({name}): {loop_s / spark_s:.2f}x")
        for name, keys in (("plain", SINK_KEYS), ("few keys", SINK_FEW_KEYS)):
            n = len(datasets[name])
            default_s = best(lambda: spark_write(name))  # noqa: B023
            ordered_s = best(lambda: spark_write(name, preserveOrder="true"))  # noqa: B023
            print(
                f"  preserveOrder, {n:,} records over {keys:,} keys: default {default_s:.2f} s, "
                f"preserveOrder=true {ordered_s:.2f} s; throughput ratio "
                f"{default_s / ordered_s:.2f}x"
            )
    for frame in frames.values():
        frame.unpersist()
    spark.stop()


# Sections by letter, in print order; ``--only`` picks them up.
SECTIONS: dict[str, Callable[[int], None]] = {
    "a": section_a,
    "b": section_b,
    "c": section_c,
    "d": section_d,
    "e": section_e,
    "f": section_f,
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(SECTIONS), help="sections, e.g. a,b")
    parser.add_argument("--repeat", type=int, default=7, help="timed runs per figure")
    args = parser.parse_args(argv)
    chosen = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = [s for s in chosen if s not in SECTIONS]
    if unknown:
        parser.error(f"unknown sections {unknown}; valid: {', '.join(SECTIONS)}")
    print(f"python {sys.version.split()[0]}, pid {os.getpid()}, one core per figure")
    for name in chosen:
        SECTIONS[name](args.repeat)


if __name__ == "__main__":
    main()
