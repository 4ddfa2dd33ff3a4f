"""An embedded Kinesis for the examples: moto's server on 127.0.0.1 with fake credentials.

Every example runs against this by default, so it needs no AWS account; with
``--endpoint-url`` or real credentials the same code talks to that endpoint instead.
This module does not import kinesis_source: it is only about where Kinesis is.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3

DEFAULT_REGION = "us-east-1"
# moto accepts any credentials; these never reach a real account.
FAKE_ACCESS_KEY_ID = "testing"
FAKE_SECRET_KEY = "testing"
# moto makes a stream ACTIVE at once; real Kinesis takes seconds, rarely a minute.
STREAM_ACTIVE_TIMEOUT_SECONDS = 120.0


def add_target_arguments(parser: argparse.ArgumentParser, default_stream: str) -> None:
    """--stream, --region and where Kinesis is: embedded (default), --endpoint-url or --aws."""
    parser.add_argument("--stream", default=default_stream, help="stream name")
    parser.add_argument(
        "--region",
        default=os.environ.get("AWS_REGION")
        or os.environ.get("AWS_DEFAULT_REGION")
        or DEFAULT_REGION,
    )
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--endpoint-url", help="a Kinesis endpoint (another emulator)")
    target.add_argument("--aws", action="store_true", help="real AWS, default credentials")


def is_embedded(args: argparse.Namespace) -> bool:
    """True unless the command line named an endpoint or asked for AWS."""
    return not (args.endpoint_url or args.aws)


def kinesis_client(region: str, endpoint_url: str | None = None, *, fake: bool = False) -> Any:
    """A boto3 Kinesis client; ``fake`` uses the emulator's credentials, not the caller's."""
    creds: dict[str, str] = {}
    if fake:
        creds = {"aws_access_key_id": FAKE_ACCESS_KEY_ID, "aws_secret_access_key": FAKE_SECRET_KEY}
    return boto3.client("kinesis", region_name=region, endpoint_url=endpoint_url, **creds)


def source_credentials() -> dict[str, str]:
    """Reader options that make the kinesis source use the emulator's fake credentials."""
    return {"awsAccessKeyId": FAKE_ACCESS_KEY_ID, "awsSecretKey": FAKE_SECRET_KEY}


def ensure_stream(client: Any, stream: str, shards: int) -> None:
    """Create ``stream`` with ``shards`` shards unless it exists; wait until it is ACTIVE."""
    try:
        client.create_stream(StreamName=stream, ShardCount=shards)
    except client.exceptions.ResourceInUseException:
        pass
    deadline = time.monotonic() + STREAM_ACTIVE_TIMEOUT_SECONDS
    delay = 0.05
    while True:
        summary = client.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]
        if summary["StreamStatus"] == "ACTIVE":
            return
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"stream {stream!r} not ACTIVE after {STREAM_ACTIVE_TIMEOUT_SECONDS:.0f} s "
                f"(status {summary['StreamStatus']})"
            )
        time.sleep(delay)
        delay = min(delay * 2, 2.0)


@contextmanager
def embedded_kinesis(
    stream: str, shards: int = 1, region: str = DEFAULT_REGION
) -> Iterator[tuple[str, Any]]:
    """Start moto on 127.0.0.1 (a free port), create ``stream``; yield (endpoint, client).

    The server and everything in it go away when the block ends.
    """
    from moto.server import ThreadedMotoServer

    # The emulator's per-request access log would drown the example's own output.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        client = kinesis_client(region, endpoint, fake=True)
        ensure_stream(client, stream, shards)
        yield endpoint, client
    finally:
        server.stop()
