"""AT_TIMESTAMP reaches Kinesis with its milliseconds, on every botocore the package accepts.

Kinesis keeps arrival timestamps in milliseconds and starts an AT_TIMESTAMP iterator at the
first record that arrived at or after the given time, so a timestamp cut to whole seconds
starts up to a second early. botocore up to 1.43 cuts it unless asked for millisecond
precision; 1.44 keeps sub-seconds by default. ``clients.millisecond_timestamps`` asks only
for a precision the installed botocore offers.

The server below imitates Kinesis' GetShardIterator over its JSON protocol (awsJson1.1:
a POST with ``X-Amz-Target: Kinesis_20131202.GetShardIterator``) on 127.0.0.1 and keeps
each request body. Like Kinesis it takes the Timestamp only as a JSON number of epoch
seconds (anything else is an InvalidArgumentException); every other operation is unknown.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import botocore.serialize
import pytest

from kinesis_source.aws.clients import MILLISECOND_PRECISION, kinesis_client
from kinesis_source.records.fast_decode import install_raw_get_records
from kinesis_source.source.options import KinesisOptions
from kinesis_source.source.positions import Position
from tests.helpers import REGION

pytestmark = pytest.mark.lowest

# 2026-01-01T00:00:00.123Z: a timestamp whose milliseconds a whole-second cut would lose.
AT_MS = 1_767_225_600_123


class GetShardIteratorServer:
    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                target = self.headers.get("X-Amz-Target") or ""
                if target != "Kinesis_20131202.GetShardIterator":
                    self._answer(400, {"__type": "UnknownOperationException"})
                    return
                server.bodies.append(raw)
                when = json.loads(raw).get("Timestamp")
                if not isinstance(when, (int, float)):
                    self._answer(400, {"__type": "InvalidArgumentException"})
                    return
                self._answer(200, {"ShardIterator": "AAAAiterator"})

            def _answer(self, status: int, document: dict[str, Any]) -> None:
                payload = json.dumps(document).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/x-amz-json-1.1")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._http.daemon_threads = True
        threading.Thread(target=self._http.serve_forever, daemon=True).start()
        host, port = self._http.server_address[:2]
        self.endpoint = f"http://{host}:{port}"

    def sent_timestamps(self) -> list[Decimal]:
        """Each request's Timestamp exactly as written on the wire (no float rounding)."""
        return [json.loads(body, parse_float=Decimal)["Timestamp"] for body in self.bodies]

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()


@pytest.fixture
def server() -> Iterator[GetShardIteratorServer]:
    found = GetShardIteratorServer()
    try:
        yield found
    finally:
        found.stop()


def _at_timestamp(client: Any) -> None:
    client.get_shard_iterator(
        StreamName="s",
        ShardId="shardId-000000000000",
        **Position.at_timestamp(AT_MS).iterator_request(),
    )


def _options(endpoint: str) -> KinesisOptions:
    return KinesisOptions(
        stream_name="s", region=REGION, checkpoint_store="unused", endpoint_url=endpoint
    )


def test_at_timestamp_is_sent_with_its_milliseconds(server: GetShardIteratorServer) -> None:
    # Both clients a shard read may use: the plain one and the fast decoder's.
    for prepare in (None, install_raw_get_records):
        _at_timestamp(kinesis_client(_options(server.endpoint), prepare=prepare))
    assert server.sent_timestamps() == [Decimal(AT_MS) / 1000] * 2


def test_a_botocore_without_millisecond_precision_keeps_its_own_default(
    server: GetShardIteratorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A botocore that no longer offers "millisecond" refuses to build a serializer asked
    # for it; the handler must then leave botocore's default, which keeps sub-seconds.
    plain = boto3.session.Session().client(
        "kinesis", region_name=REGION, endpoint_url=server.endpoint
    )
    _at_timestamp(plain)
    if server.sent_timestamps()[0] % 1 == 0:
        pytest.skip(
            f"botocore {botocore.__version__} cuts timestamps to seconds by default and "
            "offers millisecond precision (the test above)"
        )
    offered = botocore.serialize.TIMESTAMP_PRECISION_OPTIONS
    monkeypatch.setattr(
        botocore.serialize,
        "TIMESTAMP_PRECISION_OPTIONS",
        tuple(option for option in offered if option != MILLISECOND_PRECISION),
    )
    _at_timestamp(kinesis_client(_options(server.endpoint)))
    assert server.sent_timestamps()[1] == Decimal(AT_MS) / 1000
