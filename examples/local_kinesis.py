"""An embedded Kinesis for the examples: moto's server on 127.0.0.1, fake credentials."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3

REGION = "us-east-1"


@contextmanager
def embedded_kinesis(stream: str, shards: int) -> Iterator[tuple[str, Any]]:
    """Start moto on 127.0.0.1, create ``stream``; yield (endpoint URL, Kinesis client)."""
    from moto.server import ThreadedMotoServer

    # moto accepts any credentials; set fake ones so no real profile is ever used.
    os.environ["AWS_ACCESS_KEY_ID"] = "local-example"
    os.environ["AWS_SECRET_ACCESS_KEY"] = "local-example"
    os.environ.pop("AWS_SESSION_TOKEN", None)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per HTTP request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        client = boto3.client("kinesis", region_name=REGION, endpoint_url=endpoint)
        client.create_stream(StreamName=stream, ShardCount=shards)
        while (
            client.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"][
                "StreamStatus"
            ]
            != "ACTIVE"
        ):
            time.sleep(0.05)
        yield endpoint, client
    finally:
        server.stop()
