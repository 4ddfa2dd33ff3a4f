"""A Kinesis Data Streams server for tests and the bench, in a subprocess on 127.0.0.1.

It speaks the Kinesis JSON protocol (``x-amz-json-1.1``, ``X-Amz-Target:
Kinesis_20131202.<Operation>``) to boto3 and keeps the service's contract where emulators
are kind: each rule of ``kinesis_rules.Rules`` is an option that defaults to the AWS figure
and names the AWS doc it imitates (throttling of reads and writes per shard, page caps,
iterator expiry, empty stretches walked a slice per call with ``MillisBehindLatest`` from
the iterator's position, both shapes of a closed shard's end, retention, ListShards paging).
The modules: ``kinesis_rules`` (the rules, pure), ``kinesis_store`` (streams, shards,
resharding, pure), ``kinesis_api`` (the operations, no HTTP), this one (HTTP, the process,
the handle).
Its rules are checked in tests/aws/test_kinesis_server.py; the source's read against each
of them in tests/source/test_reads_under_service_rules.py.

    with kinesis_server(iterator_ttl_s=5, walk_slice_s=60, empty_history_s=3600) as server:
        client = boto3.client("kinesis", endpoint_url=server.endpoint, ...)
        client.create_stream(StreamName="s", ShardCount=2)   # or streams={"s": StreamSpec(...)}
        server.advance_clock(301)   # age everything without sleeping: iterators expire
        server.stats()              # calls per operation, throttles, GetRecords calls/s per shard
        server.trace()              # stats() then lists every read call and what it served

The bench builds streams with records in them at start (``StreamSpec``) and serves the chain
of GetRecords pages a reader walks from TRIM_HORIZON with Limit=10,000 from bodies built
then, so that a call is a dict look-up and a socket write and the bench measures the client;
it runs with ``Rules.lenient()`` (no throttles, no expiry, no empty stretches).

The server is one asyncio loop in its own process (its CPU is not charged to the process
that measures), each call waiting ``latency_ms`` before it answers (20 ms mimics AWS seen
from an EC2 host). Run alone: ``python -m tests.emulators.kinesis_server --iterator-ttl-s 5``
prints ``{"port": ...}`` and serves until stopped.

Not kept: signatures and credentials, enhanced fan-out (tests/emulators/efo_server.py), the
CREATING/UPDATING/DELETING states (a stream is ACTIVE at once, a reshard is done when the
call returns, so ResourceInUseException during UPDATING and LimitExceededException on shard
counts never come), the control-plane call rates (ListShards 100/s per stream,
DescribeStreamSummary 20/s per account), PutRecords' 5 MiB per call and 1 MiB per record,
UpdateShardCount other than doubling or halving, on-demand capacity, encryption.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import random
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from tests.emulators.kinesis_api import CONTROL, Service
from tests.emulators.kinesis_rules import Rules, page_end
from tests.emulators.kinesis_store import Stream, sequence_number

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MIB = 1024 * 1024
# The newest pre-built record arrived this long before the server started, the others
# ARRIVAL_STEP_MS apart before it: recent enough for any retention check.
ARRIVAL_GAP_MS = 1_000
ARRIVAL_STEP_MS = 1
KINDS = ("plain", "kpl", "mib")
FEED_TICK_S = 0.05


@dataclass(frozen=True)
class StreamSpec:
    """A stream built at start, with records in it.

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
# The child: pre-built streams, the HTTP server, the feeder.


def payloads(name: str, spec: StreamSpec) -> list[tuple[bytes, str]]:
    rng = random.Random(f"{name}/{spec}")
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


def fill(stream: Stream, spec: StreamSpec, rules: Rules, now_ms: int) -> StreamInfo:
    """Records in the stream's first shards, arrived in the recent past, pages pre-built."""
    records = payloads(stream.name, spec)
    n = len(records)
    with_data = stream.shards[
        : spec.shards if spec.shards_with_data is None else spec.shards_with_data
    ]
    newest = now_ms - ARRIVAL_GAP_MS
    encoded = [(base64.b64encode(d).decode(), len(d) + len(k), k) for d, k in records]
    for shard in with_data:
        for i, (b64, size, key) in enumerate(encoded):
            arrival = newest - (n - 1 - i) * ARRIVAL_STEP_MS
            shard.append_encoded(sequence_number(shard.index, i), b64, size, key, arrival)
        if n:
            shard.storage_start_ms = min(shard.storage_start_ms, shard.arrivals[0])
        shard.prebuild(rules.page_max_records, rules.page_max_bytes, page_end)
    user_records = len(with_data) * (spec.records_per_shard if n else 0)
    ids = [s.shard_id for s in stream.shards]
    return StreamInfo(stream.name, stream.arn, ids, n, user_records)


class HttpServer:
    """HTTP/1.1 with keep-alive, enough for botocore; every call goes to ``Service``."""

    def __init__(self, service: Service, latency_ms: float) -> None:
        self.service = service
        self.latency_s = latency_ms / 1000

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                headers = {}
                for line in head.decode("latin-1").split("\r\n")[1:]:
                    name, sep, value = line.partition(":")
                    if sep:
                        headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                target = headers.get("x-amz-target", "")
                status, chunks = self.service.dispatch(target, body)
                if self.latency_s and not target.startswith(CONTROL):
                    await asyncio.sleep(self.latency_s)
                writer.write(
                    (
                        f"HTTP/1.1 {status} {'OK' if status == 200 else 'Bad Request'}\r\n"
                        "Content-Type: application/x-amz-json-1.1\r\n"
                        f"Content-Length: {sum(len(c) for c in chunks)}\r\n"
                        f"x-amzn-RequestId: {random.getrandbits(64):016x}\r\n\r\n"
                    ).encode()
                )
                writer.writelines(chunks)
                await writer.drain()
                if headers.get("connection", "").lower() == "close":
                    return
        except ConnectionError:
            return
        finally:
            writer.close()


async def feeder(service: Service) -> None:
    started = time.monotonic()
    while True:
        await asyncio.sleep(FEED_TICK_S)
        service.data.feed(time.monotonic() - started)


def parse_args(argv: list[str] | None) -> tuple[Rules, dict[str, StreamSpec], float]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--streams", default="{}", help="JSON: name -> StreamSpec fields")
    defaults = Rules()
    for field in fields(Rules):
        parser.add_argument(
            "--" + field.name.replace("_", "-"),
            default=getattr(defaults, field.name),
            type=str if field.name == "end_shape" else json.loads,
            help=f"default {getattr(defaults, field.name)!r}; null: off",
        )
    args = vars(parser.parse_args(argv))
    rules = Rules(**{f.name: args[f.name] for f in fields(Rules)})
    specs = {n: StreamSpec(**s) for n, s in json.loads(args["streams"]).items()}
    return rules, specs, args["latency_ms"]


async def child_main(argv: list[str] | None = None) -> None:
    rules, specs, latency_ms = parse_args(argv)
    service = Service(rules)
    infos = {}
    for name, spec in specs.items():
        stream = service.add_stream(name, spec.shards)
        infos[name] = asdict(fill(stream, spec, rules, service.clock.now_ms()))
    http = HttpServer(service, latency_ms)
    listener = await asyncio.start_server(http.serve, "127.0.0.1", 0, backlog=1024)
    port = listener.sockets[0].getsockname()[1]
    sys.stdout.write(json.dumps({"port": port, "streams": infos}) + "\n")
    sys.stdout.flush()
    tasks = [asyncio.ensure_future(feeder(service))] if rules.feed_record_bytes else []
    async with listener:
        await listener.serve_forever()
    for task in tasks:
        task.cancel()


# --------------------------------------------------------------------------------------
# The parent: start, ask, stop.


class KinesisServer:
    """The handle a test or the bench holds: the endpoint, what was built, and control."""

    def __init__(
        self, endpoint: str, streams: dict[str, StreamInfo], pid: int, rules: Rules
    ) -> None:
        self.endpoint = endpoint
        self.streams = streams
        self.pid = pid  # the server's process, to leave out of a client's CPU time
        self.rules = rules

    def _control(self, op: str, **request: Any) -> dict[str, Any]:
        call = urllib.request.Request(
            self.endpoint,
            data=json.dumps(request).encode(),
            headers={"X-Amz-Target": CONTROL + op, "Content-Type": "application/x-amz-json-1.1"},
        )
        with urllib.request.urlopen(call, timeout=60) as resp:
            result: dict[str, Any] = json.loads(resp.read())
            return result

    def stats(self) -> dict[str, Any]:
        """Calls per operation since start or the last reset; refused (throttled) calls
        per operation; per shard (``stream/shardId``) GetRecords calls and the most of them
        in any 1-second window of the server's clock (Kinesis allows 5 per shard)."""
        return self._control("Stats")

    def reset_stats(self) -> None:
        self._control("ResetStats")

    def trace(self, on: bool = True) -> None:
        """From now on ``stats()["trace"]`` lists every GetRecords and GetShardIterator call
        answered: ``[operation, "stream/shardId", server ms, [arrival ms of each record
        served]]``, in the order served."""
        self._control("Trace", On=on)

    def freeze_clock(self) -> None:
        """Stop the server's clock where it is: from now on only ``advance_clock`` moves it."""
        self._control("FreezeClock")

    def advance_clock(self, seconds: float) -> int:
        """Move the server's clock forward: records age, iterators and NextTokens expire,
        throttle windows pass, the retention trims. Returns the server's time in ms."""
        return int(self._control("AdvanceClock", Seconds=seconds)["NowMs"])

    def configure_stream(
        self, name: str, end_shape: str | None = None, retention_s: float | None = None
    ) -> None:
        """Per stream: the shape of a closed shard's end, the retention in seconds."""
        request: dict[str, Any] = {"StreamName": name}
        if end_shape is not None:
            request["EndShape"] = end_shape
        if retention_s is not None:
            request["RetentionSeconds"] = retention_s
        self._control("ConfigureStream", **request)


@contextlib.contextmanager
def kinesis_server(
    streams: Mapping[str, StreamSpec] | None = None,
    latency_ms: float = 0,
    rules: Rules | None = None,
    **options: Any,
) -> Iterator[KinesisServer]:
    """The server in a subprocess on 127.0.0.1 until the block ends, with ``streams`` built
    and ``rules`` (AWS' by default) changed by ``options`` (``Rules`` field names)."""
    rules = Rules(**{**(rules or Rules()).as_dict(), **options})
    args = ["--latency-ms", str(latency_ms), "--streams"]
    args.append(json.dumps({n: asdict(s) for n, s in (streams or {}).items()}))
    for name, value in rules.as_dict().items():
        flag = "--" + name.replace("_", "-")
        args += [flag, value if name == "end_shape" else json.dumps(value)]
    env = dict(os.environ)
    path = env.get("PYTHONPATH")
    env["PYTHONPATH"] = REPO_ROOT if not path else os.pathsep.join([REPO_ROOT, path])
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.emulators.kinesis_server", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        cwd=REPO_ROOT,
        env=env,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the Kinesis test server exited ({proc.wait()}) before it served")
        ready = json.loads(line)
        infos = {n: StreamInfo(**info) for n, info in ready["streams"].items()}
        yield KinesisServer(f"http://127.0.0.1:{ready['port']}", infos, proc.pid, rules)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


if __name__ == "__main__":
    asyncio.run(child_main())
