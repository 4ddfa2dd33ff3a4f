"""A small HTTP proxy on 127.0.0.1 that injects the Kinesis faults no emulator produces.

It forwards every request to the upstream emulator, except those a rule claims: those get
a throttling or 5xx answer, an expired-iterator error, a dropped connection, no answer
at all, the upstream's answer late ("delay": a slow network or a slow shard, for
speculative tasks and executors lost in the middle of a read), or the upstream's answer
broken off half-way through its body, its headers and first half sent ("cut": the
connection then closes; "stall": nothing more comes for ``hang_seconds``, then it closes).
``trim`` moves a shard's trim horizon (GetShardIterator only), as the retention would.
It counts requests per API operation, so tests can check retry counts. Executors are
separate processes, so a proxy (rather than a botocore hook) is how their calls fail.

``fail_entries`` imitates a PutRecords partial failure as AWS sends it: HTTP 200 with
``FailedRecordCount`` and, for each rejected entry, ``ErrorCode`` and ``ErrorMessage``
instead of ``ShardId``/``SequenceNumber``, in request order. As on AWS, the rejected entries
are not written: only the others are forwarded upstream.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlparse

# Fault kinds: an HTTP status and the error type Kinesis would send.
ERRORS = {
    "throttle": (400, "ProvisionedThroughputExceededException", "Rate exceeded for shard"),
    "limit": (400, "LimitExceededException", "Rate exceeded"),
    "5xx": (500, "InternalFailure", "Internal service failure"),
    "503": (503, "ServiceUnavailable", "Service unavailable"),
    "expired": (400, "ExpiredIteratorException", "Iterator expired"),
    # A sequence number of another shard, in the words AWS answers it (quoted in
    # boto/boto3 issue 1478 and awslabs/amazon-kinesis-client issue 391).
    "foreign-sequence": (
        400,
        "InvalidArgumentException",
        "Invalid StartingSequenceNumber. It encodes shardId-000000000007, while it was used "
        "in a call to a shard with shardId-000000000000",
    ),
}

# PutRecords per-entry errors (the codes AWS documents for a partial failure).
ENTRY_ERRORS = {
    "throttle": ("ProvisionedThroughputExceededException", "Rate exceeded for shard"),
    "internal": ("InternalFailure", "Internal service failure."),
    "kms-throttle": ("KMSThrottlingException", "KMS rate exceeded"),
    "kms-denied": ("KMSAccessDeniedException", "Access denied to the KMS key"),
}


@dataclass
class Rule:
    operation: str
    fault: str  # a key of ERRORS, "reset", "hang", "delay", "cut", "stall" or "entries:<kind>"
    times: int
    skip: int = 0  # let this many matching requests through first
    match: Callable[[dict[str, Any]], bool] | None = None
    served: int = 0
    seen: int = 0
    # For "entries:<kind>": which PutRecords entries (indices) this call rejects.
    pick: Callable[[list[dict[str, Any]]], list[int]] | None = None


@dataclass
class FaultProxy:
    upstream: str
    hang_seconds: float = 5.0
    delay_seconds: float = 3.0
    rules: list[Rule] = field(default_factory=list)
    requests: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    # operation -> a function of the upstream's JSON answer (for shards that "vanish").
    rewrites: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = field(default_factory=dict)
    # Shard id -> its oldest record still kept (``trim``).
    trim_horizons: dict[str, str] = field(default_factory=dict)
    # Forwarded requests being answered now, and the most at once; "OP delayed" for delays.
    in_flight: Counter[str] = field(default_factory=Counter)
    peak_in_flight: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    def inject(
        self,
        operation: str,
        fault: str,
        times: int,
        *,
        skip: int = 0,
        match: Callable[[dict[str, Any]], bool] | None = None,
    ) -> Rule:
        assert fault in ERRORS or fault in ("reset", "hang", "delay", "cut", "stall"), fault
        rule = Rule(operation, fault, times, skip, match)
        with self._lock:
            self.rules.append(rule)
        return rule

    def fail_entries(
        self,
        times: int,
        pick: Callable[[list[dict[str, Any]]], list[int]],
        *,
        kind: str = "throttle",
        skip: int = 0,
    ) -> Rule:
        """Reject the entries ``pick`` chooses in each of ``times`` PutRecords calls."""
        assert kind in ENTRY_ERRORS, kind
        rule = Rule("PutRecords", f"entries:{kind}", times, skip, pick=pick)
        with self._lock:
            self.rules.append(rule)
        return rule

    def trim(self, shard_id: str, oldest_kept: str) -> None:
        """The retention passed every record of ``shard_id`` before sequence ``oldest_kept``
        (moto never trims). As the GetShardIterator API reference says, TRIM_HORIZON then
        starts "at the last untrimmed record in the shard ..., which is the oldest data
        record in the shard"; a sequence number before it is answered
        ``InvalidArgumentException``, as the EFO double answers SubscribeToShard and as
        ``data_loss.read_loss`` reads it. Other calls and AT_TIMESTAMP are not changed."""
        with self._lock:
            self.trim_horizons[shard_id] = oldest_kept

    def _trimmed(self, body: dict[str, Any]) -> tuple[dict[str, Any] | None, bytes | None]:
        """A GetShardIterator request moved to the shard's trim horizon, or the error that
        answers a trimmed sequence number; (None, None) if the shard is not trimmed."""
        with self._lock:
            horizon = self.trim_horizons.get(str(body.get("ShardId")))
        if horizon is None:
            return None, None
        kind = body.get("ShardIteratorType")
        if kind == "TRIM_HORIZON":
            moved = {**body, "ShardIteratorType": "AT_SEQUENCE_NUMBER"}
            return {**moved, "StartingSequenceNumber": horizon}, None
        sequence = body.get("StartingSequenceNumber")
        if sequence is not None and int(sequence) < int(horizon):
            message = f"Invalid StartingSequenceNumber {sequence}: older than the trim horizon"
            error = {"__type": "InvalidArgumentException", "message": message}
            return None, json.dumps(error).encode()
        return None, None

    def _claim(self, operation: str, body: dict[str, Any]) -> Rule | None:
        with self._lock:
            self.requests[operation] += 1
            for rule in self.rules:
                if rule.operation != operation or rule.served >= rule.times:
                    continue
                if rule.match is not None and not rule.match(body):
                    continue
                rule.seen += 1
                if rule.seen <= rule.skip:
                    continue
                rule.served += 1
                self.faults[operation] += 1
                return rule
        return None

    def _track(self, key: str, step: int) -> None:
        with self._lock:
            self.in_flight[key] += step
            self.peak_in_flight[key] = max(self.peak_in_flight[key], self.in_flight[key])

    def start(self) -> str:
        proxy = self
        target = urlparse(self.upstream)

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                operation = (self.headers.get("X-Amz-Target") or "").rpartition(".")[2]
                try:
                    body = json.loads(raw) if raw else {}
                except ValueError:
                    body = {}
                if operation == "GetShardIterator":
                    moved, refusal = proxy._trimmed(body)
                    if refusal is not None:
                        self._answer(400, refusal)
                        return
                    if moved is not None:
                        raw = json.dumps(moved).encode()
                rule = proxy._claim(operation, body)
                fault = rule.fault if rule is not None else None
                if rule is not None and rule.pick is not None:
                    self._partial(raw, body, rule)
                    return
                if fault == "reset":
                    self.close_connection = True
                    self.connection.close()
                    return
                if fault == "hang":
                    time.sleep(proxy.hang_seconds)
                    self.close_connection = True
                    self.connection.close()
                    return
                if fault in ERRORS:
                    status, kind, message = ERRORS[fault]
                    self._answer(status, json.dumps({"__type": kind, "message": message}).encode())
                    return
                key = f"{operation} delayed" if fault == "delay" else operation
                proxy._track(key, 1)
                try:
                    if fault == "delay":
                        time.sleep(proxy.delay_seconds)
                    status, payload, ctype = self._forward(raw)
                finally:
                    proxy._track(key, -1)
                rewrite = proxy.rewrites.get(operation)
                if rewrite is not None and status == 200:
                    payload = json.dumps(rewrite(json.loads(payload))).encode()
                if fault in ("cut", "stall"):
                    self._half_answer(status, payload, ctype, stall=fault == "stall")
                    return
                self._answer(status, payload, ctype)

            def _forward(self, raw: bytes) -> tuple[int, bytes, str | None]:
                conn = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
                try:
                    headers = {
                        k: v
                        for k, v in self.headers.items()
                        if k.lower() not in ("host", "content-length")
                    }
                    headers["Content-Length"] = str(len(raw))
                    conn.request("POST", self.path, body=raw, headers=headers)
                    resp = conn.getresponse()
                    return resp.status, resp.read(), resp.getheader("Content-Type")
                finally:
                    conn.close()

            def _partial(self, raw: bytes, body: dict[str, Any], rule: Rule) -> None:
                assert rule.pick is not None
                entries = body.get("Records", [])
                rejected = set(rule.pick(entries))
                kept = [e for i, e in enumerate(entries) if i not in rejected]
                answers: list[dict[str, Any]] = []
                if kept:
                    forwarded = json.dumps({**body, "Records": kept}).encode()
                    status, payload, ctype = self._forward(forwarded)
                    if status != 200:
                        self._answer(status, payload, ctype)
                        return
                    answers = json.loads(payload)["Records"]
                code, message = ENTRY_ERRORS[rule.fault.partition(":")[2]]
                merged, upstream = [], iter(answers)
                for index in range(len(entries)):
                    if index in rejected:
                        merged.append({"ErrorCode": code, "ErrorMessage": message})
                    else:
                        merged.append(next(upstream))
                failed = sum(1 for m in merged if "ErrorCode" in m)
                out = {"FailedRecordCount": failed, "Records": merged}
                self._answer(200, json.dumps(out).encode())

            do_GET = do_POST

            def _answer(self, status: int, payload: bytes, ctype: str | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype or "application/x-amz-json-1.1")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def _half_answer(
                self, status: int, payload: bytes, ctype: str | None, *, stall: bool
            ) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype or "application/x-amz-json-1.1")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload[: len(payload) // 2])
                self.wfile.flush()
                if stall:
                    time.sleep(proxy.hang_seconds)
                self.close_connection = True
                self.connection.close()

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def reads(body: dict[str, Any]) -> bool:
    """A task's GetRecords (the driver's probes ask for Limit=1)."""
    return int(body.get("Limit", 10_000)) > 1
