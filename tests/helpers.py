"""Small helpers the tests share: streams on an emulator, putting records, reading results."""

from __future__ import annotations

import base64
import hashlib
import io
import time
import uuid
import zlib
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import fastavro
from aws_kinesis_agg.aggregator import RecordAggregator

from kinesis_source.records.deaggregation import KPL_MAGIC

REGION = "us-east-1"
# The repository, wherever under tests/ the importing file sits.
ROOT = Path(__file__).resolve().parent.parent


def wait_for(
    condition: Callable[[], bool], timeout_s: float = 60.0, what: str = "", poll_s: float = 0.5
) -> None:
    """Poll ``condition`` (backing off to every ``poll_s``) until it holds; fail with
    ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    delay = min(0.01, poll_s)
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what or condition}")
        time.sleep(delay)
        delay = min(delay * 2, poll_s)


def create_stream(client: Any, name: str, shards: int) -> list[str]:
    """Create a stream, wait until it is ACTIVE, and return its shard ids in order."""
    client.create_stream(StreamName=name, ShardCount=shards)
    wait_active(client, name)
    return sorted(s["ShardId"] for s in client.list_shards(StreamName=name)["Shards"])


def wait_active(client: Any, name: str) -> None:
    """Wait until the stream is ACTIVE again (after a create or a reshard)."""

    def active() -> bool:
        desc = client.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
        return bool(desc["StreamStatus"] == "ACTIVE")

    wait_for(active, what=f"stream {name} to become ACTIVE")


def put(client: Any, stream: str, items: Iterable[tuple[str, bytes]]) -> list[dict[str, str]]:
    """PutRecord each (partition key, data) in order; return what Kinesis answered."""
    out = []
    for key, data in items:
        resp = client.put_record(StreamName=stream, PartitionKey=key, Data=data)
        out.append(
            {
                "partitionKey": key,
                "data": data,
                "shardId": resp["ShardId"],
                "sequenceNumber": resp["SequenceNumber"],
            }
        )
    return out


def source_options(endpoint: str, stream: str, store: str, **extra: str) -> dict[str, str]:
    """The options every test read uses: a local endpoint, a region, a store."""
    opts = {
        "streamName": stream,
        "region": REGION,
        "endpointUrl": endpoint,
        "checkpointStore": store,
        "initialPosition": "trim_horizon",
        "fetchIntervalMs": "0",
    }
    opts.update(extra)
    return opts


def store_options(store: str, endpoint: str) -> dict[str, str]:
    """Options that point an S3 or DynamoDB store at the emulator (nothing for files)."""
    if store.startswith(("s3://", "dynamodb://")):
        return {"checkpointEndpointUrl": endpoint}
    return {}


def assert_shard_order(rows: Iterable[Any]) -> None:
    """Within each shard, (sequence number, sub-sequence number) strictly increases."""
    last: dict[str, tuple[int, int]] = {}
    for row in rows:
        key = (int(row["sequenceNumber"]), int(row["subSequenceNumber"]))
        prev = last.get(row["shardId"])
        assert prev is None or key > prev, f"{row['shardId']}: {key} after {prev}"
        last[row["shardId"]] = key


class BatchCollector:
    """A foreachBatch sink keeping each batch's rows by batch id (so a replay overwrites)."""

    def __init__(self) -> None:
        self.batches: dict[int, list[dict[str, Any]]] = {}

    def __call__(self, df: Any, batch_id: int) -> None:
        self.batches[batch_id] = [row.asDict() for row in df.collect()]

    def rows(self) -> list[dict[str, Any]]:
        return [row for b in sorted(self.batches) for row in self.batches[b]]


class FailOnceCollector(BatchCollector):
    """A ``BatchCollector`` whose first batch with rows fails: ``failed`` keeps that attempt's
    record keys and ``replayed`` what the same batch id held when it ran again."""

    def __init__(self) -> None:
        super().__init__()
        self.failed: dict[int, list[tuple[str, str, int, bytes]]] = {}
        self.replayed: dict[int, list[tuple[str, str, int, bytes]]] = {}

    def __call__(self, df: Any, batch_id: int) -> None:
        rows = [r.asDict() for r in df.collect()]
        if not self.failed and rows:
            self.failed[batch_id] = record_keys(rows)
            raise RuntimeError("injected sink failure")
        if batch_id in self.failed:
            self.replayed[batch_id] = record_keys(rows)
        self.batches[batch_id] = rows


def start_query(
    spark: Any,
    options: dict[str, str],
    checkpoint: str,
    sink: Callable[[Any, int], None],
    trigger: str = "200 milliseconds",
) -> Any:
    """Start ``format("kinesis")`` with ``options`` into a foreachBatch ``sink``.

    ``trigger`` is a processing-time interval, or "availableNow".
    """
    reader = spark.readStream.format("kinesis")
    for key, value in options.items():
        reader = reader.option(key, value)
    writer = reader.load().writeStream.foreachBatch(sink).option("checkpointLocation", checkpoint)
    if trigger == "availableNow":
        writer = writer.trigger(availableNow=True)
    else:
        writer = writer.trigger(processingTime=trigger)
    return writer.start()


def expected_keys(puts: Iterable[dict[str, Any]]) -> list[tuple[str, str, int, bytes]]:
    """``record_keys`` of the rows that the records ``put`` returned should become."""
    return sorted((p["shardId"], p["sequenceNumber"], 0, p["data"]) for p in puts)


def start_file_query(spark: Any, options: dict[str, str], out: str, checkpoint: str) -> Any:
    """Start ``format("kinesis")`` with ``options`` into a parquet file sink at ``out``."""
    reader = spark.readStream.format("kinesis")
    for key, value in options.items():
        reader = reader.option(key, value)
    return (
        reader.load()
        .writeStream.format("parquet")
        .option("path", out)
        .option("checkpointLocation", checkpoint)
        .trigger(processingTime="100 milliseconds")
        .start()
    )


def run_until_idle(query: Any) -> None:
    """Process everything available now, then stop the query."""
    try:
        query.processAllAvailable()
    finally:
        query.stop()


def record_keys(rows: Iterable[Any]) -> list[tuple[str, str, int, bytes]]:
    """(shard, sequence, sub-sequence, data) of each row, sorted: compare as multisets."""
    return sorted(
        (r["shardId"], r["sequenceNumber"], int(r["subSequenceNumber"]), bytes(r["data"]))
        for r in rows
    )


def aggregate(users: Iterable[Sequence[Any]]) -> bytes:
    """One KPL aggregate built by aws_kinesis_agg's own aggregator, of (key, data[, hash key])."""
    agg = RecordAggregator()
    for user in users:
        key, data = user[0], user[1]
        hash_key = user[2] if len(user) > 2 else None
        assert agg.add_user_record(key, data, hash_key) is None
    record = agg.clear_and_get()
    assert record is not None
    return bytes(record.get_contents()[2])


def framed(body: bytes, digest: bytes | None = None) -> bytes:
    """magic + ``body`` + its MD5 (or ``digest``): an aggregate's framing around any bytes."""
    return KPL_MAGIC + body + (hashlib.md5(body).digest() if digest is None else digest)


def read_stream(client: Any, stream: str) -> list[dict[str, Any]]:
    """Every user record in ``stream``, shard by shard in sequence order, KPL aggregates
    split by aws_kinesis_agg's own Python deaggregator (so what it reads is what we check).

    Each: shardId, sequenceNumber, subSequenceNumber (None: not aggregated), partitionKey,
    explicitHashKey (only aggregated records carry one), data.
    """
    from aws_kinesis_agg.deaggregator import iter_deaggregate_records

    out: list[dict[str, Any]] = []
    shards = client.list_shards(StreamName=stream)["Shards"]
    for shard in sorted(shards, key=lambda s: s["ShardId"]):
        iterator = client.get_shard_iterator(
            StreamName=stream, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while iterator:
            page = client.get_records(ShardIterator=iterator, Limit=10_000)
            for record in page["Records"]:
                for user in iter_deaggregate_records(record, data_format="Boto3"):
                    k = user["kinesis"]
                    aggregated = bool(k.get("aggregated"))
                    out.append(
                        {
                            "shardId": shard["ShardId"],
                            "sequenceNumber": record["SequenceNumber"],
                            "subSequenceNumber": k["subSequenceNumber"] if aggregated else None,
                            "partitionKey": k["partitionKey"],
                            "explicitHashKey": k.get("explicitHashKey") if aggregated else None,
                            "data": base64.b64decode(k["data"]) if aggregated else k["data"],
                        }
                    )
            if not page["Records"] and page.get("MillisBehindLatest", 0) == 0:
                break
            iterator = page.get("NextShardIterator")
    return out


def shard_of(client: Any, stream: str, hash_key: int) -> str:
    """The open shard of ``stream`` whose hash-key range holds ``hash_key``."""
    for shard in client.list_shards(StreamName=stream)["Shards"]:
        hash_range = shard["HashKeyRange"]
        if int(hash_range["StartingHashKey"]) <= hash_key <= int(hash_range["EndingHashKey"]):
            if "EndingSequenceNumber" not in shard["SequenceNumberRange"]:
                return str(shard["ShardId"])
    raise AssertionError(f"no open shard of {stream} holds {hash_key}")


def avro_bytes(schema: dict[str, Any], record: dict[str, Any]) -> bytes:
    """One Avro datum, no container header, as fastavro's own writer writes it."""
    out = io.BytesIO()
    fastavro.schemaless_writer(out, fastavro.parse_schema(schema), record)
    return out.getvalue()


def registry_frame(payload: bytes, version_id: str, *, compress: bool = False) -> bytes:
    """A record as the Glue Schema Registry's serializer frames it, spelled out from its
    documented layout (independent of the code under test): header version 3,
    compression 0 (none) or 5 (zlib), the version id's 16 bytes, the (deflated) payload."""
    body = zlib.compress(payload) if compress else payload
    return bytes([3, 5 if compress else 0]) + uuid.UUID(version_id).bytes + body
