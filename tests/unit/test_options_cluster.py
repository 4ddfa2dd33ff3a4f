"""Options for running on a cluster: store URIs, store location, credentials."""

from __future__ import annotations

from typing import Any

import pytest

from kinesis_source.errors import OptionError
from kinesis_source.options import SECRET_OPTIONS
from kinesis_source.source.options import parse_options


def _parse(**extra: str) -> Any:
    raw = {"streamName": "s", "region": "eu-west-1", "checkpointStore": "dynamodb://t"}
    raw.update(extra)
    return parse_options({k.lower(): v for k, v in raw.items()})


def test_store_and_role_options_are_parsed() -> None:
    opts = _parse(
        checkpointStore="s3://bucket/prefix",
        checkpointRegion="us-west-2",
        checkpointEndpointUrl="http://127.0.0.1:5000",
        createCheckpointTable="false",
        awsProfile="analytics",
        roleArn="arn:aws:iam::123456789012:role/reader",
        roleSessionName="orders-job",
        roleExternalId="ext-1",
        stsEndpointUrl="https://sts.eu-west-1.amazonaws.com",
    )
    assert opts.checkpoint_store == "s3://bucket/prefix"
    assert opts.checkpoint_region == "us-west-2"
    assert opts.checkpoint_endpoint_url == "http://127.0.0.1:5000"
    assert opts.create_checkpoint_table is False
    assert opts.aws_profile == "analytics"
    assert opts.role_arn == "arn:aws:iam::123456789012:role/reader"
    assert opts.role_session_name == "orders-job"
    assert opts.role_external_id == "ext-1"


def test_defaults_create_the_table_and_name_the_session() -> None:
    opts = _parse()
    assert opts.create_checkpoint_table is True
    assert opts.role_session_name == "kinesis-source"
    assert opts.checkpoint_region is None


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"checkpointStore": "gs://bucket"}, "checkpointStore.*s3://BUCKET/PREFIX"),
        ({"checkpointStore": "dynamodb://"}, "checkpointStore.*names no table"),
        ({"checkpointStore": "s3:///prefix"}, "checkpointStore.*names no bucket"),
        ({"createCheckpointTable": "sometimes"}, "createCheckpointTable.*true or false"),
        ({"roleArn": "reader"}, "roleArn.*arn:aws:iam"),
        ({"roleSessionName": "x"}, "roleSessionName.*only allowed with roleArn"),
        ({"roleArn": "arn:aws:iam::1:role/r", "roleSessionName": "a b"}, "roleSessionName"),
        ({"stsEndpointUrl": "http://127.0.0.1:1"}, "stsEndpointUrl.*only allowed with roleArn"),
    ],
)
def test_bad_values_name_the_option_and_what_is_allowed(
    extra: dict[str, str], message: str
) -> None:
    with pytest.raises(OptionError, match=message):
        _parse(**extra)


def test_secret_option_names_say_secret_or_token() -> None:
    # Spark's default spark.redaction.regex hides values of keys matching secret|token.
    assert SECRET_OPTIONS
    assert all("secret" in n.lower() or "token" in n.lower() for n in SECRET_OPTIONS)
    opts = _parse(awsAccessKeyId="AKID", awsSecretKey="hush-1", awsSessionToken="hush-2")
    assert "hush" not in repr(opts)
