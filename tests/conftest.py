"""Shared fixtures: one SparkSession, one moto server and one Kinesis test server per test
session."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest

from kinesis_source.source.executor import kept_iterators
from tests.emulators import kinesis_local as local_emulator
from tests.emulators import kinesis_server as test_server
from tests.fault_proxy import FaultProxy

REGION = "us-east-1"

# moto logs every HTTP request at INFO; keep failure reports readable.
logging.getLogger("werkzeug").setLevel(logging.WARNING)

# Workers must run this interpreter, which has pyarrow and the package installed.
os.environ["PYSPARK_PYTHON"] = sys.executable
os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
# Fake credentials for the emulators; never a real account.
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.pop("AWS_SESSION_TOKEN", None)
os.environ.pop("AWS_PROFILE", None)


@pytest.fixture(autouse=True)
def no_kept_iterators() -> Iterator[None]:
    """Tests read the same stream and query names against servers of their own: an
    iterator a read kept in this process (executor/kept_iterators.py) belongs to its test."""
    kept_iterators.clear()
    yield
    kept_iterators.clear()


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def proxy(moto_endpoint: str) -> Iterator[FaultProxy]:
    """A fault proxy (tests/fault_proxy.py) in front of moto; ``proxy.endpoint`` is its URL."""
    fault_proxy = FaultProxy(moto_endpoint, hang_seconds=4.0)
    fault_proxy.endpoint = fault_proxy.start()  # type: ignore[attr-defined]
    try:
        yield fault_proxy
    finally:
        fault_proxy.stop()


@pytest.fixture(scope="session")
def kinesis_local_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """kinesis-mock (npm kinesis-local), bound to 127.0.0.1 (tests/emulators/kinesis_local.py)."""
    if not local_emulator.installed():
        pytest.fail(local_emulator.INSTALL_HINT)
    with local_emulator.running(tmp_path_factory.mktemp("kinesis-local")) as endpoint:
        yield endpoint


@pytest.fixture(scope="session")
def kinesis_local(kinesis_local_endpoint: str) -> Any:
    return boto3.client("kinesis", region_name=REGION, endpoint_url=kinesis_local_endpoint)


@pytest.fixture(scope="session")
def kinesis(moto_endpoint: str) -> Any:
    return boto3.client("kinesis", region_name=REGION, endpoint_url=moto_endpoint)


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[2]")
        .appName("kinesis_source-tests")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.streaming.stopTimeout", "30s")
        .config("spark.python.worker.reuse", "true")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    from kinesis_source import register

    register(session)
    try:
        yield session
    finally:
        session.stop()


@pytest.fixture(params=["file", "s3", "dynamodb"])
def store_uri(request: pytest.FixtureRequest, moto_endpoint: str, tmp_path: Any) -> str:
    """A fresh checkpoint store of each kind; S3 and DynamoDB live on the moto server."""
    kind = request.param
    name = f"ckpt-{uuid.uuid4().hex[:12]}"
    if kind == "file":
        return str(tmp_path / "store")
    if kind == "s3":
        s3 = boto3.client("s3", region_name=REGION, endpoint_url=moto_endpoint)
        s3.create_bucket(Bucket=name)
        return f"s3://{name}/checkpoints"
    # The table does not exist yet: the source creates it (createCheckpointTable=true).
    return f"dynamodb://{name}"


@pytest.fixture
def stream_name() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def registry(moto_endpoint: str) -> Iterator[dict[str, str]]:
    """A Glue Schema Registry on moto (tests/registry.py): its ``name`` and version ids."""
    from tests.registry import glue_registry

    with glue_registry(moto_endpoint) as ids:
        yield ids


@pytest.fixture
def efo_server(kinesis_local_endpoint: str) -> Iterator[Any]:
    """Start SubscribeToShard servers in front of kinesis-local (tests/emulators/efo_server.py):
    ``efo_server(subscription_seconds=..., takeover_seconds=...)`` returns a started one,
    with its ``endpoint``; all are stopped when the test ends."""
    from tests.emulators.efo_server import EfoServer

    started: list[Any] = []

    def start(**settings: Any) -> Any:
        server = EfoServer(kinesis_local_endpoint, **settings)
        server.endpoint = server.start()
        started.append(server)
        return server

    try:
        yield start
    finally:
        for server in started:
            server.stop()


@pytest.fixture(scope="session")
def kinesis_server() -> Iterator[test_server.KinesisServer]:
    """One Kinesis test server (tests/emulators/kinesis_server.py) for the session, with AWS'
    rules (throttles, iterator expiry, empty stretches, closed shards' end in two calls...).
    ``kinesis_server.endpoint`` is its URL. Shared: never move or freeze its clock nor
    reconfigure it; a test that needs other rules or the clock takes ``kinesis_server_with``."""
    with test_server.kinesis_server() as server:
        yield server


@pytest.fixture(scope="session")
def kinesis_server_client(kinesis_server: test_server.KinesisServer) -> Any:
    """A boto3 client of the session's Kinesis test server; its ``endpoint`` is
    ``kinesis_server.endpoint``."""
    return boto3.client("kinesis", region_name=REGION, endpoint_url=kinesis_server.endpoint)


@pytest.fixture
def kinesis_server_with() -> Iterator[Callable[..., test_server.KinesisServer]]:
    """Start servers of the test's own: ``kinesis_server_with(iterator_ttl_s=5,
    walk_slice_s=60, empty_history_s=3600, streams={...}, ...)`` (``kinesis_rules.Rules``
    field names, ``None`` turns a rule off) returns a started one, which the test may age
    (``advance_clock``) or freeze (``freeze_clock``); all stop when the test ends. A start
    costs about 0.1 s."""
    with contextlib.ExitStack() as stack:

        def start(**options: Any) -> test_server.KinesisServer:
            return stack.enter_context(test_server.kinesis_server(**options))

        yield start


@dataclass(frozen=True)
class Emulator:
    """A Kinesis to run a scenario against: its name, a boto3 client, its endpoint."""

    name: str
    client: Any
    endpoint: str


@pytest.fixture(params=["moto", "kinesis_server"])
def emulator(request: pytest.FixtureRequest) -> Emulator:
    """The end-to-end scenarios that take this run on moto and on the Kinesis test server,
    whose AWS rules (throttling, MillisBehindLatest from the position, 56-digit sequence
    numbers, a closed shard's end in a later call) moto does not keep."""
    if request.param == "moto":
        endpoint = request.getfixturevalue("moto_endpoint")
    else:
        endpoint = request.getfixturevalue("kinesis_server").endpoint
    client = boto3.client("kinesis", region_name=REGION, endpoint_url=endpoint)
    return Emulator(request.param, client, endpoint)
