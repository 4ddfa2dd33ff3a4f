"""The examples end to end on the local emulator: produce -> our source -> results."""

from __future__ import annotations

import json
import shutil
import uuid
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow.parquet as pq
import pytest
from chispa import assert_df_equality
from helpers import create_stream, source_options
from pyspark.sql import DataFrame, Row
from pyspark.sql import functions as F

from examples import orders_etl
from scripts import compact as compactor
from scripts.produce import ProduceStats, produce

pytestmark = pytest.mark.spark

# Records that are not valid orders, each for its own reason.
MALFORMED = (
    b"not json at all",
    b"[1, 2, 3]",
    b'{"ordertime": "yesterday", "orderid": 1}',
    b'{"orderid": 99, "itemid": "Item_1"}',
    b'\xff\xfe{"ordertime": 1, "orderid": 2}',
    b'{"ordertime": 1573573055, "orderid": 23, "address": ',
)


def read_to_memory(spark: Any, df: DataFrame, tmp_path: Path, mode: str = "append") -> list[Row]:
    """Run a streaming query until it has processed all there is; return what it wrote."""
    name = f"q_{uuid.uuid4().hex[:8]}"
    query = (
        df.writeStream.format("memory")
        .queryName(name)
        .outputMode(mode)
        .option("checkpointLocation", str(tmp_path / f"{name}_checkpoint"))
        .start()
    )
    try:
        query.processAllAvailable()
    finally:
        query.stop()
    return spark.table(name).collect()


def kinesis_df(spark: Any, endpoint: str, stream: str, tmp_path: Path) -> DataFrame:
    store = str(tmp_path / f"store_{uuid.uuid4().hex[:6]}")
    return (
        spark.readStream.format("kinesis").options(**source_options(endpoint, stream, store)).load()
    )


def test_word_count_equals_a_count_of_what_the_producer_wrote(
    spark: Any, moto_endpoint: str, kinesis: Any, stream_name: str, tmp_path: Path
) -> None:
    create_stream(kinesis, stream_name, 2)
    stats = produce(kinesis, stream_name, records_per_sec=150, words_per_record=6, seed=11)
    words = F.explode(F.split(F.col("data").cast("string"), " ")).alias("word")
    counts = kinesis_df(spark, moto_endpoint, stream_name, tmp_path).select(words)
    rows = read_to_memory(spark, counts.groupBy("word").count(), tmp_path, mode="complete")
    expected = Counter(w for r in stats.records for w in r.data.decode().split(" "))
    assert {r["word"]: r["count"] for r in rows} == dict(expected)
    assert sum(expected.values()) == 150 * 6


def test_aggregated_records_are_read_back_once_each_where_the_producer_put_them(
    spark: Any, moto_endpoint: str, kinesis: Any, stream_name: str, tmp_path: Path
) -> None:
    create_stream(kinesis, stream_name, 2)
    stats = produce(kinesis, stream_name, records_per_sec=200, aggregate=True, seed=12)
    assert stats.kinesis_records < stats.user_records
    rows = read_to_memory(spark, kinesis_df(spark, moto_endpoint, stream_name, tmp_path), tmp_path)
    got = Counter(
        (r.partitionKey, bytes(r.data), r.shardId, r.sequenceNumber, r.subSequenceNumber)
        for r in rows
    )
    want = Counter(
        (w.partition_key, w.data, w.shard_id, w.sequence_number, w.sub_sequence_number)
        for w in stats.records
    )
    assert got == want
    assert max(got.values()) == 1


# -- orders ETL ----------------------------------------------------------------------------


def expected_partitions(spark: Any, stats: ProduceStats) -> dict[str, list[Row]]:
    """The flattened rows per ``ot`` partition, computed in Python from what was written."""
    zone = ZoneInfo(spark.conf.get("spark.sql.session.timeZone"))
    out: dict[str, list[Row]] = {}
    for rec in stats.records:
        order = json.loads(rec.data)
        hour = datetime.fromtimestamp(order["ordertime"], zone).strftime("%Y%m%d%H")
        out.setdefault(hour, []).append(
            Row(
                ordertime=order["ordertime"],
                orderid=order["orderid"],
                itemid=order["itemid"],
                orderunits=order["orderunits"],
                address_city=order["address"]["city"],
                address_state=order["address"]["state"],
                address_zipcode=order["address"]["zipcode"],
            )
        )
    return out


@pytest.fixture(scope="module")
def etl_run(
    spark: Any, moto_endpoint: str, kinesis: Any, tmp_path_factory: pytest.TempPathFactory
) -> tuple[orders_etl.EtlPaths, ProduceStats]:
    """One run of the orders ETL over 120 orders in 3 hours plus the malformed records."""
    stream = f"orders-{uuid.uuid4().hex[:8]}"
    create_stream(kinesis, stream, 2)
    stats = produce(kinesis, stream, fmt="orders", records_per_sec=120, order_hours=3, seed=13)
    for n, data in enumerate(MALFORMED):
        kinesis.put_record(StreamName=stream, PartitionKey=f"bad-{n}", Data=data)
    root = tmp_path_factory.mktemp("etl")
    paths = orders_etl.EtlPaths(root / "orders", root / "dead", root / "raw")
    opts = source_options(moto_endpoint, stream, str(root / "store"))
    orders_etl.run_until_caught_up(spark, opts, paths, str(root / "checkpoint"))
    return paths, stats


def test_orders_etl_writes_the_flattened_rows_of_each_hour_partition(
    spark: Any, etl_run: tuple[orders_etl.EtlPaths, ProduceStats]
) -> None:
    paths, stats = etl_run
    expected = expected_partitions(spark, stats)
    written = sorted(p.name for p in paths.output.glob("ot=*"))
    assert written == sorted(f"ot={hour}" for hour in expected)
    assert len(written) >= 3
    for hour, rows in expected.items():
        actual = spark.read.parquet(str(paths.output / f"ot={hour}"))
        assert actual.columns == list(orders_etl.FLAT_COLUMNS)
        want = spark.createDataFrame(rows, schema=actual.schema)
        assert_df_equality(actual, want, ignore_row_order=True)
    table = spark.read.parquet(str(paths.output))
    assert table.count() == stats.user_records


def test_orders_etl_sends_every_malformed_record_to_the_dead_letter_path(
    spark: Any, etl_run: tuple[orders_etl.EtlPaths, ProduceStats]
) -> None:
    paths, _ = etl_run
    dead = spark.read.parquet(str(paths.dead_letter)).collect()
    assert Counter(bytes(r.data) for r in dead) == Counter(MALFORMED)
    assert all(r.error and r.shardId and r.sequenceNumber for r in dead)
    reasons = {bytes(r.data): r.error for r in dead}
    assert reasons[b'\xff\xfe{"ordertime": 1, "orderid": 2}'] == "not UTF-8"
    assert reasons[b'{"orderid": 99, "itemid": "Item_1"}'] == "no ordertime"


def test_orders_etl_raw_copy_keeps_every_record_byte_for_byte(
    spark: Any, etl_run: tuple[orders_etl.EtlPaths, ProduceStats]
) -> None:
    paths, stats = etl_run
    assert paths.raw_copy is not None
    raw = Counter(bytes(r.data) for r in spark.read.parquet(str(paths.raw_copy)).collect())
    assert raw == Counter([w.data for w in stats.records] + list(MALFORMED))


def test_publishing_a_batch_again_replaces_its_files(spark: Any, tmp_path: Path) -> None:
    df = spark.createDataFrame([(i, f"2026010{i % 2}00") for i in range(20)], "n int, ot string")
    orders_etl.publish(df.repartition(3), tmp_path, 4, "ot")
    orders_etl.publish(df.repartition(2), tmp_path, 4, "ot")  # a replay of batch 4
    orders_etl.publish(df.limit(1), tmp_path, 5, "ot")
    assert spark.read.parquet(str(tmp_path)).count() == 21
    assert not any((tmp_path / orders_etl.STAGING_DIR).iterdir())


# -- compaction ----------------------------------------------------------------------------


def test_closed_partitions_are_all_but_the_newest_or_older_than_the_threshold() -> None:
    names = ["ot=2026112203", "ot=2026112201", "ot=2026112202", "_staging", "ot=bad"]
    assert compactor.closed_partitions(names, datetime.now(timezone.utc), None) == [
        "ot=2026112201",
        "ot=2026112202",
    ]
    now = datetime(2026, 11, 22, 4, 30, tzinfo=timezone.utc)
    closed = compactor.closed_partitions(names, now, timedelta(hours=1))
    assert closed == ["ot=2026112201", "ot=2026112202"]  # 03 ended at 04:00, +1 h > now
    assert compactor.closed_partitions(names, now, timedelta(minutes=20)) == [
        "ot=2026112201",
        "ot=2026112202",
        "ot=2026112203",
    ]


def test_compaction_keeps_every_row_and_reduces_the_file_count(
    spark: Any, etl_run: tuple[orders_etl.EtlPaths, ProduceStats], tmp_path: Path
) -> None:
    paths, _ = etl_run
    table = tmp_path / "orders"
    shutil.copytree(paths.output, table)
    # One more micro-batch into every hour, so each partition has several small files.
    more = spark.read.parquet(str(paths.output)).withColumn("orderid", F.col("orderid") + 1000)
    orders_etl.publish(more.repartition(3), table, 99, orders_etl.PARTITION_COLUMN)
    before = spark.read.parquet(str(table))
    before_rows = before.collect()
    newest = max(p.name for p in table.glob("ot=*"))
    files_before = {p.name: len(compactor.data_files(p)) for p in table.glob("ot=*")}

    results = compactor.compact(spark, table, target_bytes=1024 * 1024)

    files_after = {p.name: len(compactor.data_files(p)) for p in table.glob("ot=*")}
    assert {r.partition for r in results} == set(files_before) - {newest}
    for name, count in files_after.items():
        if name == newest:
            assert count == files_before[name]  # the open partition is left alone
        else:
            assert count == 1 < files_before[name]
    after = spark.read.parquet(str(table))
    assert_df_equality(
        spark.createDataFrame(before_rows, before.schema), after, ignore_row_order=True
    )
    assert not [p for p in table.iterdir() if p.name.startswith("_compact")]
    # Merged files hold the data columns only: ot stays a directory, as Spark wrote it.
    merged = compactor.data_files(table / min(files_before))[0]
    assert pq.read_schema(merged).names == list(orders_etl.FLAT_COLUMNS)


def test_compaction_without_atomic_exchange_swaps_with_two_renames(
    spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(compactor, "exchange", lambda a, b: False)
    df = spark.range(30).withColumn("ot", F.lit("2026010100"))
    orders_etl.publish(df.repartition(3), tmp_path, 0, "ot")
    orders_etl.publish(df.limit(1).withColumn("ot", F.lit("2026010101")), tmp_path, 1, "ot")
    [result] = compactor.compact(spark, tmp_path)
    assert (result.files_before, result.files_after, result.rows) == (3, 1, 30)
    assert spark.read.parquet(str(tmp_path)).count() == 31
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "_staging",
        "ot=2026010100",
        "ot=2026010101",
    ]


# -- the command lines, on their embedded defaults -----------------------------------------


def test_orders_etl_cli_demo_runs_on_an_embedded_stream(
    spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(orders_etl, "get_spark", lambda app, master=None: spark)
    out, dead = tmp_path / "orders", tmp_path / "dead"
    argv = ["--output", str(out), "--dead-letter", str(dead), "--demo-orders", "30"]
    assert orders_etl.main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    assert sum(summary["partitions"].values()) == 30
    assert summary["deadLetters"] == len(orders_etl.DEMO_MALFORMED)


def test_compact_cli_merges_all_but_the_newest_partition(
    spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(compactor, "get_spark", lambda app, master=None: spark)
    df = spark.range(40).withColumn(
        "ot", F.concat(F.lit("20260101"), F.lpad(F.col("id") % 4, 2, "0"))
    )
    orders_etl.publish(df.repartition(4), tmp_path, 0, "ot")
    assert compactor.main([str(tmp_path), "--target-size-mb", "1"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert [r["partition"] for r in results] == ["ot=2026010100", "ot=2026010101", "ot=2026010102"]
    assert all(r["files_after"] == 1 and r["rows"] == 10 for r in results)
    assert spark.read.parquet(str(tmp_path)).count() == 40
