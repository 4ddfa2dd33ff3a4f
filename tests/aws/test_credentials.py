"""Credentials: AssumeRole through moto's STS, refreshed before expiry; static keys; profiles."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from botocore.config import Config
from helpers import REGION, create_stream, put, source_options

from kinesis_source import limits
from kinesis_source.aws import clients
from kinesis_source.errors import CredentialsError
from kinesis_source.source.options import parse_options

ROLE = "arn:aws:iam::123456789012:role/kinesis-reader"


def _role_options(moto_endpoint: str, **extra: str) -> Any:
    return parse_options(
        {
            "streamName": "s",
            "region": REGION,
            "endpointUrl": moto_endpoint,
            "checkpointStore": "dynamodb://progress",
            "checkpointEndpointUrl": moto_endpoint,
            "roleArn": ROLE,
            # A fresh session name per test: clients are cached per credential settings.
            "roleSessionName": f"test-{uuid.uuid4().hex[:8]}",
            "roleExternalId": "external-id-for-test",
            "stsEndpointUrl": moto_endpoint,
            **extra,
        }
    )


def _signing_keys(client: Any) -> list[str]:
    """Record the access key id that signs each call the client makes."""
    seen: list[str] = []

    def record(request: Any, **_: Any) -> None:
        auth = request.headers["Authorization"]
        auth = auth.decode() if isinstance(auth, bytes) else auth
        found = re.search(r"Credential=([^/]+)/", auth)
        assert found is not None, "unsigned request"
        seen.append(found.group(1))

    client.meta.events.register("before-send", record)
    return seen


def test_calls_are_signed_with_the_assumed_role_credentials(moto_endpoint: str) -> None:
    opts = _role_options(moto_endpoint)
    kinesis = clients.kinesis_client(opts)
    store = clients.store_client("dynamodb", opts, endpoint_url=opts.checkpoint_endpoint_url)
    kinesis_keys = _signing_keys(kinesis)
    store_keys = _signing_keys(store)

    kinesis.list_streams()
    kinesis.list_streams()
    store.list_tables()

    assumed = clients.session(opts).get_credentials().get_frozen_credentials()
    assert assumed.access_key.startswith("ASIA")  # STS's temporary keys, not the base "testing"
    assert kinesis_keys == [assumed.access_key, assumed.access_key]
    assert store_keys == [assumed.access_key]


def test_assumed_credentials_are_refreshed_before_they_expire(
    moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Sessions shorter than botocore's 15-minute refresh window: every use is "about to
    # expire", so each call must come with freshly assumed credentials.
    monkeypatch.setattr(limits, "ASSUME_ROLE_SESSION_SECONDS", 900)
    kinesis = clients.kinesis_client(_role_options(moto_endpoint))
    keys = _signing_keys(kinesis)

    for _ in range(3):
        kinesis.list_streams()

    assert len(keys) == 3
    assert all(k.startswith("ASIA") for k in keys)
    assert len(set(keys)) == 3


def test_unknown_profile_fails_naming_the_option() -> None:
    opts = parse_options(
        {
            "streamName": "s",
            "region": REGION,
            "checkpointStore": "unused-store",
            "awsProfile": f"no-such-profile-{uuid.uuid4().hex[:6]}",
        }
    )
    with pytest.raises(CredentialsError, match="awsProfile"):
        clients.kinesis_client(opts)


def test_failed_assume_role_names_the_role_and_hides_the_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # One attempt per call: the failure, not botocore's retries, is what this test is about.
    monkeypatch.setattr(
        clients, "_CONFIG", clients._CONFIG.merge(Config(retries={"total_max_attempts": 1}))
    )
    secret = f"secret-{uuid.uuid4().hex}"
    opts = _role_options(
        "http://127.0.0.1:9",  # nothing listens on the discard port
        awsAccessKeyId="AKIDTEST",
        awsSecretKey=secret,
    )
    with pytest.raises(CredentialsError) as caught:
        clients.kinesis_client(opts).list_streams()
    text = "".join(str(e) for e in _chain(caught.value))
    assert ROLE in text
    assert secret not in text
    assert secret not in repr(opts)


def _chain(exc: BaseException | None) -> list[BaseException]:
    out = []
    while exc is not None:
        out.append(exc)
        exc = exc.__cause__ or exc.__context__
    return out


@pytest.mark.spark
def test_query_reads_through_an_assumed_role_on_driver_and_executors(
    spark: Any, kinesis: Any, moto_endpoint: str, stream_name: str, tmp_path: Any
) -> None:
    create_stream(kinesis, stream_name, 2)
    sent = put(kinesis, stream_name, [(f"k{i}", f"role-{i}".encode()) for i in range(5)])
    options = source_options(
        moto_endpoint,
        stream_name,
        f"dynamodb://role-{uuid.uuid4().hex[:8]}",
        checkpointEndpointUrl=moto_endpoint,
        roleArn=ROLE,
        stsEndpointUrl=moto_endpoint,
    )
    rows: list[bytes] = []
    query = (
        spark.readStream.format("kinesis")
        .options(**options)
        .load()
        .writeStream.foreachBatch(lambda df, _: rows.extend(bytes(r.data) for r in df.collect()))
        .option("checkpointLocation", str(tmp_path / "checkpoint"))
        .start()
    )
    try:
        query.processAllAvailable()
    finally:
        query.stop()
    assert sorted(rows) == sorted(r["data"] for r in sent)
