"""Write test records to a Kinesis stream at a target rate.

Two formats: ``words`` (lines of random words, like Spark's KinesisWordCountProducerASL)
and ``orders`` (the order JSON of the Kafka -> Kinesis -> S3 pipeline). With
``--aggregate`` user records are packed KPL-style with aws-kinesis-agg. Records go out in
PutRecords calls of at most 500 records / 5 MiB; the entries a call reports as failed are
sent again, with exponential backoff, until they land or the attempts run out.

With no ``--endpoint-url`` and no ``--aws`` the records go to an embedded emulator that
lives as long as the script. ``produce()`` is the importable core; ``main()`` is the CLI.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aws_kinesis_agg.aggregator import AggRecord
from tqdm import tqdm

from examples.local_kinesis import (
    add_target_arguments,
    embedded_kinesis,
    is_embedded,
    kinesis_client,
)
from kinesis_source import limits

log = logging.getLogger(__name__)

FORMATS = ("words", "orders")
# The word vocabulary: small, so counts repeat and a word count has something to show.
WORDS = (
    "kinesis", "spark", "stream", "shard", "record", "batch", "offset", "python",
    "arrow", "parquet", "order", "query", "lambda", "window", "event", "state",
)  # fmt: skip
CITIES = ("City_a", "City_b", "City_c", "City_d")
STATES = ("State_x", "State_y", "State_z")

# A whole aggregate plus its partition key (UTF-8, at most 4 bytes a character) must fit
# one Kinesis record.
AGGREGATE_MAX_BYTES = limits.RECORD_MAX_BYTES - 4 * limits.PARTITION_KEY_MAX_CHARS
# Retry of failed PutRecords entries: full-jitter exponential backoff, as the AWS SDKs do.
DEFAULT_MAX_ATTEMPTS = 8
BACKOFF_BASE_SECONDS = 0.1
BACKOFF_MAX_SECONDS = 5.0
# The rate is kept per tick: each tick's records are sent, then the producer waits.
TICK_SECONDS = 1.0


class ProducerError(Exception):
    """A record cannot be written: too large, a bad key, or retries ran out."""


@dataclass
class Written:
    """One user record and where it landed (filled in once Kinesis accepted it)."""

    partition_key: str
    data: bytes
    shard_id: str | None = None
    sequence_number: str | None = None
    # The index inside its aggregate; 0 for a record sent on its own (as the source reads it).
    sub_sequence_number: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "partitionKey": self.partition_key,
            "data": self.data.decode("utf-8", errors="replace"),
            "shardId": self.shard_id,
            "sequenceNumber": self.sequence_number,
            "subSequenceNumber": self.sub_sequence_number,
        }


@dataclass(frozen=True)
class Entry:
    """One PutRecords entry: a plain user record or an aggregate of several."""

    partition_key: str
    data: bytes
    # Indices into the run's list of user records.
    members: tuple[int, ...]

    @property
    def size_bytes(self) -> int:
        # PutRecords counts the partition key against the 1 MiB and 5 MiB limits.
        return len(self.data) + len(self.partition_key.encode("utf-8"))


@dataclass
class ProduceStats:
    """What a run wrote: every user record in order, and counts of the API work."""

    records: list[Written] = field(default_factory=list)
    kinesis_records: int = 0
    put_calls: int = 0
    retried_entries: int = 0
    error_codes: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    @property
    def user_records(self) -> int:
        return len(self.records)

    @property
    def data_bytes(self) -> int:
        return sum(len(r.data) for r in self.records)


# -- records -------------------------------------------------------------------------------


def check_record(partition_key: str, data: bytes) -> None:
    """Raise ProducerError unless Kinesis would accept this record."""
    if not 1 <= len(partition_key) <= limits.PARTITION_KEY_MAX_CHARS:
        raise ProducerError(
            f"partition key of {len(partition_key)} characters; "
            f"Kinesis allows 1..{limits.PARTITION_KEY_MAX_CHARS}"
        )
    size = len(data) + len(partition_key.encode("utf-8"))
    if size > limits.RECORD_MAX_BYTES:
        raise ProducerError(
            f"record of {size} bytes (data + partition key); "
            f"Kinesis allows {limits.RECORD_MAX_BYTES}"
        )


def word_line(rng: random.Random, words_per_record: int) -> bytes:
    return " ".join(rng.choice(WORDS) for _ in range(words_per_record)).encode("utf-8")


def order_json(rng: random.Random, order_id: int, order_time: int) -> bytes:
    """An order as the seed pipeline's Kafka datagen wrote it (nested address)."""
    order = {
        "ordertime": order_time,
        "orderid": order_id,
        "itemid": f"Item_{rng.randint(1, 999)}",
        "orderunits": rng.randint(1, 20),
        "address": {
            "city": rng.choice(CITIES),
            "state": rng.choice(STATES),
            "zipcode": rng.randint(10000, 99999),
        },
    }
    return json.dumps(order, separators=(",", ":")).encode("utf-8")


def make_record(
    fmt: str, rng: random.Random, index: int, *, words_per_record: int, order_hours: int
) -> tuple[str, bytes]:
    """The ``index``-th user record of a run: (partition key, data)."""
    if fmt == "words":
        return f"{rng.getrandbits(32):08x}", word_line(rng, words_per_record)
    if fmt == "orders":
        order_id = index + 1
        # Order times fall in the last ``order_hours`` hours, so the ETL sees several hours.
        order_time = int(time.time()) - rng.randrange(max(1, order_hours) * 3600)
        return str(order_id), order_json(rng, order_id, order_time)
    raise ValueError(f"format {fmt!r}; valid formats are: {', '.join(FORMATS)}")


def plain_entries(records: Sequence[Written], first: int) -> list[Entry]:
    """One entry per user record; ``first`` is the index of ``records[0]`` in the run."""
    return [Entry(r.partition_key, r.data, (first + i,)) for i, r in enumerate(records)]


def aggregate_entries(records: Sequence[Written], first: int) -> list[Entry]:
    """Pack user records into as few KPL aggregates as fit in a Kinesis record each."""
    entries: list[Entry] = []
    current = AggRecord(AGGREGATE_MAX_BYTES)
    members: list[int] = []

    def flush() -> None:
        nonlocal current, members
        if members:
            key, _, data = current.get_contents()
            entries.append(Entry(key, data, tuple(members)))
        current = AggRecord(AGGREGATE_MAX_BYTES)
        members = []

    for i, rec in enumerate(records):
        if not current.add_user_record(rec.partition_key, rec.data):
            flush()
            if not current.add_user_record(rec.partition_key, rec.data):
                raise ProducerError(
                    f"user record of {len(rec.data)} bytes does not fit in an aggregate of "
                    f"{AGGREGATE_MAX_BYTES} bytes"
                )
        members.append(first + i)
    flush()
    return entries


def batches(entries: Sequence[Entry]) -> Iterator[list[Entry]]:
    """Split entries, in order, into PutRecords calls within the per-call limits."""
    batch: list[Entry] = []
    size = 0
    for entry in entries:
        if entry.size_bytes > limits.RECORD_MAX_BYTES:
            raise ProducerError(
                f"entry of {entry.size_bytes} bytes; Kinesis allows {limits.RECORD_MAX_BYTES}"
            )
        if batch and (
            len(batch) >= limits.PUT_RECORDS_MAX_RECORDS
            or size + entry.size_bytes > limits.PUT_RECORDS_MAX_BYTES
        ):
            yield batch
            batch, size = [], 0
        batch.append(entry)
        size += entry.size_bytes
    if batch:
        yield batch


# -- sending -------------------------------------------------------------------------------


def backoff_seconds(attempt: int, rng: random.Random) -> float:
    """Full-jitter exponential backoff before retry number ``attempt`` (1-based)."""
    return rng.uniform(0, min(BACKOFF_MAX_SECONDS, BACKOFF_BASE_SECONDS * 2 ** (attempt - 1)))


def put_batch(
    client: Any,
    stream: str,
    batch: Sequence[Entry],
    stats: ProduceStats,
    *,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
) -> list[dict[str, Any]]:
    """PutRecords ``batch``; resend the failed entries until all land. Results in order.

    A partial failure (FailedRecordCount > 0) is not an exception in boto3: each failed
    entry carries an ErrorCode, and only those are sent again. Retried entries can land
    after later records of the same partition key: order across a retry is not kept.
    """
    rng = rng or random.Random()
    results: list[dict[str, Any] | None] = [None] * len(batch)
    pending = list(range(len(batch)))
    for attempt in range(1, max_attempts + 1):
        resp = client.put_records(
            StreamName=stream,
            Records=[
                {"PartitionKey": batch[i].partition_key, "Data": batch[i].data} for i in pending
            ],
        )
        stats.put_calls += 1
        failed: list[int] = []
        for i, result in zip(pending, resp["Records"], strict=True):
            if result.get("ErrorCode"):
                failed.append(i)
                stats.error_codes[result["ErrorCode"]] += 1
            else:
                results[i] = result
        if not failed:
            return [r for r in results if r is not None]
        if attempt == max_attempts:
            codes = ", ".join(f"{code} x{n}" for code, n in stats.error_codes.most_common())
            raise ProducerError(
                f"{len(failed)} of {len(batch)} records to stream {stream!r} still failed "
                f"after {max_attempts} attempts (errors so far: {codes})"
            )
        stats.retried_entries += len(failed)
        delay = backoff_seconds(attempt, rng)
        log.warning(
            "%d of %d PutRecords entries failed; retrying them in %.2f s",
            len(failed),
            len(pending),
            delay,
        )
        sleep(delay)
        pending = failed
    raise AssertionError("unreachable")  # the loop returns or raises


def produce(
    client: Any,
    stream: str,
    *,
    records_per_sec: int = 100,
    duration_s: float = 1.0,
    words_per_record: int = 10,
    fmt: str = "words",
    aggregate: bool = False,
    order_hours: int = 3,
    seed: int | None = None,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    progress: bool = False,
    sleep: Callable[[float], None] = time.sleep,
) -> ProduceStats:
    """Write ``records_per_sec * duration_s`` user records to ``stream`` at that rate.

    Returns every user record written, with the shard, sequence number and (when
    aggregated) sub-sequence number Kinesis gave it.
    """
    if fmt not in FORMATS:
        raise ValueError(f"format {fmt!r}; valid formats are: {', '.join(FORMATS)}")
    if records_per_sec < 1:
        raise ValueError(f"records_per_sec must be >= 1, got {records_per_sec}")
    total = round(records_per_sec * duration_s)
    rng = random.Random(seed)
    stats = ProduceStats()
    started = time.monotonic()
    with tqdm(
        total=total, unit="rec", file=sys.stderr, desc=stream, disable=None if progress else True
    ) as bar:
        tick = 0
        while len(stats.records) < total:
            first = len(stats.records)
            count = min(records_per_sec, total - first)
            tick_records = []
            for i in range(first, first + count):
                key, data = make_record(
                    fmt, rng, i, words_per_record=words_per_record, order_hours=order_hours
                )
                check_record(key, data)
                tick_records.append(Written(key, data))
            stats.records.extend(tick_records)
            entries = (aggregate_entries if aggregate else plain_entries)(tick_records, first)
            for batch in batches(entries):
                results = put_batch(
                    client, stream, batch, stats, max_attempts=max_attempts, sleep=sleep
                )
                for entry, result in zip(batch, results, strict=True):
                    for sub, index in enumerate(entry.members):
                        rec = stats.records[index]
                        rec.shard_id = result["ShardId"]
                        rec.sequence_number = result["SequenceNumber"]
                        rec.sub_sequence_number = sub if aggregate else 0
                stats.kinesis_records += len(batch)
                bar.update(sum(len(e.members) for e in batch))
            tick += 1
            if len(stats.records) < total:
                sleep(max(0.0, started + tick * TICK_SECONDS - time.monotonic()))
    stats.seconds = time.monotonic() - started
    return stats


def write_log(records: Sequence[Written], path: Path) -> None:
    """Write what was written as JSON lines (one user record a line)."""
    with path.open("w", encoding="utf-8") as out:
        for rec in records:
            out.write(json.dumps(rec.to_json()) + "\n")


# -- command line --------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_target_arguments(p, default_stream="pipelines-demo")
    p.add_argument("--shards", type=int, default=2, help="shards of the embedded stream")
    p.add_argument("--records-per-sec", type=int, default=100)
    p.add_argument("--words-per-record", type=int, default=10)
    p.add_argument("--duration", type=float, default=10.0, help="seconds")
    p.add_argument("--format", choices=FORMATS, default="words")
    p.add_argument("--order-hours", type=int, default=3, help="orders span this many hours")
    p.add_argument("--aggregate", action="store_true", help="KPL-aggregate user records")
    p.add_argument("--seed", type=int, help="random seed, for repeatable data")
    p.add_argument("--max-attempts", type=int, default=DEFAULT_MAX_ATTEMPTS)
    p.add_argument("--log-records", type=Path, help="write every user record here (JSONL)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    def run(client: Any) -> ProduceStats:
        return produce(
            client,
            args.stream,
            records_per_sec=args.records_per_sec,
            duration_s=args.duration,
            words_per_record=args.words_per_record,
            fmt=args.format,
            aggregate=args.aggregate,
            order_hours=args.order_hours,
            seed=args.seed,
            max_attempts=args.max_attempts,
            progress=not args.no_progress,
        )

    if not is_embedded(args):
        stats = run(kinesis_client(args.region, args.endpoint_url))
    else:
        with embedded_kinesis(args.stream, args.shards, args.region) as (endpoint, client):
            print(f"embedded Kinesis at {endpoint}, stream {args.stream}", file=sys.stderr)
            stats = run(client)
    if args.log_records:
        write_log(stats.records, args.log_records)
    print(
        json.dumps(
            {
                "stream": args.stream,
                "userRecords": stats.user_records,
                "kinesisRecords": stats.kinesis_records,
                "putRecordsCalls": stats.put_calls,
                "retriedEntries": stats.retried_entries,
                "dataBytes": stats.data_bytes,
                "seconds": round(stats.seconds, 3),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
