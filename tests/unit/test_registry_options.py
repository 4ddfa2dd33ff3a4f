"""The Glue Schema Registry's options, both directions: defaults, and every bad value or
misplaced option an error naming the option and what is allowed. Pure (no Spark, no AWS)."""

from __future__ import annotations

import pytest

from kinesis_source.errors import OptionError
from kinesis_source.options import RegistrySchema
from kinesis_source.records.glue_format import Compression
from kinesis_source.sink.options import parse_sink_options
from kinesis_source.source.options import parse_options

SOURCE = {"streamName": "orders", "region": "eu-west-1", "checkpointStore": "/tmp/store"}
SINK = {"streamName": "orders", "region": "eu-west-1"}


def test_the_source_decodes_nothing_unless_asked() -> None:
    opts = parse_options(SOURCE, env={})
    assert opts.registry_schema is None
    assert opts.fail_on_decode_error is False


def test_source_defaults_and_values() -> None:
    opts = parse_options({**SOURCE, "schemaregistry": "GLUE", "schemaname": "clicks"}, env={})
    assert opts.registry_schema == RegistrySchema("default-registry", "clicks")
    assert opts.schema_version_number is None  # the latest at the query's start
    assert opts.fail_on_decode_error is False
    assert opts.schema_registry_endpoint_url is None
    opts = parse_options(
        {
            **SOURCE,
            "schemaRegistry": "glue",
            "registryName": "shop",
            "schemaName": "clicks",
            "schemaVersionNumber": "3",
            "failOnDecodeError": "true",
            "schemaRegistryEndpointUrl": "http://127.0.0.1:5000",
        },
        env={},
    )
    assert opts.registry_schema == RegistrySchema("shop", "clicks")
    assert opts.schema_version_number == 3
    assert opts.fail_on_decode_error is True
    assert opts.schema_registry_endpoint_url == "http://127.0.0.1:5000"


def test_without_a_schema_name_json_records_are_read_as_text() -> None:
    opts = parse_options({**SOURCE, "schemaRegistry": "glue"}, env={})
    assert opts.registry_schema == RegistrySchema("default-registry", None)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"schemaRegistry": "confluent"}, "option 'schemaRegistry': got 'confluent'; .*: glue"),
        ({"schemaName": "clicks"}, "option 'schemaName': is only allowed with schemaRegistry=glue"),
        ({"failOnDecodeError": "true"}, "'failOnDecodeError': is only allowed with schemaRegistry"),
        ({"schemaRegistryEndpointUrl": "http://x"}, "'schemaRegistryEndpointUrl': is only allowed"),
        (
            {"schemaRegistry": "glue", "schemaVersionNumber": "2"},
            "'schemaVersionNumber': is only allowed with schemaName",
        ),
        (
            {"schemaRegistry": "glue", "registryName": "shop"},
            "'registryName': is only allowed with schemaName",
        ),
        (
            {"schemaRegistry": "glue", "schemaName": "clicks", "schemaVersionNumber": "0"},
            "'schemaVersionNumber': got 0; expected an integer >= 1",
        ),
        (
            {"schemaRegistry": "glue", "schemaName": "clicks", "failOnDecodeError": "maybe"},
            "'failOnDecodeError': got 'maybe'; expected true or false",
        ),
        (
            {"schemaRegistry": "glue", "schemaName": "a/b"},
            "'schemaName': got 'a/b'; expected 1 to 255 letters, digits or any of -_",
        ),
        ({"compression": "zlib"}, "option 'compression': is only for writing"),
    ],
)
def test_bad_source_options_name_the_option(extra: dict[str, str], message: str) -> None:
    with pytest.raises(OptionError, match=message):
        parse_options({**SOURCE, **extra}, env={})


def test_sink_values() -> None:
    opts = parse_sink_options(
        {**SINK, "schemaRegistry": "glue", "schemaName": "clicks", "compression": "ZLIB"}, env={}
    )
    assert opts.registry_schema == RegistrySchema("default-registry", "clicks")
    assert opts.compression is Compression.ZLIB
    assert parse_sink_options(SINK, env={}).registry_schema is None


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"schemaRegistry": "glue"}, "option 'schemaName': is required with schemaRegistry=glue"),
        ({"compression": "zlib"}, "option 'compression': is only allowed with schemaRegistry"),
        (
            {"schemaRegistry": "glue", "schemaName": "c", "compression": "gzip"},
            "option 'compression': 'gzip' is not one of none, zlib",
        ),
        ({"failOnDecodeError": "true"}, "option 'failOnDecodeError': is only for reading"),
    ],
)
def test_bad_sink_options_name_the_option(extra: dict[str, str], message: str) -> None:
    with pytest.raises(OptionError, match=message):
        parse_sink_options({**SINK, **extra}, env={})
