"""An in-memory Kinesis Data Streams server for the bench, in a subprocess on 127.0.0.1.

It imitates the Kinesis JSON protocol (``x-amz-json-1.1``, ``X-Amz-Target:
Kinesis_20131202.<Operation>``) closely enough for boto3 and for this package's source:
DescribeStreamSummary, DescribeStream, ListShards, GetShardIterator, GetRecords, PutRecord
and PutRecords. Moto serves about 20k records/s, so a bench on moto measures moto; this
server serves GetRecords from response bodies built in memory when it starts, so a call
is a dict look-up and a socket write, and the bench measures the client.

    with kinesis_server({"s": StreamSpec(shards=2, records_per_shard=100_000)}) as server:
        client = boto3.client("kinesis", endpoint_url=server.endpoint, ...)
        ...
        server.stats()        # calls per operation, GetRecords calls per shard per second
        server.reset_stats()

Streams hold 1 to 10,000 shards, hash key ranges splitting 0..2**128-1 evenly, ids
``shardId-000000000000``. A shard's records are plain records of ``record_bytes``, KPL
aggregates of 100-byte user records (``common.kpl_aggregates``) or 1 MiB records, with
56-digit sequence numbers growing within a shard and millisecond arrival times in the recent
past. The chain of pages a reader walks from TRIM_HORIZON with Limit=10,000 is built at
start; any other page (a Limit=1 probe, a start in the middle of a page) is built on first
use from each record's pre-serialised JSON and cached.

The server runs in its own process, so its CPU is not charged to the measured process. It
is one asyncio loop: calls from several connections overlap, each one waiting
``latency_ms`` before it answers (20 ms mimics AWS seen from an EC2 host).

AWS rules it enforces: GetRecords returns at most 10,000 records (``Limit`` from 1 to
10,000 honoured) and at most 10 MiB of data and keys per call, at least one record when
there is one; a page that reaches the shard's tip has ``MillisBehindLatest`` 0 and an empty
page at the tip still carries a next iterator; PutRecord(s) route a record by the MD5 of its
partition key (or its ExplicitHashKey) into the shard owning that hash; PutRecords takes at
most 500 records; ListShards pages by ``NextToken`` (MaxResults 1 to 10,000, default 1,000;
NextToken excludes StreamName), honours ``ExclusiveStartShardId`` and the
``AFTER_SHARD_ID`` ShardFilter; an unknown stream or shard is ``ResourceNotFoundException``;
a sequence number that is not the shard's is ``InvalidArgumentException``.

What it does not enforce: the 5 GetRecords and 5 GetShardIterator calls/s and 2 MiB/s per
shard (it counts the calls instead: ``stats()`` gives the most calls of one shard in any
1-second window), PutRecords' 1 MiB/s per shard and 5 MiB per call, iterator expiry (5 min on
AWS; here an iterator never expires, so pre-built pages can hold their next iterator),
retention, resharding, enhanced fan-out, stream creation and deletion, signatures and
credentials. Records are never encrypted.
"""

from __future__ import annotations

import asyncio
import base64
import bisect
import contextlib
import hashlib
import json
import os
import random
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from kinesis_source import limits

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REGION = "us-east-1"
ACCOUNT = "123456789012"
HASH_SPACE = 2**128
# Sequence number of record i of shard s: FIRST_SEQUENCE + s * SHARD_STRIDE + i * RECORD_STRIDE,
# 56 digits like AWS' (which grow within a shard and say nothing across shards).
FIRST_SEQUENCE = 49_590_338_271_490_256_608_559_692_538_361_571_095_921_575_989_136_588_898
SHARD_STRIDE = 2**100
RECORD_STRIDE = 2**40
MIB = 1024 * 1024
LIST_SHARDS_DEFAULT = 1_000
LIST_SHARDS_MAX = 10_000
DESCRIBE_STREAM_DEFAULT = 100
# The newest pre-built record arrived this long before the server started, the others
# ARRIVAL_STEP_MS apart before it: recent enough for any retention check.
ARRIVAL_GAP_MS = 1_000
ARRIVAL_STEP_MS = 1
KINDS = ("plain", "kpl", "mib")
# Pages built on demand are kept until this many, then the cache starts over.
ON_DEMAND_CACHE = 8_192
_CONTROL = "KinesisBench."


@dataclass(frozen=True)
class StreamSpec:
    """A stream's shards and pre-built content.

    ``kind``: ``plain`` (``records_per_shard`` records of ``record_bytes`` random bytes),
    ``kpl`` (``records_per_shard`` user records of ``record_bytes`` bytes, packed into KPL
    aggregates of up to 51,200 bytes) or ``mib`` (``records_per_shard`` records of 1 MiB,
    data and key). Only the first ``shards_with_data`` shards hold records (all by default);
    every shard takes PutRecord(s).
    """

    shards: int = 1
    records_per_shard: int = 0
    kind: str = "plain"
    record_bytes: int = 100
    shards_with_data: int | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.shards <= 10_000:
            raise ValueError(f"shards must be 1 to 10,000, not {self.shards}")
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {self.kind!r}")


@dataclass(frozen=True)
class StreamInfo:
    """What the server built for one stream, as the child reports it."""

    name: str
    arn: str
    shard_ids: list[str]
    records_per_shard: int  # Kinesis records (aggregates for kpl) in each shard with data
    user_records: int  # rows a reader that deaggregates gets from the whole stream


# --------------------------------------------------------------------------------------
# The child: streams in memory and the asyncio HTTP server.


class ApiError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def sequence_number(shard: int, index: int) -> str:
    return str(FIRST_SEQUENCE + shard * SHARD_STRIDE + index * RECORD_STRIDE)


def hash_ranges(shards: int) -> list[tuple[int, int]]:
    starts = [i * HASH_SPACE // shards for i in range(shards)] + [HASH_SPACE]
    return [(starts[i], starts[i + 1] - 1) for i in range(shards)]


def record_json(seq: str, arrival_ms: int, data_b64: str, key: str) -> bytes:
    return (
        f'{{"SequenceNumber":"{seq}","ApproximateArrivalTimestamp":{arrival_ms / 1000:.3f},'
        f'"Data":"{data_b64}","PartitionKey":{json.dumps(key)}}}'
    ).encode()


class Shard:
    """One shard's records as JSON fragments, and the pages built from them."""

    def __init__(self, stream: int, index: int, start_hash: int, end_hash: int) -> None:
        self.stream = stream
        self.index = index
        self.shard_id = f"shardId-{index:012d}"
        self.start_hash = start_hash
        self.end_hash = end_hash
        self.fragments: list[bytes] = []
        self.arrivals: list[int] = []
        self.cum_bytes: list[int] = [0]  # data + key bytes before record i
        self.prebuilt: dict[tuple[int, int], tuple[bytes, int, int]] = {}
        self.built: dict[tuple[int, int], tuple[bytes, int, int]] = {}

    def append(self, data: bytes, key: str, arrival_ms: int) -> str:
        seq = sequence_number(self.index, len(self.fragments))
        self.append_encoded(
            seq, base64.b64encode(data).decode(), len(data) + len(key), key, arrival_ms
        )
        return seq

    def append_encoded(self, seq: str, b64: str, size: int, key: str, arrival_ms: int) -> None:
        self.fragments.append(record_json(seq, arrival_ms, b64, key))
        self.arrivals.append(arrival_ms)
        self.cum_bytes.append(self.cum_bytes[-1] + size)

    def iterator(self, position: int) -> str:
        return base64.b64encode(f"{self.stream}.{self.index}.{position}".encode()).decode()

    def index_of(self, seq: str) -> int:
        try:
            offset = int(seq) - FIRST_SEQUENCE - self.index * SHARD_STRIDE
        except ValueError:
            offset = -1
        index, rest = divmod(offset, RECORD_STRIDE)
        if offset < 0 or rest or index >= len(self.fragments):
            raise ApiError(
                "InvalidArgumentException",
                f"StartingSequenceNumber {seq} used in GetShardIterator on shard "
                f"{self.shard_id} is not a sequence number of this shard",
            )
        return index

    def page(self, start: int, limit: int) -> tuple[bytes, int]:
        """The GetRecords body from record ``start`` with ``limit``, and its record count."""
        count = len(self.fragments)
        for cache in (self.prebuilt, self.built):
            hit = cache.get((start, limit))
            # A page that ended at the tip is stale once records were appended.
            if hit is not None and (hit[1] < hit[2] or hit[2] == count):
                return hit[0], hit[1] - start
        body, end = self.build(start, limit)
        if len(self.built) >= ON_DEMAND_CACHE:
            self.built.clear()
        self.built[(start, limit)] = (body, end, count)
        return body, end - start

    def build(self, start: int, limit: int) -> tuple[bytes, int]:
        count = len(self.fragments)
        start = min(start, count)
        by_bytes = (
            bisect.bisect_right(
                self.cum_bytes, self.cum_bytes[start] + limits.GET_RECORDS_MAX_BYTES
            )
            - 1
        )
        end = max(min(count, start + limit, by_bytes), min(count, start + 1))
        behind = 0 if end == count else max(1, self.arrivals[-1] - self.arrivals[end - 1])
        body = b"".join(
            (
                b'{"Records":[',
                b",".join(self.fragments[start:end]),
                b'],"NextShardIterator":"',
                self.iterator(end).encode(),
                b'","MillisBehindLatest":',
                str(behind).encode(),
                b"}",
            )
        )
        return body, end

    def prebuild(self) -> None:
        start, count = 0, len(self.fragments)
        while start < count:
            body, end = self.build(start, limits.GET_RECORDS_MAX_RECORDS)
            self.prebuilt[(start, limits.GET_RECORDS_MAX_RECORDS)] = (body, end, count)
            start = end

    def describe(self) -> dict[str, Any]:
        return {
            "ShardId": self.shard_id,
            "HashKeyRange": {
                "StartingHashKey": str(self.start_hash),
                "EndingHashKey": str(self.end_hash),
            },
            "SequenceNumberRange": {"StartingSequenceNumber": sequence_number(self.index, 0)},
        }


class Stream:
    def __init__(self, number: int, name: str, spec: StreamSpec, created_s: float) -> None:
        self.number = number
        self.name = name
        self.arn = f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/{name}"
        self.created_s = created_s
        self.shards = [
            Shard(number, i, lo, hi) for i, (lo, hi) in enumerate(hash_ranges(spec.shards))
        ]
        self.starts = [s.start_hash for s in self.shards]
        self.records_per_shard = 0
        self.user_records = 0
        self.fill(spec, created_s)

    def fill(self, spec: StreamSpec, now_s: float) -> None:
        rng = random.Random(f"{self.name}/{spec}")
        payloads = self.payloads(spec, rng)
        n = len(payloads)
        self.records_per_shard = n
        with_data = self.shards[
            : spec.shards if spec.shards_with_data is None else spec.shards_with_data
        ]
        self.user_records = len(with_data) * (spec.records_per_shard if n else 0)
        newest = int(now_s * 1000) - ARRIVAL_GAP_MS
        encoded = [
            (base64.b64encode(data).decode(), len(data) + len(key), key) for data, key in payloads
        ]
        for shard in with_data:
            for i, (b64, size, key) in enumerate(encoded):
                arrival = newest - (n - 1 - i) * ARRIVAL_STEP_MS
                shard.append_encoded(sequence_number(shard.index, i), b64, size, key, arrival)
            shard.prebuild()

    @staticmethod
    def payloads(spec: StreamSpec, rng: random.Random) -> list[tuple[bytes, str]]:
        if spec.records_per_shard <= 0:
            return []
        if spec.kind == "kpl":
            sys.path.insert(0, REPO_ROOT)
            from scripts.benchmarks.common import kpl_aggregates

            return [
                (blob, f"agg-{i:06d}")
                for i, blob in enumerate(kpl_aggregates(rng, spec.records_per_shard))
            ]
        if spec.kind == "mib":
            # A few distinct 1 MiB blobs, shared: memory holds each base64 text once per page.
            keys = [f"big-{i:06d}" for i in range(spec.records_per_shard)]
            blobs = [rng.randbytes(MIB - len(keys[0])) for _ in range(4)]
            return [(blobs[i % 4], k) for i, k in enumerate(keys)]
        return [
            (rng.randbytes(spec.record_bytes), f"device-{rng.randrange(10_000):05d}")
            for _ in range(spec.records_per_shard)
        ]

    def shard_for(self, key: str, explicit_hash: str | None) -> Shard:
        if explicit_hash is not None:
            value = int(explicit_hash)
        else:
            value = int.from_bytes(hashlib.md5(key.encode()).digest(), "big")
        return self.shards[bisect.bisect_right(self.starts, value) - 1]

    def info(self) -> dict[str, Any]:
        return asdict(
            StreamInfo(
                self.name,
                self.arn,
                [s.shard_id for s in self.shards],
                self.records_per_shard,
                self.user_records,
            )
        )


class Stats:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.calls: dict[str, int] = {}
        self.get_records: dict[str, list[float]] = {}
        self.get_shard_iterator: dict[str, list[float]] = {}
        self.records_served = 0

    def as_dict(self) -> dict[str, Any]:
        def busiest(times: dict[str, list[float]]) -> tuple[int, str | None]:
            best, who = 0, None
            for key, seen in times.items():
                n = max_in_window(seen, 1.0)
                if n > best:
                    best, who = n, key
            return best, who

        gr_max, gr_shard = busiest(self.get_records)
        gsi_max, gsi_shard = busiest(self.get_shard_iterator)
        return {
            "calls": dict(self.calls),
            "get_records_calls": sum(len(t) for t in self.get_records.values()),
            "get_records_max_per_shard_1s": gr_max,
            "get_records_busiest_shard": gr_shard,
            "get_shard_iterator_max_per_shard_1s": gsi_max,
            "get_shard_iterator_busiest_shard": gsi_shard,
            "get_records_per_shard": {k: len(v) for k, v in self.get_records.items()},
            "records_served": self.records_served,
        }


def max_in_window(times: list[float], window_s: float) -> int:
    """The most of ``times`` (sorted) in any half-open window of ``window_s`` seconds."""
    best, lo = 0, 0
    for hi, t in enumerate(times):
        while t - times[lo] >= window_s:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


class Server:
    def __init__(self, specs: Mapping[str, StreamSpec], latency_ms: float) -> None:
        now = time.time()
        self.streams = {
            name: Stream(i, name, spec, now) for i, (name, spec) in enumerate(specs.items())
        }
        self.by_number = list(self.streams.values())
        self.by_arn = {s.arn: s for s in self.streams.values()}
        self.latency_s = latency_ms / 1000
        self.stats = Stats()

    # -- HTTP

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                headers = {}
                for line in lines[1:]:
                    name, sep, value = line.partition(":")
                    if sep:
                        headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                target = headers.get("x-amz-target", "")
                status, payload = self.dispatch(target, body)
                if self.latency_s and not target.startswith(_CONTROL):
                    await asyncio.sleep(self.latency_s)
                writer.write(
                    (
                        f"HTTP/1.1 {status} {'OK' if status == 200 else 'Bad Request'}\r\n"
                        "Content-Type: application/x-amz-json-1.1\r\n"
                        f"Content-Length: {len(payload)}\r\n"
                        f"x-amzn-RequestId: {random.getrandbits(64):016x}\r\n\r\n"
                    ).encode()
                )
                writer.write(payload)
                await writer.drain()
                if headers.get("connection", "").lower() == "close":
                    return
        except ConnectionError:
            return
        finally:
            writer.close()

    def dispatch(self, target: str, body: bytes) -> tuple[int, bytes]:
        if target.startswith(_CONTROL):
            if target == _CONTROL + "ResetStats":
                self.stats.reset()
                return 200, b"{}"
            return 200, json.dumps(self.stats.as_dict()).encode()
        op = target.rpartition(".")[2]
        self.stats.calls[op] = self.stats.calls.get(op, 0) + 1
        try:
            request = json.loads(body or b"{}")
            if op == "GetRecords":
                return 200, self.get_records(request)
            handler = getattr(self, "op_" + op, None)
            if handler is None:
                raise ApiError("UnknownOperationException", f"{op} is not served here")
            return 200, json.dumps(handler(request)).encode()
        except ApiError as exc:
            return 400, json.dumps({"__type": exc.code, "message": exc.message}).encode()
        except (KeyError, ValueError, TypeError) as exc:
            error = {"__type": "InvalidArgumentException", "message": f"bad request: {exc!r}"}
            return 400, json.dumps(error).encode()

    # -- operations

    def stream(self, request: Mapping[str, Any]) -> Stream:
        arn = request.get("StreamARN")
        found = self.by_arn.get(arn) if arn else self.streams.get(request.get("StreamName", ""))
        if found is None:
            raise ApiError(
                "ResourceNotFoundException",
                f"Stream {arn or request.get('StreamName')} under account {ACCOUNT} not found.",
            )
        return found

    def shard(self, stream: Stream, shard_id: str) -> Shard:
        try:
            number = shard_id.rsplit("-", 1)[1]
            shard = stream.shards[int(number)]
        except (ValueError, IndexError):
            shard = None
        if shard is None or shard.shard_id != shard_id:
            raise ApiError(
                "ResourceNotFoundException",
                f"Shard {shard_id} in stream {stream.name} under account {ACCOUNT} does not exist",
            )
        return shard

    def get_records(self, request: Mapping[str, Any]) -> bytes:
        token = request["ShardIterator"]
        try:
            number, index, position = (
                int(p) for p in base64.b64decode(token, validate=True).decode().split(".")
            )
            shard = self.by_number[number].shards[index]
        except (ValueError, IndexError) as exc:
            raise ApiError("InvalidArgumentException", f"Invalid ShardIterator: {exc}") from exc
        limit = int(request.get("Limit", limits.GET_RECORDS_MAX_RECORDS))
        if not 1 <= limit <= limits.GET_RECORDS_MAX_RECORDS:
            raise ApiError(
                "InvalidArgumentException",
                f"Limit {limit} must be between 1 and {limits.GET_RECORDS_MAX_RECORDS}",
            )
        self.stats.get_records.setdefault(shard.shard_id, []).append(time.monotonic())
        body, count = shard.page(position, limit)
        self.stats.records_served += count
        return body

    def op_GetShardIterator(self, request: Mapping[str, Any]) -> dict[str, Any]:
        stream = self.stream(request)
        shard = self.shard(stream, request["ShardId"])
        self.stats.get_shard_iterator.setdefault(shard.shard_id, []).append(time.monotonic())
        kind = request["ShardIteratorType"]
        if kind == "TRIM_HORIZON":
            position = 0
        elif kind == "LATEST":
            position = len(shard.fragments)
        elif kind == "AT_SEQUENCE_NUMBER":
            position = shard.index_of(request["StartingSequenceNumber"])
        elif kind == "AFTER_SEQUENCE_NUMBER":
            position = shard.index_of(request["StartingSequenceNumber"]) + 1
        elif kind == "AT_TIMESTAMP":
            position = bisect.bisect_left(shard.arrivals, timestamp_ms(request["Timestamp"]))
        else:
            raise ApiError("InvalidArgumentException", f"ShardIteratorType {kind!r} is not valid")
        return {"ShardIterator": shard.iterator(position)}

    def op_DescribeStreamSummary(self, request: Mapping[str, Any]) -> dict[str, Any]:
        stream = self.stream(request)
        return {"StreamDescriptionSummary": self.summary(stream)}

    def summary(self, stream: Stream) -> dict[str, Any]:
        return {
            "StreamName": stream.name,
            "StreamARN": stream.arn,
            "StreamStatus": "ACTIVE",
            "StreamModeDetails": {"StreamMode": "PROVISIONED"},
            "RetentionPeriodHours": limits.RETENTION_DEFAULT_HOURS,
            "StreamCreationTimestamp": stream.created_s,
            "EnhancedMonitoring": [{"ShardLevelMetrics": []}],
            "EncryptionType": "NONE",
            "OpenShardCount": len(stream.shards),
            "ConsumerCount": 0,
        }

    def op_DescribeStream(self, request: Mapping[str, Any]) -> dict[str, Any]:
        stream = self.stream(request)
        limit = int(request.get("Limit", DESCRIBE_STREAM_DEFAULT))
        after = request.get("ExclusiveStartShardId")
        first = 0 if after is None else self.shard(stream, after).index + 1
        shards = stream.shards[first : first + limit]
        summary = self.summary(stream)
        return {
            "StreamDescription": {
                **{k: summary[k] for k in ("StreamName", "StreamARN", "StreamStatus")},
                "StreamModeDetails": summary["StreamModeDetails"],
                "Shards": [s.describe() for s in shards],
                "HasMoreShards": first + limit < len(stream.shards),
                "RetentionPeriodHours": summary["RetentionPeriodHours"],
                "StreamCreationTimestamp": stream.created_s,
                "EnhancedMonitoring": summary["EnhancedMonitoring"],
                "EncryptionType": "NONE",
            }
        }

    def op_ListShards(self, request: Mapping[str, Any]) -> dict[str, Any]:
        size = int(request.get("MaxResults", LIST_SHARDS_DEFAULT))
        if not 1 <= size <= LIST_SHARDS_MAX:
            raise ApiError("InvalidArgumentException", f"MaxResults {size} must be 1 to 10000")
        token = request.get("NextToken")
        if token is not None:
            if "StreamName" in request or "StreamARN" in request:
                raise ApiError(
                    "InvalidArgumentException",
                    "NextToken and StreamName cannot be provided together.",
                )
            try:
                number, first = (int(p) for p in base64.b64decode(token).decode().split("."))
                stream = self.by_number[number]
            except (ValueError, IndexError) as exc:
                raise ApiError("InvalidArgumentException", f"Invalid NextToken: {exc}") from exc
        else:
            stream = self.stream(request)
            first = 0
            after = request.get("ExclusiveStartShardId")
            shard_filter = request.get("ShardFilter") or {}
            if shard_filter.get("Type") == "AFTER_SHARD_ID":
                after = shard_filter["ShardId"]
            if after is not None:
                # Any shard id orders; one past the end lists nothing, as on AWS.
                first = bisect.bisect_right([s.shard_id for s in stream.shards], after)
        shards = stream.shards[first : first + size]
        response: dict[str, Any] = {"Shards": [s.describe() for s in shards]}
        if first + size < len(stream.shards):
            response["NextToken"] = base64.b64encode(
                f"{stream.number}.{first + size}".encode()
            ).decode()
        return response

    def op_PutRecord(self, request: Mapping[str, Any]) -> dict[str, Any]:
        stream = self.stream(request)
        return self.put(stream, request)

    def op_PutRecords(self, request: Mapping[str, Any]) -> dict[str, Any]:
        stream = self.stream(request)
        entries = request["Records"]
        if not 1 <= len(entries) <= limits.PUT_RECORDS_MAX_RECORDS:
            raise ApiError(
                "InvalidArgumentException",
                f"PutRecords takes 1 to {limits.PUT_RECORDS_MAX_RECORDS} records, "
                f"not {len(entries)}",
            )
        return {"FailedRecordCount": 0, "Records": [self.put(stream, e) for e in entries]}

    @staticmethod
    def put(stream: Stream, entry: Mapping[str, Any]) -> dict[str, Any]:
        key = entry["PartitionKey"]
        shard = stream.shard_for(key, entry.get("ExplicitHashKey"))
        data = base64.b64decode(entry["Data"])
        seq = shard.append(data, key, int(time.time() * 1000))
        return {"ShardId": shard.shard_id, "SequenceNumber": seq}


def timestamp_ms(value: Any) -> int:
    if isinstance(value, (int, float)):
        return round(value * 1000)
    from datetime import datetime

    return round(datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp() * 1000)


async def child_main() -> None:
    config = json.loads(sys.stdin.readline())
    specs = {name: StreamSpec(**spec) for name, spec in config["streams"].items()}
    server = Server(specs, float(config["latency_ms"]))
    listener = await asyncio.start_server(server.serve, "127.0.0.1", 0, backlog=1024)
    port = listener.sockets[0].getsockname()[1]
    ready = {"port": port, "streams": {n: s.info() for n, s in server.streams.items()}}
    sys.stdout.write(json.dumps(ready) + "\n")
    sys.stdout.flush()
    async with listener:
        await listener.serve_forever()


# --------------------------------------------------------------------------------------
# The parent: start, ask, stop.


class KinesisServer:
    """The handle a bench holds: the endpoint, what was built, and the call counts."""

    def __init__(self, endpoint: str, streams: dict[str, StreamInfo], pid: int) -> None:
        self.endpoint = endpoint
        self.streams = streams
        self.pid = pid  # the server's process, to leave out of a client's CPU time

    def _control(self, op: str) -> dict[str, Any]:
        request = urllib.request.Request(
            self.endpoint,
            data=b"{}",
            headers={
                "X-Amz-Target": _CONTROL + op,
                "Content-Type": "application/x-amz-json-1.1",
            },
        )
        with urllib.request.urlopen(request, timeout=60) as resp:
            result: dict[str, Any] = json.loads(resp.read())
            return result

    def stats(self) -> dict[str, Any]:
        """Calls per operation since start or the last reset, and per shard: GetRecords calls,
        the most GetRecords (and GetShardIterator) calls of one shard in any 1-second window
        (Kinesis allows 5 per shard, shared by every consumer of the stream)."""
        return self._control("Stats")

    def reset_stats(self) -> None:
        self._control("ResetStats")


@contextlib.contextmanager
def kinesis_server(
    streams: Mapping[str, StreamSpec], latency_ms: float = 0
) -> Iterator[KinesisServer]:
    """The server in a subprocess on 127.0.0.1 with ``streams`` built, until the block ends."""
    env = dict(os.environ)
    path = env.get("PYTHONPATH")
    env["PYTHONPATH"] = REPO_ROOT if not path else os.pathsep.join([REPO_ROOT, path])
    proc = subprocess.Popen(
        [sys.executable, "-m", "scripts.benchmarks.kinesis_server"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=REPO_ROOT,
        env=env,
    )
    try:
        assert proc.stdin is not None and proc.stdout is not None
        config = {"streams": {n: asdict(s) for n, s in streams.items()}, "latency_ms": latency_ms}
        proc.stdin.write((json.dumps(config) + "\n").encode())
        proc.stdin.close()
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(
                f"the bench's Kinesis server exited ({proc.wait()}) before it served"
            )
        ready = json.loads(line)
        infos = {n: StreamInfo(**info) for n, info in ready["streams"].items()}
        yield KinesisServer(f"http://127.0.0.1:{ready['port']}", infos, proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


if __name__ == "__main__":
    asyncio.run(child_main())
