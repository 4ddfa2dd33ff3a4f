"""A SubscribeToShard (enhanced fan-out) server on 127.0.0.1 for the tests.

What it imitates: the Kinesis endpoint as an enhanced fan-out consumer sees it. Every call
but SubscribeToShard is forwarded unchanged to the upstream emulator (kinesis-local, which
already serves Register/Describe/List/DeregisterStreamConsumer with AWS' 20-consumer limit
and the CREATING -> ACTIVE transition). SubscribeToShard is answered here: the server pages
through the upstream's GetRecords and writes AWS event-stream frames (prelude, headers,
CRC32s, as botocore's ``eventstream.py`` reads them), first the ``initial-response`` event
botocore requires (kinesis-local 0.6.2 never sends it), then ``SubscribeToShardEvent``s.

The AWS rules it enforces (Kinesis API reference, SubscribeToShard):

- the consumer must exist and be ACTIVE, else ``ResourceNotFoundException`` /
  ``ResourceInUseException``;
- a second SubscribeToShard for the same consumer and shard within ``takeover_seconds``
  (5 s on AWS) of a successful one gets ``ResourceInUseException``; after that it takes the
  subscription over, and the previous one ends with a ``ResourceInUseException`` event;
- a subscription ends after ``subscription_seconds`` (5 minutes on AWS; seconds in tests):
  the event stream simply closes and the consumer resubscribes at the last
  ``ContinuationSequenceNumber``;
- every event carries ``MillisBehindLatest`` and a ``ContinuationSequenceNumber`` (also
  when it holds no records: resubscribing AFTER it loses nothing and repeats nothing);
  while caught up, an empty event is sent every ``idle_event_seconds``;
- at a closed shard's end the last event carries ``ChildShards`` and no continuation, and
  the stream closes;
- a shard that is gone (``remove_shard``: closed and aged out of the retention) gets
  ``ResourceNotFoundException``, the answer the KCL's FanOutRecordsPublisher and the AWS
  Spark connector's EfoRecordBatchPublisher handle as "the shard does not exist" (they
  cannot tell it from a deregistered consumer, which gets the same code);
- records older than a trim horizon (``trim``: the retention passed them) are gone:
  TRIM_HORIZON starts at the oldest record kept, and an AT/AFTER_SEQUENCE_NUMBER position
  older than it gets ``InvalidArgumentException``. The API reference documents this case
  only for AT_TIMESTAMP (older than the trim horizon: streams from TRIM_HORIZON); for a
  sequence number the double answers as Kinesis does to a sequence number it cannot
  serve (``Invalid StartingSequenceNumber``), and as the GetRecords reader expects from
  GetShardIterator. Either call ends the shard's open subscription, as the passing time
  would, so the reader has to subscribe again.

It counts subscriptions and rejections per (consumer, shard) so tests can check them, and
``retried_refusals``: SubscribeToShard calls that repeat a refused one (same consumer,
shard and StartingPosition) before its 5 s are over, the trace of a reader that waits
out the rule instead of reading otherwise.
"""

from __future__ import annotations

import binascii
import http.client
import json
import struct
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlparse

TARGET_PREFIX = "Kinesis_20131202."
# GetRecords page size the server reads upstream with (AWS' own maximum).
PAGE_RECORDS = 10_000
# How long the server waits between upstream reads while there is nothing new.
POLL_SECONDS = 0.05


def frame(headers: dict[str, str], payload: bytes) -> bytes:
    """One event-stream message: prelude (lengths + CRC32), string headers, payload, CRC32."""
    encoded = b""
    for name, value in headers.items():
        raw_name, raw_value = name.encode(), value.encode()
        # Header: name length (1 byte), name, type 7 (string), value length (2 bytes), value.
        encoded += struct.pack("!B", len(raw_name)) + raw_name
        encoded += struct.pack("!BH", 7, len(raw_value)) + raw_value
    total = 12 + len(encoded) + len(payload) + 4
    prelude = struct.pack("!II", total, len(encoded))
    prelude += struct.pack("!I", binascii.crc32(prelude) & 0xFFFFFFFF)
    message = prelude + encoded + payload
    return message + struct.pack("!I", binascii.crc32(message) & 0xFFFFFFFF)


def event_frame(event_type: str, body: dict[str, Any]) -> bytes:
    return frame(
        {
            ":message-type": "event",
            ":event-type": event_type,
            ":content-type": "application/json",
        },
        json.dumps(body).encode(),
    )


def exception_frame(kind: str, message: str) -> bytes:
    return frame(
        {
            ":message-type": "exception",
            ":exception-type": kind,
            ":content-type": "application/json",
        },
        json.dumps({"message": message}).encode(),
    )


class Upstream:
    """Plain JSON calls to the upstream emulator (one connection per call)."""

    def __init__(self, endpoint: str) -> None:
        url = urlparse(endpoint)
        self.host, self.port = url.hostname or "127.0.0.1", url.port or 80

    def raw(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, str, bytes]:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        try:
            conn.request("POST", path, body=body, headers=headers)
            resp = conn.getresponse()
            return resp.status, resp.getheader("Content-Type") or "", resp.read()
        finally:
            conn.close()

    def call(self, operation: str, request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        headers = {
            "X-Amz-Target": TARGET_PREFIX + operation,
            "Content-Type": "application/x-amz-json-1.1",
            # kinesis-local checks that a request is signed, not the signature.
            "Authorization": (
                "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/kinesis/aws4_request, "
                "SignedHeaders=host, Signature=0"
            ),
            "X-Amz-Date": time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()),
        }
        status, _, body = self.raw("/", headers, json.dumps(request).encode())
        return status, (json.loads(body) if body else {})


@dataclass
class _Subscription:
    subscribed_at: float
    taken_over: threading.Event = field(default_factory=threading.Event)
    ended: threading.Event = field(default_factory=threading.Event)
    # Set to end the subscription now (its shard was removed or trimmed).
    cut: threading.Event = field(default_factory=threading.Event)


@dataclass
class EfoServer:
    upstream: str
    subscription_seconds: float = 300.0
    takeover_seconds: float = 5.0
    idle_event_seconds: float = 0.2
    # Records per event (AWS: up to 10,000) and a pause after each event that holds
    # records: small values spread a backlog over many events, so that a subscription can
    # expire in the middle of a read.
    records_per_event: int = PAGE_RECORDS
    event_gap_seconds: float = 0.0
    # (consumer ARN, shard id) -> successful subscriptions / ResourceInUse rejections.
    subscriptions: Counter[tuple[str, str]] = field(default_factory=Counter)
    rejections: Counter[tuple[str, str]] = field(default_factory=Counter)
    retried_refusals: Counter[tuple[str, str]] = field(default_factory=Counter)
    requests: Counter[str] = field(default_factory=Counter)
    # The Limit of every GetRecords call a client made through this server, in order (0:
    # none given).
    get_records_limits: list[int] = field(default_factory=list)
    # Shards gone from the stream, and shard id -> its oldest record still kept.
    gone_shards: set[str] = field(default_factory=set)
    trim_horizons: dict[str, str] = field(default_factory=dict)
    _active: dict[tuple[str, str], _Subscription] = field(default_factory=dict)
    # (consumer ARN, shard id) -> (StartingPosition, when) of its last refused call.
    _refused: dict[tuple[str, str], tuple[str, float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stopping: threading.Event = field(default_factory=threading.Event)
    _server: ThreadingHTTPServer | None = None

    # -- subscription rules ---------------------------------------------------------------

    def _refuse(self, key: tuple[str, str], start: dict[str, Any], *, call: bool = True) -> bool:
        """True if the 5-second rule refuses a subscription for ``key`` now (counted).
        ``call``: this is the call's first look (count a retry once). Hold the lock."""
        now = time.monotonic()
        where = json.dumps(start, sort_keys=True)
        refused = self._refused.get(key)
        if call and refused is not None and refused[0] == where:
            if now - refused[1] < self.takeover_seconds:
                self.retried_refusals[key] += 1
        previous = self._active.get(key)
        if previous is None or now - previous.subscribed_at >= self.takeover_seconds:
            return False
        self.rejections[key] += 1
        self._refused[key] = (where, now)
        return True

    def _admit(self, key: tuple[str, str], start: dict[str, Any]) -> _Subscription | None:
        """The new subscription for ``key``, or None if the 5-second rule rejects it."""
        now = time.monotonic()
        with self._lock:
            # Looked again after the upstream calls: another call may have come in between.
            if self._refuse(key, start, call=False):
                return None
            previous = self._active.get(key)
            if previous is not None:
                previous.taken_over.set()
            sub = self._active[key] = _Subscription(subscribed_at=now)
            self.subscriptions[key] += 1
            return sub

    def _consumer_error(self, consumer_arn: str) -> tuple[str, str] | None:
        status, body = Upstream(self.upstream).call(
            "DescribeStreamConsumer", {"ConsumerARN": consumer_arn}
        )
        if status != 200:
            return "ResourceNotFoundException", f"Consumer {consumer_arn} not found: {body}"
        state = body["ConsumerDescription"]["ConsumerStatus"]
        if state != "ACTIVE":
            return "ResourceInUseException", f"Consumer {consumer_arn} is {state}, not ACTIVE"
        return None

    def remove_shard(self, shard: str) -> None:
        """The shard closed and aged out of the retention: SubscribeToShard no longer finds it."""
        with self._lock:
            self.gone_shards.add(shard)
        self.end_subscriptions(shard)

    def trim(self, shard: str, oldest_kept: str) -> None:
        """The retention passed every record of ``shard`` before sequence ``oldest_kept``."""
        with self._lock:
            self.trim_horizons[shard] = oldest_kept
        self.end_subscriptions(shard)

    def end_subscriptions(self, shard: str, timeout_s: float = 30.0) -> None:
        """End the open subscriptions of ``shard`` now, as their 5-minute lifetime would, and
        wait until they have sent their last event."""
        with self._lock:
            subs = [sub for (_, sid), sub in self._active.items() if sid == shard]
        for sub in subs:
            sub.cut.set()
        for sub in subs:
            if not sub.ended.wait(timeout_s):
                raise AssertionError(f"subscription of {shard} still open after {timeout_s}s")

    def _lost_data_error(
        self, stream: str, shard: str, start: dict[str, Any]
    ) -> tuple[str, str] | None:
        """The error SubscribeToShard answers for a shard or a position that is gone."""
        if shard in self.gone_shards:
            return "ResourceNotFoundException", f"Shard {shard} in stream {stream} does not exist"
        horizon = self.trim_horizons.get(shard)
        if (
            horizon is not None
            and "SequenceNumber" in start
            and int(start["SequenceNumber"]) < int(horizon)
        ):
            return (
                "InvalidArgumentException",
                f"Invalid StartingSequenceNumber {start['SequenceNumber']} for shard {shard}: "
                "it is older than the shard's trim horizon",
            )
        return None

    # -- positions --------------------------------------------------------------------------

    def _iterator(self, stream: str, shard: str, start: dict[str, Any]) -> tuple[int, Any]:
        request: dict[str, Any] = {
            "StreamName": stream,
            "ShardId": shard,
            "ShardIteratorType": start["Type"],
        }
        if "SequenceNumber" in start:
            request["StartingSequenceNumber"] = start["SequenceNumber"]
        if "Timestamp" in start:
            request["Timestamp"] = start["Timestamp"]
        return Upstream(self.upstream).call("GetShardIterator", request)

    def _sequence_before(self, stream: str, shard: str, start: dict[str, Any]) -> str:
        """A continuation for a subscription that has delivered no record yet: the last
        record ``start`` excludes, or (none) the shard's starting sequence number."""
        kind = start["Type"]
        if kind == "AFTER_SEQUENCE_NUMBER":
            return str(start["SequenceNumber"])
        upstream = Upstream(self.upstream)
        _, listing = upstream.call("ListShards", {"StreamName": stream})
        shard_info = next(s for s in listing["Shards"] if s["ShardId"] == shard)
        before = str(shard_info["SequenceNumberRange"]["StartingSequenceNumber"])
        if kind == "TRIM_HORIZON":
            return before
        _, resp = self._iterator(stream, shard, {"Type": "TRIM_HORIZON"})
        iterator = resp.get("ShardIterator")
        while iterator:
            _, page = upstream.call("GetRecords", {"ShardIterator": iterator})
            for record in page.get("Records", []):
                if kind == "AT_SEQUENCE_NUMBER" and int(record["SequenceNumber"]) >= int(
                    start["SequenceNumber"]
                ):
                    return before
                if kind == "AT_TIMESTAMP" and record["ApproximateArrivalTimestamp"] >= float(
                    start["Timestamp"]
                ):
                    return before
                before = record["SequenceNumber"]
            if not page.get("Records") or page.get("MillisBehindLatest", 0) == 0:
                break
            iterator = page.get("NextShardIterator")
        return before

    # -- HTTP -------------------------------------------------------------------------------

    def _subscribe(self, handler: BaseHTTPRequestHandler, request: dict[str, Any]) -> None:
        consumer_arn, shard = request["ConsumerARN"], request["ShardId"]
        start = request["StartingPosition"]
        stream = consumer_arn.split(":stream/", 1)[1].split("/consumer/", 1)[0]
        key = (consumer_arn, shard)
        with self._lock:
            # Refused at once, as AWS answers it: no upstream call first.
            in_use = self._refuse(key, start)
        if in_use:
            self._answer_in_use(handler, consumer_arn, shard)
            return
        error = self._consumer_error(consumer_arn)
        if error is None:
            error = self._lost_data_error(stream, shard, start)
        if error is not None:
            _answer(handler, 400, json.dumps({"__type": error[0], "message": error[1]}).encode())
            return
        horizon = self.trim_horizons.get(shard)
        if horizon is not None and start["Type"] == "TRIM_HORIZON":
            start = {"Type": "AT_SEQUENCE_NUMBER", "SequenceNumber": horizon}
        status, resp = self._iterator(stream, shard, start)
        if status != 200:
            _answer(handler, status, json.dumps(resp).encode())
            return
        sub = self._admit(key, request["StartingPosition"])
        if sub is None:
            self._answer_in_use(handler, consumer_arn, shard)
            return
        continuation = self._sequence_before(stream, shard, start)
        handler.send_response(200)
        handler.send_header("Content-Type", "application/vnd.amazon.eventstream")
        handler.send_header("Transfer-Encoding", "chunked")
        # The server closes the connection when the subscription ends: say so, or the
        # client pools it and its next request may go out on a socket already closed.
        handler.send_header("Connection", "close")
        handler.end_headers()
        handler.close_connection = True
        try:
            _chunk(handler, event_frame("initial-response", {}))
            self._push(handler, sub, resp["ShardIterator"], continuation)
            handler.wfile.write(b"0\r\n\r\n")
            handler.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the consumer went away; its subscription simply lapses
        finally:
            sub.ended.set()

    @staticmethod
    def _answer_in_use(handler: BaseHTTPRequestHandler, consumer_arn: str, shard: str) -> None:
        message = (
            f"Another active subscription exists for consumer {consumer_arn} and shard {shard}"
        )
        body = {"__type": "ResourceInUseException", "message": message}
        _answer(handler, 400, json.dumps(body).encode())

    def _push(
        self,
        handler: BaseHTTPRequestHandler,
        sub: _Subscription,
        iterator: str,
        continuation: str,
    ) -> None:
        """Events from ``iterator`` until the subscription expires, is taken over, or the
        shard ends."""
        upstream = Upstream(self.upstream)
        expires = sub.subscribed_at + self.subscription_seconds
        last_event = float("-inf")
        while not self._stopping.is_set():
            if sub.taken_over.is_set():
                _chunk(handler, exception_frame("ResourceInUseException", "taken over"))
                return
            if time.monotonic() >= expires or sub.cut.is_set():
                return
            status, page = upstream.call(
                "GetRecords", {"ShardIterator": iterator, "Limit": self.records_per_event}
            )
            if status != 200:
                _chunk(handler, exception_frame("InternalFailureException", json.dumps(page)))
                return
            records = page.get("Records", [])
            if records:
                continuation = records[-1]["SequenceNumber"]
            following = page.get("NextShardIterator")
            event: dict[str, Any] = {
                "Records": records,
                "MillisBehindLatest": page.get("MillisBehindLatest", 0),
            }
            if following is None:
                event["ChildShards"] = page.get("ChildShards", [])
                _chunk(handler, event_frame("SubscribeToShardEvent", event))
                return
            event["ContinuationSequenceNumber"] = continuation
            now = time.monotonic()
            if records or now - last_event >= self.idle_event_seconds:
                _chunk(handler, event_frame("SubscribeToShardEvent", event))
                last_event = now
            iterator = following
            self._stopping.wait(self.event_gap_seconds if records else POLL_SECONDS)

    def wait_for_expiry(self, consumer_arn: str, shard: str, timeout_s: float = 30.0) -> None:
        """Block until the current subscription of (consumer, shard) has ended."""
        with self._lock:
            sub = self._active.get((consumer_arn, shard))
        if sub is not None and not sub.ended.wait(timeout_s):
            raise AssertionError(f"subscription of {shard} still open after {timeout_s}s")

    def start(self) -> str:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                operation = (self.headers.get("X-Amz-Target") or "").rpartition(".")[2]
                with server._lock:
                    server.requests[operation] += 1
                    if operation == "GetRecords":
                        server.get_records_limits.append(int(json.loads(raw).get("Limit", 0)))
                if operation == "SubscribeToShard":
                    server._subscribe(self, json.loads(raw))
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                status, ctype, body = Upstream(server.upstream).raw(self.path, headers, raw)
                _answer(self, status, body, ctype)

        class Server(ThreadingHTTPServer):
            def handle_error(self, request: Any, client_address: Any) -> None:
                if isinstance(sys.exc_info()[1], ConnectionError):
                    return  # the client went away (a read timed out, a worker ended)
                super().handle_error(request, client_address)

        self._server = Server(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        self._stopping.set()
        # Let the open subscriptions send their last event: they read from the upstream,
        # which the caller may stop next.
        with self._lock:
            active = list(self._active.values())
        for sub in active:
            sub.ended.wait(5.0)
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def _answer(
    handler: BaseHTTPRequestHandler, status: int, payload: bytes, ctype: str | None = None
) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", ctype or "application/x-amz-json-1.1")
    handler.send_header("Content-Length", str(len(payload)))
    handler.end_headers()
    handler.wfile.write(payload)


def _chunk(handler: BaseHTTPRequestHandler, data: bytes) -> None:
    handler.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
    handler.wfile.flush()
