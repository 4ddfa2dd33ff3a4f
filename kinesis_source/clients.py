"""boto3 clients, built where they are used and cached per process.

``read()`` runs in executor Python workers that may serve many tasks: building a client
costs tens of milliseconds, so clients are cached by their settings. The cache key holds
credentials in memory only; nothing here logs or stores them.
"""

from __future__ import annotations

import threading
from typing import Any

import boto3
from botocore.config import Config
from botocore.handlers import enable_millisecond_timestamp_precision

from kinesis_source import limits
from kinesis_source.fast_decode import install_raw_get_records
from kinesis_source.options import KinesisOptions

_CACHE: dict[tuple[Any, ...], Any] = {}
_LOCK = threading.Lock()

_CONFIG = Config(
    connect_timeout=limits.CONNECT_TIMEOUT_SECONDS,
    read_timeout=limits.READ_TIMEOUT_SECONDS,
    retries={"max_attempts": limits.CLIENT_MAX_ATTEMPTS, "mode": "standard"},
    max_pool_connections=limits.PROBE_THREADS,
)


def kinesis_client(opts: KinesisOptions, *, raw_get_records: bool = False) -> Any:
    """A Kinesis client for the stream's region, endpoint and credentials.

    With ``raw_get_records`` it is a separate client whose ``get_records`` hands back the
    raw response body for ``fast_decode`` (every other call behaves as usual).
    """
    key = (
        "kinesis-raw-get-records" if raw_get_records else "kinesis",
        opts.connect_timeout_ms,
        opts.read_timeout_ms,
        opts.region,
        opts.endpoint_url,
        opts.aws_access_key_id,
        opts.aws_secret_key,
        opts.aws_session_token,
    )
    with _LOCK:
        client = _CACHE.get(key)
        if client is None:
            session = boto3.session.Session(
                aws_access_key_id=opts.aws_access_key_id,
                aws_secret_access_key=opts.aws_secret_key,
                aws_session_token=opts.aws_session_token,
                region_name=opts.region,
            )
            # botocore sends Kinesis timestamps in whole seconds by default, so AT_TIMESTAMP
            # would start up to a second early; ask for millisecond precision.
            session.events.register(
                "creating-serializer.kinesis", enable_millisecond_timestamp_precision
            )
            config = Config(
                connect_timeout=opts.connect_timeout_ms / 1000.0,
                read_timeout=opts.read_timeout_ms / 1000.0,
                # retry.py retries Kinesis calls with the user's backoff settings.
                retries={"total_max_attempts": 1, "mode": "standard"},
                max_pool_connections=limits.PROBE_THREADS,
            )
            client = session.client("kinesis", endpoint_url=opts.endpoint_url, config=config)
            if raw_get_records:
                install_raw_get_records(client)
            _CACHE[key] = client
        return client
