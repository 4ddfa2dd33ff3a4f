"""Orders ETL: Kinesis order JSON -> flat Parquet partitioned by order hour.

The Spark job of the Kafka -> Kinesis -> S3 pipeline, on our source: parse each record's
JSON with an explicit schema, flatten ``address.*`` to ``address_city``, ``address_state``,
``address_zipcode``, add ``ot`` = yyyyMMddHH of ``ordertime`` (UTC) and write Parquet
partitioned by ``ot``. A record that is not a valid order goes, with its raw bytes and
Kinesis coordinates, to the dead-letter path: none is dropped. ``--raw-copy`` keeps every
raw record too (what the seed pipeline's Firehose copy was for).

Each micro-batch is written to ``<path>/_staging/`` and then moved into place under names
that carry the batch id, replacing what an earlier attempt of the same batch left: a
replayed batch does not duplicate rows. Paths are on a local (or mounted) filesystem,
because that move is a rename. With no ``--endpoint-url`` and no ``--aws`` the job starts
an embedded Kinesis, writes ``--demo-orders`` orders and a few malformed records to it,
processes them all and stops.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import IntegerType, LongType, StringType, StructField, StructType

from examples.local_kinesis import (
    add_target_arguments,
    embedded_kinesis,
    is_embedded,
    source_credentials,
)
from examples.spark_env import get_spark
from scripts.produce import produce

log = logging.getLogger(__name__)

CORRUPT_COLUMN = "_corrupt_record"
ADDRESS_SCHEMA = StructType(
    [
        StructField("city", StringType()),
        StructField("state", StringType()),
        StructField("zipcode", IntegerType()),
    ]
)
ORDER_SCHEMA = StructType(
    [
        StructField("ordertime", LongType()),
        StructField("orderid", LongType()),
        StructField("itemid", StringType()),
        StructField("orderunits", IntegerType()),
        StructField("address", ADDRESS_SCHEMA),
    ]
)
# The flattened columns, in output order; ``ot`` is the partition column.
FLAT_COLUMNS = (
    "ordertime",
    "orderid",
    "itemid",
    "orderunits",
    "address_city",
    "address_state",
    "address_zipcode",
)
PARTITION_COLUMN = "ot"
PARTITION_FORMAT = "yyyyMMddHH"
# Kinesis coordinates kept with every dead letter and raw copy, to find the record again.
RECORD_COLUMNS = (
    "streamName",
    "shardId",
    "partitionKey",
    "sequenceNumber",
    "subSequenceNumber",
    "approximateArrivalTimestamp",
)
STAGING_DIR = "_staging"
# Malformed records the embedded demo writes, so its dead-letter path has something in it.
DEMO_MALFORMED = (b"not json", b'{"orderid": 7}', b'{"ordertime": "soon", "orderid": 8}')


@dataclass(frozen=True)
class EtlPaths:
    output: Path
    dead_letter: Path
    raw_copy: Path | None = None


def parse_orders(records: DataFrame) -> DataFrame:
    """The records with ``order`` (the parsed struct) and ``error`` (null when valid)."""
    text = F.col("data").cast("string")
    # A new StructType: ``add`` would change ORDER_SCHEMA itself.
    schema = StructType([*ORDER_SCHEMA.fields, StructField(CORRUPT_COLUMN, StringType())])
    parsed = F.from_json(
        text, schema, {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": CORRUPT_COLUMN}
    )
    order = F.col("order")
    error: Column = (
        F.when(~F.is_valid_utf8(text), F.lit("not UTF-8"))
        .when(order.isNull(), F.lit("not a JSON object"))
        .when(order[CORRUPT_COLUMN].isNotNull(), F.lit("malformed JSON or a field of wrong type"))
        .when(order["ordertime"].isNull(), F.lit("no ordertime"))
        .when(order["orderid"].isNull(), F.lit("no orderid"))
    )
    return records.withColumn("order", parsed).withColumn("error", error)


def flatten(parsed: DataFrame) -> DataFrame:
    """Valid orders as flat rows plus the hour partition ``ot``."""
    order = F.col("order")
    return parsed.where(F.col("error").isNull()).select(
        order["ordertime"].alias("ordertime"),
        order["orderid"].alias("orderid"),
        order["itemid"].alias("itemid"),
        order["orderunits"].alias("orderunits"),
        order["address"]["city"].alias("address_city"),
        order["address"]["state"].alias("address_state"),
        order["address"]["zipcode"].alias("address_zipcode"),
        F.from_unixtime(order["ordertime"], PARTITION_FORMAT).alias(PARTITION_COLUMN),
    )


def dead_letters(parsed: DataFrame) -> DataFrame:
    """Records that are not valid orders: raw bytes, the reason, where they came from."""
    return parsed.where(F.col("error").isNotNull()).select("data", "error", *RECORD_COLUMNS)


def publish(df: DataFrame, root: Path, batch_id: int, partition_by: str | None = None) -> int:
    """Write ``df`` as Parquet under ``root`` for micro-batch ``batch_id``; files moved in.

    Files land as ``batch-<id>-<n>.parquet``, each by an atomic rename, after any files of
    an earlier attempt of the same batch were removed. Returns the number of files.
    """
    staging = root / STAGING_DIR / f"batch-{batch_id}-{uuid.uuid4().hex[:8]}"
    writer = df.write.mode("overwrite")
    if partition_by:
        writer = writer.partitionBy(partition_by)
    writer.parquet(str(staging))
    prefix = f"batch-{batch_id:010d}-"
    for old in [*root.glob(f"{prefix}*.parquet"), *root.glob(f"*=*/{prefix}*.parquet")]:
        old.unlink()
    files = sorted(staging.rglob("*.parquet"))
    for n, src in enumerate(files):
        target_dir = root / src.parent.relative_to(staging)
        target_dir.mkdir(parents=True, exist_ok=True)
        os.replace(src, target_dir / f"{prefix}{n:05d}.parquet")
    shutil.rmtree(staging)
    return len(files)


def write_batch(batch: DataFrame, batch_id: int, paths: EtlPaths) -> None:
    """foreachBatch body: orders, dead letters and the raw copy of one micro-batch."""
    parsed = parse_orders(batch).persist()
    try:
        good = flatten(parsed)
        bad = dead_letters(parsed)
        if not good.isEmpty():
            publish(good, paths.output, batch_id, PARTITION_COLUMN)
        if not bad.isEmpty():
            publish(bad, paths.dead_letter, batch_id)
        if paths.raw_copy is not None and not parsed.isEmpty():
            publish(parsed.select("data", *RECORD_COLUMNS), paths.raw_copy, batch_id)
        log.info("batch %d written", batch_id)
    finally:
        parsed.unpersist()


def start_etl(
    spark: Any,
    source_options: Mapping[str, str],
    paths: EtlPaths,
    checkpoint: str,
    processing_time: str | None = None,
) -> Any:
    """Start the streaming query; returns the StreamingQuery."""
    records = spark.readStream.format("kinesis").options(**source_options).load()
    writer = (
        records.writeStream.queryName("orders_etl")
        .foreachBatch(lambda df, batch_id: write_batch(df, batch_id, paths))
        .option("checkpointLocation", checkpoint)
    )
    if processing_time:
        writer = writer.trigger(processingTime=processing_time)
    return writer.start()


def run_until_caught_up(
    spark: Any, source_options: Mapping[str, str], paths: EtlPaths, checkpoint: str
) -> None:
    """Process everything in the stream now, then stop."""
    query = start_etl(spark, source_options, paths, checkpoint)
    try:
        query.processAllAvailable()
    finally:
        query.stop()


def source_options_for(
    stream: str, region: str, checkpoint: str, endpoint_url: str | None, initial_position: str
) -> dict[str, str]:
    opts = {
        "streamName": stream,
        "region": region,
        # Next to the query's checkpoint: the two belong together (see the README).
        "checkpointStore": str(Path(checkpoint) / "kinesis-store"),
        "initialPosition": initial_position,
    }
    if endpoint_url:
        opts["endpointUrl"] = endpoint_url
    return opts


def summarize(spark: Any, paths: EtlPaths) -> dict[str, Any]:
    """Row counts per partition and of the dead letters: what the demo prints."""
    out: dict[str, Any] = {"partitions": {}, "deadLetters": 0}
    if any(paths.output.glob(f"{PARTITION_COLUMN}=*")):
        rows = spark.read.parquet(str(paths.output)).groupBy(PARTITION_COLUMN).count().collect()
        out["partitions"] = {str(r[PARTITION_COLUMN]): r["count"] for r in sorted(rows)}
    if any(paths.dead_letter.glob("*.parquet")):
        out["deadLetters"] = spark.read.parquet(str(paths.dead_letter)).count()
    return out


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_target_arguments(p, default_stream="orders")
    p.add_argument("--output", type=Path, default=Path("out/orders"))
    p.add_argument("--dead-letter", type=Path, default=Path("out/orders_dead_letter"))
    p.add_argument("--raw-copy", type=Path, help="also keep every raw record here")
    p.add_argument("--checkpoint", default="out/orders_checkpoint")
    p.add_argument("--initial-position", default="trim_horizon")
    p.add_argument("--trigger", default="10 seconds", help="processing-time trigger interval")
    p.add_argument(
        "--stop-when-caught-up",
        action="store_true",
        help="process what is in the stream now, then stop",
    )
    p.add_argument("--demo-orders", type=int, default=200, help="orders the embedded demo writes")
    p.add_argument("--master", help="Spark master (default local[2] unless spark-submit sets it)")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("py4j").setLevel(logging.WARNING)  # its callback server is chatty
    for path in (args.output, args.dead_letter, args.raw_copy):
        if path is not None and "://" in str(path):
            raise SystemExit(f"{path}: give a local or mounted path (the publish step renames)")
    paths = EtlPaths(args.output, args.dead_letter, args.raw_copy)

    spark = get_spark("orders_etl", args.master)
    if not is_embedded(args):
        opts = source_options_for(
            args.stream, args.region, args.checkpoint, args.endpoint_url, args.initial_position
        )
        if args.stop_when_caught_up:
            run_until_caught_up(spark, opts, paths, args.checkpoint)
        else:
            start_etl(spark, opts, paths, args.checkpoint, args.trigger).awaitTermination()
        return 0

    with embedded_kinesis(args.stream, shards=2, region=args.region) as (endpoint, client):
        stats = produce(
            client, args.stream, fmt="orders", records_per_sec=args.demo_orders, duration_s=1
        )
        for n, data in enumerate(DEMO_MALFORMED):
            client.put_record(StreamName=args.stream, PartitionKey=f"bad-{n}", Data=data)
        print(
            f"embedded Kinesis at {endpoint}: wrote {stats.user_records} orders "
            f"and {len(DEMO_MALFORMED)} malformed records",
            file=sys.stderr,
        )
        # The embedded stream lives only for this run, so its checkpoint does too.
        checkpoint = tempfile.mkdtemp(prefix="orders_etl_checkpoint_")
        opts = source_options_for(args.stream, args.region, checkpoint, endpoint, "trim_horizon")
        opts.update(source_credentials(), fetchIntervalMs="0")
        try:
            run_until_caught_up(spark, opts, paths, checkpoint)
        finally:
            shutil.rmtree(checkpoint, ignore_errors=True)
    print(json.dumps(summarize(spark, paths), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
