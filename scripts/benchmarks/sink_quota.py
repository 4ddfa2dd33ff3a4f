"""(i) the sink at the write quota: ``df.write.format("kinesis")`` to N shards of the Kinesis
test server, which refuses each PutRecords entry over its shard's 1,000 records/s or
1 MiB/s (data and partition key) with ``ProvisionedThroughputExceededException``, as AWS
does (``tests/emulators/kinesis_rules.WriteRate``).

With aggregation the figure is user bytes/s per shard (the 100-byte records' data, not the
KPL framing) against 1 MiB/s; without, user records/s per shard against 1,000. Each run
writes ``QUOTA_SECONDS`` of the N shards' quota, so that Spark's start (about a second) is
a small part of it. Every shard is then read back from TRIM_HORIZON (aggregates split by
``deaggregation.deaggregate``) and each record counted: nothing may be missing,
duplicated or altered. Next to it the same records go through a single-process boto3
PutRecords loop (aggregated with aws_kinesis_agg's ``RecordAggregator``) that sends
rejected entries again after a short pause. The server's own count of refused entries is
printed for both.

The server's read quotas are off: the read-back checks the writes, it is not measured.
"""

from __future__ import annotations

import functools
import random
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from aws_kinesis_agg.aggregator import RecordAggregator

from kinesis_source import limits
from kinesis_source.records.deaggregation import deaggregate
from kinesis_source.sink.shard_map import hash_key_of
from tests.emulators.kinesis_rules import MIB, Rules
from tests.emulators.kinesis_server import KinesisServer, kinesis_server

from .common import RECORD_BYTES, REGION, figure, kinesis, spark_session

QUOTA_SHARDS = 4
QUOTA_KEYS = 1_000
# Seconds of the N shards' write quota one run writes (plain: 1,000 records/s per shard;
# aggregated: 1 MiB/s of user data per shard).
QUOTA_SECONDS = 25
QUOTA_RECORDS_PER_S = 1_000
QUOTA_BYTES_PER_S = MIB
TARGET_SHARE = 0.9
# The loop's pause after a call with rejected entries: short against the quota's 1 s window.
LOOP_BACKOFF_S = 0.1
INDEX_BYTES = 8
# Every record: its index (8 bytes, big-endian), then the same 92 random bytes.
FILLER = random.Random(9).randbytes(RECORD_BYTES - INDEX_BYTES)
# The write quota as AWS sets it; reads unthrottled, for the read-back.
QUOTA_RULES = Rules(
    get_records_calls_per_s=None, read_bytes_per_s=None, get_shard_iterator_calls_per_s=None
)


def balanced_keys(shards: int, count: int = QUOTA_KEYS) -> list[str]:
    """``count`` partition keys, the same number routed to each of ``shards`` even shards.

    The MD5 of 1,000 keys such as ``key-0`` .. ``key-999`` puts 228 to 267 of them on one
    shard of 4: the busiest shard would then set the time of any writer, and the figure
    would measure the keys' spread, not the sink."""
    per_shard, keys = count // shards, list[str]()
    taken = [0] * shards
    i = 0
    while len(keys) < per_shard * shards:
        key = f"key-{i:04d}"
        shard = hash_key_of(key, None) * shards >> 128
        if taken[shard] < per_shard:
            taken[shard] += 1
            keys.append(key)
        i += 1
    return keys


def record_of(index: int, keys: list[str]) -> tuple[bytes, str]:
    return index.to_bytes(INDEX_BYTES, "big") + FILLER, keys[index % len(keys)]


def records_for(shards: int, seconds: float, aggregate: bool) -> int:
    """User records that fill ``shards`` shards' quota for ``seconds``."""
    per_s = QUOTA_BYTES_PER_S // RECORD_BYTES if aggregate else QUOTA_RECORDS_PER_S
    return int(shards * per_s * seconds)


def frame(spark: Any, n: int, keys: list[str]) -> Any:
    """Records 0..n-1 as ``record_of`` makes them, built in the JVM (two partitions, one per
    core) and cached."""
    key_array = ", ".join(f"'{key}'" for key in keys)
    df = spark.range(0, n, numPartitions=2).selectExpr(
        f"concat(unhex(lpad(hex(id), {2 * INDEX_BYTES}, '0')), unhex('{FILLER.hex()}')) AS data",
        f"element_at(array({key_array}), cast(id % {len(keys)} AS int) + 1) AS partitionKey",
    )
    return df.cache()


@dataclass(frozen=True)
class Check:
    """What a read-back of ``n`` written records found."""

    missing: int
    duplicated: int
    altered: int  # records that are none of those written (data or key changed)
    kinesis_bytes: int  # data and partition key of the Kinesis records, as the quota counts

    @property
    def exact(self) -> bool:
        return not (self.missing or self.duplicated or self.altered)

    def describe(self) -> str:
        if self.exact:
            return "every record once"
        return f"{self.missing:,} missing, {self.duplicated:,} duplicated, {self.altered:,} altered"


def kinesis_records(client: Any, stream: str) -> Iterator[dict[str, Any]]:
    """Every Kinesis record of ``stream``, shard by shard from TRIM_HORIZON."""
    for shard in client.list_shards(StreamName=stream)["Shards"]:
        iterator = client.get_shard_iterator(
            StreamName=stream, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while iterator:
            page = client.get_records(ShardIterator=iterator, Limit=10_000)
            yield from page["Records"]
            if not page["Records"] and page.get("MillisBehindLatest", 0) == 0:
                break
            iterator = page.get("NextShardIterator")


def read_back(client: Any, stream: str, n: int, keys: list[str]) -> Check:
    counts = bytearray(n)
    altered = kinesis_bytes = 0
    for record in kinesis_records(client, stream):
        kinesis_bytes += len(record["Data"]) + len(record["PartitionKey"].encode())
        users = deaggregate(record["Data"])
        pairs = (
            [(record["Data"], record["PartitionKey"])]
            if users is None
            else [(user.data, user.partition_key) for user in users]
        )
        for data, key in pairs:
            index = int.from_bytes(data[:INDEX_BYTES], "big")
            if index >= n or data[INDEX_BYTES:] != FILLER or key != keys[index % len(keys)]:
                altered += 1
            elif counts[index] < 255:
                counts[index] += 1
    missing = counts.count(0)
    return Check(missing, n - missing - counts.count(1), altered, kinesis_bytes)


def put_loop(client: Any, stream: str, *, n: int, keys: list[str], aggregate: bool) -> None:
    """The plain producer: PutRecords of 500 records (or of aws_kinesis_agg aggregates) one
    call after another; rejected entries go back to the front and are sent again after
    ``LOOP_BACKOFF_S``."""

    def entries() -> Iterator[dict[str, Any]]:
        if not aggregate:
            for i in range(n):
                data, key = record_of(i, keys)
                yield {"Data": data, "PartitionKey": key}
            return
        aggregator = RecordAggregator()
        for i in range(n):
            data, key = record_of(i, keys)
            full = aggregator.add_user_record(key, data)
            if full is not None:
                yield _aggregate_entry(full)
        last = aggregator.clear_and_get()
        if last is not None:
            yield _aggregate_entry(last)

    source = entries()
    pending: list[dict[str, Any]] = []
    exhausted = False
    while True:
        call: list[dict[str, Any]] = []
        size = 0
        while len(call) < limits.PUT_RECORDS_MAX_RECORDS:
            if not pending:
                if exhausted:
                    break
                entry = next(source, None)
                if entry is None:
                    exhausted = True
                    break
                pending.append(entry)
            entry = pending[0]
            entry_size = len(entry["Data"]) + len(entry["PartitionKey"])
            if call and size + entry_size > limits.PUT_RECORDS_MAX_BYTES:
                break
            call.append(pending.pop(0))
            size += entry_size
        if not call:
            return
        resp = client.put_records(StreamName=stream, Records=call)
        if resp.get("FailedRecordCount"):
            rejected = [e for e, r in zip(call, resp["Records"], strict=True) if "ErrorCode" in r]
            pending[:0] = rejected
            time.sleep(LOOP_BACKOFF_S)


def _aggregate_entry(record: Any) -> dict[str, Any]:
    key, hash_key, data = record.get_contents()
    entry = {"Data": data, "PartitionKey": key}
    if hash_key is not None:
        entry["ExplicitHashKey"] = hash_key
    return entry


@dataclass(frozen=True)
class Outcome:
    seconds: float
    throttled: int  # entries the server refused over the quota
    calls: int
    check: Check


def measure(
    server: KinesisServer, shards: int, n: int, keys: list[str], write: Callable[[str], None]
) -> Outcome:
    """Time ``write(stream)`` into a fresh stream of ``shards`` shards, then read it back."""
    client = kinesis(server.endpoint)
    stream = f"quota-{uuid.uuid4().hex[:8]}"
    client.create_stream(StreamName=stream, ShardCount=shards)
    server.reset_stats()
    start = time.perf_counter()
    write(stream)
    seconds = time.perf_counter() - start
    stats = server.stats()
    throttled = int(stats["throttled"].get("PutRecords", 0))
    calls = int(stats["calls"].get("PutRecords", 0))
    return Outcome(seconds, throttled, calls, read_back(client, stream, n, keys))


def share(outcome: Outcome, shards: int, n: int, aggregate: bool) -> tuple[float, str]:
    """The fraction of the quota used, and the per-shard rate as text."""
    if aggregate:
        per_shard = n * RECORD_BYTES / outcome.seconds / shards
        return per_shard / QUOTA_BYTES_PER_S, f"{per_shard / 1024:,.0f} KiB/s"
    per_shard = n / outcome.seconds / shards
    return per_shard / QUOTA_RECORDS_PER_S, f"{per_shard:,.0f} records/s"


def run(repeat: int, shards: int = QUOTA_SHARDS, seconds: float = QUOTA_SECONDS) -> None:
    del repeat  # one run of each: a run is tens of seconds of the quota
    print(
        f"(i) sink at the write quota: {shards} shards of the Kinesis test server (subprocess, "
        f"127.0.0.1; {QUOTA_RECORDS_PER_S:,} records/s and 1 MiB/s per shard), records of "
        f"{RECORD_BYTES} bytes over {QUOTA_KEYS:,} keys ({QUOTA_KEYS // shards} routed to each "
        f"shard), {seconds:g} s of quota each; Spark "
        "local[2] batch write vs a boto3 PutRecords loop"
    )
    spark = spark_session()
    with kinesis_server(rules=QUOTA_RULES) as server:
        endpoint = server.endpoint

        def spark_write(df: Any, aggregate: bool) -> Callable[[str], None]:
            def write(stream: str) -> None:
                df.write.format("kinesis").options(
                    streamName=stream,
                    region=REGION,
                    endpointUrl=endpoint,
                    aggregate=str(aggregate).lower(),
                    logLevel="ERROR",  # a warning per throttled call otherwise
                ).mode("append").save()

            return write

        # Warm-up: JVM, Python workers, clients.
        keys = balanced_keys(shards)
        warm = frame(spark, 2_000, keys)
        measure(server, shards, 2_000, keys, spark_write(warm, False))
        warm.unpersist()
        for aggregate in (True, False):
            n = records_for(shards, seconds, aggregate)
            df = frame(spark, n, keys)
            assert df.count() == n
            client = kinesis(endpoint)
            ours = measure(server, shards, n, keys, spark_write(df, aggregate))
            df.unpersist()
            loop = measure(
                server,
                shards,
                n,
                keys,
                functools.partial(put_loop, client, n=n, keys=keys, aggregate=aggregate),
            )
            name = "aggregated" if aggregate else "plain"
            print(f"  {name}, {n:,} records")
            rows = []
            for who, outcome in (("Spark batch write", ours), ("boto3 loop, one process", loop)):
                used, rate = share(outcome, shards, n, aggregate)
                rows.append((used, rate))
                counted = outcome.check.kinesis_bytes / outcome.seconds / shards / MIB
                framing = (
                    f"; {counted:.1%} of 1 MiB/s as Kinesis counts bytes, KPL framing and "
                    "keys included"
                    if aggregate
                    else ""
                )
                print(
                    f"    {who:<24} {outcome.seconds:6.2f} s  {rate:>14} per shard "
                    f"({used:.1%} of the quota{framing}); {outcome.throttled:,} entries "
                    f"refused over the quota in {outcome.calls:,} PutRecords calls; read "
                    f"back: {outcome.check.describe()}"
                )
            (used, rate), (loop_used, loop_rate) = rows
            unit = "user bytes/s" if aggregate else "user records/s"
            quota = "1 MiB/s" if aggregate else f"{QUOTA_RECORDS_PER_S:,} records/s"
            figure(
                "i",
                f"sink at the write quota, {name} ({unit} per shard), {shards} shards, "
                f"{n:,} records of {RECORD_BYTES} bytes: Spark vs a boto3 loop",
                f"**{used:.1%}** ({rate}) vs {loop_used:.1%} ({loop_rate}); "
                f"{ours.throttled:,} vs {loop.throttled:,} entries throttled; read back: "
                f"{ours.check.describe()} vs {loop.check.describe()}",
                f">= {TARGET_SHARE:.0%} of {quota} per shard, nothing lost or duplicated",
                used >= TARGET_SHARE and ours.check.exact,
            )
    spark.stop()
