"""The source end to end: real Spark, moto's Kinesis over HTTP on 127.0.0.1, and the
Kinesis test server (tests/emulators/kinesis_server.py, AWS' rules) for the start
positions and the scenarios that take the ``emulator`` fixture."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from pyspark.errors import AnalysisException, StreamingQueryException
from pyspark.sql.types import (
    BinaryType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from tests.conftest import Emulator
from tests.emulators.kinesis_server import KinesisServer
from tests.helpers import (
    REGION,
    BatchCollector,
    FailOnceCollector,
    aggregate,
    assert_shard_order,
    create_stream,
    expected_keys,
    put,
    record_keys,
    run_until_idle,
    source_options,
    start_file_query,
    start_query,
)

pytestmark = pytest.mark.lowest


def load(spark: Any, options: dict[str, str]) -> Any:
    reader = spark.readStream.format("kinesis")
    for key, value in options.items():
        reader = reader.option(key, value)
    return reader.load()


def test_schema_is_exactly_the_documented_one(
    spark: Any, kinesis: Any, moto_endpoint: str, stream_name: str, tmp_path: Path
) -> None:
    create_stream(kinesis, stream_name, 1)
    df = load(spark, source_options(moto_endpoint, stream_name, str(tmp_path)))
    assert df.schema == StructType(
        [
            StructField("data", BinaryType()),
            StructField("streamName", StringType()),
            StructField("shardId", StringType()),
            StructField("partitionKey", StringType()),
            StructField("sequenceNumber", StringType()),
            StructField("subSequenceNumber", LongType()),
            StructField("explicitHashKey", StringType()),
            StructField("approximateArrivalTimestamp", TimestampType()),
        ]
    )


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"streamName": ""}, "option 'streamName': is required"),
        ({"initialPosition": "newest"}, "trim_horizon, earliest, latest, at_timestamp"),
        ({"maxRecordsPerShrad": "5"}, "unknown option; the known options are: streamName"),
        (
            {"initialPosition": "at_timestamp", "initialTimestamp": "2026-13-01"},
            "option 'initialTimestamp': got '2026-13-01'",
        ),
    ],
)
def test_bad_options_fail_at_load_naming_the_option(
    spark: Any, moto_endpoint: str, tmp_path: Path, change: dict[str, str], expected: str
) -> None:
    options = {**source_options(moto_endpoint, "any", str(tmp_path)), **change}
    with pytest.raises(AnalysisException) as err:
        load(spark, options)
    assert expected in str(err.value)


def test_trim_horizon_reads_every_record_once_in_shard_order(
    spark: Any, emulator: Emulator, stream_name: str, tmp_path: Path
) -> None:
    kinesis, moto_endpoint = emulator.client, emulator.endpoint
    create_stream(kinesis, stream_name, 3)
    puts = put(kinesis, stream_name, ((f"key-{i % 17}", f"rec-{i}".encode()) for i in range(90)))
    assert len({p["shardId"] for p in puts}) == 3
    sink = BatchCollector()
    options = source_options(moto_endpoint, stream_name, str(tmp_path / "store"))
    run_until_idle(start_query(spark, options, str(tmp_path / "ckpt"), sink))
    rows = sink.rows()
    assert record_keys(rows) == expected_keys(puts)
    assert_shard_order(rows)
    assert {r["streamName"] for r in rows} == {stream_name}
    by_data = {p["data"]: p["partitionKey"] for p in puts}
    assert all(by_data[bytes(r["data"])] == r["partitionKey"] for r in rows)


def test_small_per_shard_caps_spread_records_over_batches_without_loss(
    spark: Any, kinesis: Any, moto_endpoint: str, stream_name: str, tmp_path: Path
) -> None:
    create_stream(kinesis, stream_name, 2)
    puts = put(kinesis, stream_name, ((f"k{i}", f"r{i}".encode()) for i in range(40)))
    sink = BatchCollector()
    options = source_options(
        moto_endpoint,
        stream_name,
        str(tmp_path / "store"),
        maxRecordsPerShard="6",
        getRecordsLimit="4",
    )
    run_until_idle(start_query(spark, options, str(tmp_path / "ckpt"), sink))
    assert record_keys(sink.rows()) == expected_keys(puts)
    assert_shard_order(sink.rows())
    assert all(len(rows) <= 12 for rows in sink.batches.values())
    assert len([b for b in sink.batches.values() if b]) >= 40 // 12


def test_latest_skips_what_was_there_before_the_start(
    spark: Any,
    kinesis_server_client: Any,
    kinesis_server: KinesisServer,
    stream_name: str,
    tmp_path: Path,
) -> None:
    # On the Kinesis test server (kinesis-local runs latest in test_reshard.py): LATEST is a
    # timestamp whose reads may meet empty pages behind the tip, and reads are throttled.
    kinesis, endpoint = kinesis_server_client, kinesis_server.endpoint
    create_stream(kinesis, stream_name, 2)
    put(kinesis, stream_name, ((f"k{i}", b"before") for i in range(10)))
    sink = BatchCollector()
    options = source_options(
        endpoint, stream_name, str(tmp_path / "store"), initialPosition="latest"
    )
    query = start_query(spark, options, str(tmp_path / "ckpt"), sink)
    try:
        query.processAllAvailable()  # the initial offset is resolved and logged by now
        after = put(kinesis, stream_name, ((f"k{i}", f"after-{i}".encode()) for i in range(10)))
        query.processAllAvailable()
    finally:
        query.stop()
    assert record_keys(sink.rows()) == expected_keys(after)


def test_at_timestamp_starts_at_the_timestamp(
    spark: Any,
    kinesis_server_client: Any,
    kinesis_server: KinesisServer,
    stream_name: str,
    tmp_path: Path,
) -> None:
    # moto ignores AT_TIMESTAMP (it starts at the shard's first record); the Kinesis test
    # server does not (kinesis-local runs at_timestamp in test_reshard.py).
    kinesis, endpoint = kinesis_server_client, kinesis_server.endpoint
    create_stream(kinesis, stream_name, 2)
    put(kinesis, stream_name, ((f"k{i}", b"early") for i in range(10)))
    time.sleep(0.05)  # arrival timestamps have millisecond resolution: separate the two sets
    start = datetime.now(timezone.utc)
    time.sleep(0.05)
    late = put(kinesis, stream_name, ((f"k{i}", f"late-{i}".encode()) for i in range(10)))
    sink = BatchCollector()
    options = source_options(
        endpoint,
        stream_name,
        str(tmp_path / "store"),
        initialPosition="AT_TIMESTAMP",
        initialTimestamp=start.isoformat(),
    )
    run_until_idle(start_query(spark, options, str(tmp_path / "ckpt"), sink))
    assert record_keys(sink.rows()) == expected_keys(late)
    assert all(r["approximateArrivalTimestamp"] is not None for r in sink.rows())


def test_kpl_aggregates_mixed_with_plain_records(
    spark: Any, kinesis: Any, moto_endpoint: str, stream_name: str, tmp_path: Path
) -> None:
    create_stream(kinesis, stream_name, 1)
    agg1 = [(f"user-{i}", f"a1-{i}".encode(), None) for i in range(5)]
    agg2 = [("ehk-user", b"x", "123456789"), ("plain-user", b"y", None)]
    corrupt = bytearray(aggregate([("c", b"c", None)]))
    corrupt[-1] ^= 0xFF
    written = put(
        kinesis,
        stream_name,
        [
            ("outer-1", aggregate(agg1)),
            ("p1", b"plain one"),
            ("outer-2", aggregate(agg2)),
            ("p2", bytes(corrupt)),
        ],
    )
    sink = BatchCollector()
    options = source_options(moto_endpoint, stream_name, str(tmp_path / "store"))
    run_until_idle(start_query(spark, options, str(tmp_path / "ckpt"), sink))
    got = [
        (
            r["sequenceNumber"],
            r["subSequenceNumber"],
            r["partitionKey"],
            bytes(r["data"]),
            r["explicitHashKey"],
        )
        for r in sink.rows()
    ]
    seq = [w["sequenceNumber"] for w in written]
    assert sorted(got, key=lambda g: (int(g[0]), g[1])) == [
        *[(seq[0], i, f"user-{i}", f"a1-{i}".encode(), None) for i in range(5)],
        (seq[1], 0, "p1", b"plain one", None),
        (seq[2], 0, "ehk-user", b"x", "123456789"),
        (seq[2], 1, "plain-user", b"y", None),
        (seq[3], 0, "p2", bytes(corrupt), None),
    ]


def test_caps_that_split_an_aggregate_lose_and_repeat_nothing(
    spark: Any, kinesis: Any, moto_endpoint: str, stream_name: str, tmp_path: Path
) -> None:
    create_stream(kinesis, stream_name, 1)
    written = put(
        kinesis,
        stream_name,
        [
            (f"o{j}", aggregate([(f"u{j}-{i}", f"{j}-{i}".encode(), None) for i in range(5)]))
            for j in range(4)
        ],
    )
    sink = BatchCollector()
    options = source_options(
        moto_endpoint, stream_name, str(tmp_path / "store"), maxRecordsPerShard="3"
    )
    run_until_idle(start_query(spark, options, str(tmp_path / "ckpt"), sink))
    got = [(r["sequenceNumber"], r["subSequenceNumber"], bytes(r["data"])) for r in sink.rows()]
    assert got == [
        (w["sequenceNumber"], i, f"{j}-{i}".encode())
        for j, w in enumerate(written)
        for i in range(5)
    ]
    assert max(len(b) for b in sink.batches.values()) == 3


def test_restart_after_more_data_loses_and_duplicates_nothing(
    spark: Any, emulator: Emulator, stream_name: str, tmp_path: Path
) -> None:
    kinesis, moto_endpoint = emulator.client, emulator.endpoint
    create_stream(kinesis, stream_name, 3)
    first = put(kinesis, stream_name, ((f"k{i}", f"first-{i}".encode()) for i in range(30)))
    options = source_options(moto_endpoint, stream_name, str(tmp_path / "store"))
    out, ckpt = str(tmp_path / "out"), str(tmp_path / "ckpt")

    def run() -> None:
        run_until_idle(start_file_query(spark, options, out, ckpt))

    run()
    assert record_keys(spark.read.parquet(out).collect()) == expected_keys(first)
    second = put(kinesis, stream_name, ((f"k{i}", f"second-{i}".encode()) for i in range(30)))
    run()
    assert record_keys(spark.read.parquet(out).collect()) == expected_keys(first + second)


def test_a_failed_batch_is_replayed_exactly_after_restart(
    spark: Any, emulator: Emulator, stream_name: str, tmp_path: Path
) -> None:
    kinesis, moto_endpoint = emulator.client, emulator.endpoint
    create_stream(kinesis, stream_name, 3)
    first = put(kinesis, stream_name, ((f"k{i}", f"first-{i}".encode()) for i in range(30)))
    sink = FailOnceCollector()

    options = source_options(moto_endpoint, stream_name, str(tmp_path / "store"))
    ckpt = str(tmp_path / "ckpt")
    query = start_query(spark, options, ckpt, sink)
    with pytest.raises(StreamingQueryException, match="injected sink failure"):
        query.processAllAvailable()
    query.stop()
    assert sink.failed and next(iter(sink.failed.values())) == expected_keys(first)

    second = put(kinesis, stream_name, ((f"k{i}", f"second-{i}".encode()) for i in range(30)))
    run_until_idle(start_query(spark, options, ckpt, sink))
    assert sink.replayed == sink.failed
    assert record_keys(sink.rows()) == expected_keys(first + second)


def test_the_secret_key_is_written_nowhere(
    spark: Any, kinesis: Any, moto_endpoint: str, stream_name: str, tmp_path: Path
) -> None:
    secret = "SECRETsecretSECRET-0123456789-do-not-store"
    token = "TOKENtokenTOKEN-9876543210-do-not-store"
    create_stream(kinesis, stream_name, 1)
    put(kinesis, stream_name, [("k", b"v")])
    options = source_options(
        moto_endpoint,
        stream_name,
        str(tmp_path / "store"),
        awsAccessKeyId="AKIDTESTING",
        awsSecretKey=secret,
        awsSessionToken=token,
    )
    sink = BatchCollector()
    query = start_query(spark, options, str(tmp_path / "ckpt"), sink)
    try:
        query.processAllAvailable()
        plan = str(query.lastProgress) + str(query.status)
        (tmp_path / "plan.txt").write_text(plan + str(query.recentProgress))
    finally:
        query.stop()
    assert len(sink.rows()) == 1
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.parent.name == "offsets" for p in written)
    assert any(p.suffix == ".json" for p in (tmp_path / "store").rglob("*"))
    for path in written:
        content = path.read_bytes()
        assert secret.encode() not in content, path
        assert token.encode() not in content, path
    assert REGION  # the options above really were used: the row came through them
