"""Option names, value parsers and the connection options both directions share.

Options are parsed once, on the driver, into frozen dataclasses that live with their
owner: ``ConnectionOptions`` here (where the stream is and how to call it), the source's
in ``source/options.py``, the sink's in ``sink/options.py``. Every option's public
spelling is declared once, below, under the direction that takes it.

Spark lower-cases option keys, so every name is matched case-insensitively; the public,
documented spelling is the camelCase one. Each error names the option, the bad value
(never for secrets) and what is allowed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any, TypeVar

from kinesis_source import limits
from kinesis_source.errors import OptionError

# -- names, each declared once (docs/options.md documents each) ------------------------

# The stream read or written (the source also takes several, or streamARN).
STREAM_OPTION_NAMES = ("streamName",)
# Where the stream is.
_ENDPOINT_OPTION_NAMES = ("region", "endpointUrl")
# How every Kinesis call is made: retries and timeouts.
_CALL_OPTION_NAMES = (
    "maxRetries",
    "retryBaseDelayMs",
    "retryMaxDelayMs",
    "connectTimeoutMs",
    "readTimeoutMs",
)
# Whose credentials: static keys, a profile, a role to assume.
_CREDENTIAL_OPTION_NAMES = (
    "awsAccessKeyId",
    "awsSecretKey",
    "awsSessionToken",
    "awsProfile",
    "roleArn",
    "roleSessionName",
    "roleExternalId",
    "stsEndpointUrl",
)
# What the connector logs (kinesis_source/logs.py), in every process of the query.
_LOG_OPTION_NAMES = ("logLevel",)
# Options only the source takes.
_SOURCE_START_OPTION_NAMES = (
    "streamARN",
    "initialPosition",
    "initialTimestamp",
    "initialPositionDefault",
    "kclLeaseTable",
)
# Options only a batch read (spark.read) takes: where its range ends
# (source/batch_options.py).
BATCH_ONLY_OPTION_NAMES = (
    "endingPosition",
    "endingTimestamp",
)
_SOURCE_STORE_OPTION_NAMES = (
    "checkpointStore",
    "checkpointRegion",
    "checkpointEndpointUrl",
    "createCheckpointTable",
)
_SOURCE_READ_OPTION_NAMES = (
    "maxRecordsPerShard",
    "maxRecordsPerTrigger",
    "maxBytesPerTrigger",
    "maxFetchTimeMs",
    "getRecordsLimit",
    "fetchIntervalMs",
    "maxProbesPerTrigger",
    "shardDiscoveryIntervalMs",
)
_SOURCE_TASK_OPTION_NAMES = (
    "shardsPerTask",
    "deaggregate",
    "decoder",
    "failOnDataLoss",
)
# Enhanced fan-out (consumerMode=efo); all but consumerMode only with it.
EFO_ONLY_OPTION_NAMES = (
    "consumerName",
    "consumerARN",
    "deregisterConsumerOnStop",
    "consumerRegistrationTimeoutMs",
    "efoFallbackToPolling",
)
# Options only the sink takes (docs/sink.md).
SINK_ONLY_OPTION_NAMES = (
    "maxRecordBytes",
    "maxInFlightRequests",
    "aggregate",
    "preserveOrder",
)
# The AWS Glue Schema Registry (docs/schema-registry.md), both directions; all but
# schemaRegistry only with schemaRegistry=glue, like those of each direction below.
REGISTRY_OPTION_NAMES = (
    "schemaRegistry",
    "registryName",
    "schemaName",
    "schemaRegistryEndpointUrl",
)
SOURCE_REGISTRY_OPTION_NAMES = ("schemaVersionNumber", "failOnDecodeError")
SINK_REGISTRY_OPTION_NAMES = ("compression",)
CONNECTION_OPTION_NAMES = (
    *STREAM_OPTION_NAMES,
    *_ENDPOINT_OPTION_NAMES,
    *_CALL_OPTION_NAMES,
    *_CREDENTIAL_OPTION_NAMES,
    *_LOG_OPTION_NAMES,
)
SOURCE_OPTION_NAMES = (
    STREAM_OPTION_NAMES[0],
    _SOURCE_START_OPTION_NAMES[0],
    *_ENDPOINT_OPTION_NAMES,
    *_SOURCE_START_OPTION_NAMES[1:],
    *BATCH_ONLY_OPTION_NAMES,
    *_SOURCE_STORE_OPTION_NAMES,
    *_SOURCE_READ_OPTION_NAMES,
    *_CALL_OPTION_NAMES,
    *_SOURCE_TASK_OPTION_NAMES,
    *_CREDENTIAL_OPTION_NAMES,
    "consumerMode",
    *EFO_ONLY_OPTION_NAMES,
    *REGISTRY_OPTION_NAMES,
    *SOURCE_REGISTRY_OPTION_NAMES,
    *_LOG_OPTION_NAMES,
)
SINK_OPTION_NAMES = (
    *CONNECTION_OPTION_NAMES,
    *SINK_ONLY_OPTION_NAMES,
    *REGISTRY_OPTION_NAMES,
    *SINK_REGISTRY_OPTION_NAMES,
)
# Options of one direction only, by lower-cased name: named as such when given to the other.
_OTHER_DIRECTION = {
    name.lower(): name
    for name in (*SOURCE_OPTION_NAMES, *SINK_ONLY_OPTION_NAMES, *SINK_REGISTRY_OPTION_NAMES)
    if (name in SOURCE_OPTION_NAMES) != (name in SINK_OPTION_NAMES)
}
# Options whose values must never appear in a message, a log line or a file.
SECRET_OPTIONS = frozenset({"awsSecretKey", "awsSessionToken"})
DEFAULT_ROLE_SESSION_NAME = "kinesis-source"
_SESSION_NAME = re.compile(r"[\w+=,.@-]{2,64}")
DEFAULT_REGISTRY_NAME = "default-registry"
# Glue's pattern for registry and schema names (CreateRegistry, CreateSchema).
_REGISTRY_NAME = re.compile(r"[a-zA-Z0-9-_$#.]{1,255}")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


@dataclass(frozen=True, kw_only=True)
class ConnectionOptions:
    """What reading and writing share: where the stream is and how to call it."""

    # The stream written; for the source the first stream read (``streams`` lists them all).
    stream_name: str
    region: str
    endpoint_url: str | None = None
    max_retries: int = limits.DEFAULT_MAX_RETRIES
    retry_base_delay_ms: int = limits.DEFAULT_RETRY_BASE_DELAY_MS
    retry_max_delay_ms: int = limits.DEFAULT_RETRY_MAX_DELAY_MS
    connect_timeout_ms: int = limits.DEFAULT_CONNECT_TIMEOUT_MS
    read_timeout_ms: int = limits.DEFAULT_READ_TIMEOUT_MS
    aws_access_key_id: str | None = None
    aws_secret_key: str | None = field(default=None, repr=False)
    aws_session_token: str | None = field(default=None, repr=False)
    aws_profile: str | None = None
    role_arn: str | None = None
    role_session_name: str = DEFAULT_ROLE_SESSION_NAME
    role_external_id: str | None = field(default=None, repr=False)
    sts_endpoint_url: str | None = None
    # The Glue Schema Registry's endpoint (None: Glue's in ``region``).
    schema_registry_endpoint_url: str | None = None
    # The kinesis_source logger's level in every process of the query; None: inherited.
    log_level: str | None = None


class SchemaRegistry(Enum):
    """Which schema registry frames the records (``schemaRegistry``)."""

    GLUE = "glue"


@dataclass(frozen=True)
class RegistrySchema:
    """Where the schema is in the AWS Glue Schema Registry (``schemaRegistry=glue``)."""

    registry_name: str = DEFAULT_REGISTRY_NAME
    # None (the source only): no reader schema, JSON-schema records read as text.
    schema_name: str | None = None


def by_public_name(raw: Mapping[str, str], names: tuple[str, ...]) -> dict[str, str]:
    """``raw`` keyed by the public spelling; an unknown key is an error listing ``names``."""
    by_lower = {name.lower(): name for name in names}
    opts: dict[str, str] = {}
    for key, value in raw.items():
        name = by_lower.get(key.lower())
        if name is None:
            known = ", ".join(names)
            other = _OTHER_DIRECTION.get(key.lower())
            if other is not None:
                what = "reading" if names is SINK_OPTION_NAMES else "writing"
                raise OptionError(other, f"is only for {what}; the options here are: {known}")
            raise OptionError(key, f"unknown option; the known options are: {known}")
        opts[name] = value
    return opts


def parse_connection(
    opts: Mapping[str, str], env: Mapping[str, str], stream_name: str, arn_region: str | None
) -> dict[str, Any]:
    """The ``ConnectionOptions`` fields of ``opts``, as keyword arguments.

    ``arn_region``: the region the stream ARNs name, if the streams were named by ARN.
    """
    region = opts.get("region", "").strip()
    if region and arn_region is not None and region != arn_region:
        raise OptionError(
            "region",
            f"got {region!r}, but streamARN names streams in {arn_region}; leave region "
            "unset (it is taken from the ARN) or make the two agree",
        )
    region = region or arn_region or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or ""
    region = region.strip()
    if not region:
        raise OptionError(
            "region",
            "is required: set the option (for example us-east-1) or the environment "
            "variable AWS_REGION or AWS_DEFAULT_REGION",
        )
    role_arn = opts.get("roleArn", "").strip() or None
    for needs_role in ("roleSessionName", "roleExternalId", "stsEndpointUrl"):
        if needs_role in opts and role_arn is None:
            raise OptionError(needs_role, "is only allowed with roleArn (the role to assume)")
    if role_arn is not None and not role_arn.startswith("arn:"):
        raise OptionError(
            "roleArn", f"got {role_arn!r}; expected an IAM role ARN: arn:aws:iam::ACCOUNT:role/NAME"
        )
    return {
        "stream_name": stream_name,
        "region": region,
        "endpoint_url": opts.get("endpointUrl") or None,
        "max_retries": parse_int(opts, "maxRetries", limits.DEFAULT_MAX_RETRIES, minimum=0),
        "retry_base_delay_ms": parse_int(
            opts, "retryBaseDelayMs", limits.DEFAULT_RETRY_BASE_DELAY_MS, minimum=1
        ),
        "retry_max_delay_ms": parse_int(
            opts, "retryMaxDelayMs", limits.DEFAULT_RETRY_MAX_DELAY_MS, minimum=1
        ),
        "connect_timeout_ms": parse_int(
            opts, "connectTimeoutMs", limits.DEFAULT_CONNECT_TIMEOUT_MS, minimum=1
        ),
        "read_timeout_ms": parse_int(
            opts, "readTimeoutMs", limits.DEFAULT_READ_TIMEOUT_MS, minimum=1
        ),
        "aws_access_key_id": opts.get("awsAccessKeyId") or None,
        "aws_secret_key": opts.get("awsSecretKey") or None,
        "aws_session_token": opts.get("awsSessionToken") or None,
        "aws_profile": opts.get("awsProfile", "").strip() or None,
        "role_arn": role_arn,
        "role_session_name": _parse_session_name(opts.get("roleSessionName")),
        "role_external_id": opts.get("roleExternalId") or None,
        "sts_endpoint_url": opts.get("stsEndpointUrl", "").strip() or None,
        "schema_registry_endpoint_url": opts.get("schemaRegistryEndpointUrl", "").strip() or None,
        "log_level": _parse_log_level(opts.get("logLevel")),
    }


def parse_registry_schema(
    opts: Mapping[str, str], direction_names: tuple[str, ...]
) -> RegistrySchema | None:
    """``schemaRegistry``, ``registryName`` and ``schemaName``; None without
    ``schemaRegistry``, when every other registry option (those of ``direction_names``
    too) is an error."""
    if "schemaRegistry" not in opts:
        for name in (*REGISTRY_OPTION_NAMES[1:], *direction_names):
            if name in opts:
                raise OptionError(name, "is only allowed with schemaRegistry=glue")
        return None
    parse_enum("schemaRegistry", opts["schemaRegistry"], SchemaRegistry)
    names = {}
    for option in ("registryName", "schemaName"):
        value = opts.get(option, "").strip()
        if value and not _REGISTRY_NAME.fullmatch(value):
            raise OptionError(
                option, f"got {value!r}; expected 1 to 255 letters, digits or any of -_$#."
            )
        names[option] = value or None
    return RegistrySchema(names["registryName"] or DEFAULT_REGISTRY_NAME, names["schemaName"])


def _parse_log_level(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    level = value.strip().upper()
    if level not in LOG_LEVELS:
        raise OptionError(
            "logLevel", f"got {value!r}; valid values (any case) are: {', '.join(LOG_LEVELS)}"
        )
    return level


def _parse_session_name(value: str | None) -> str:
    if value is None or not value.strip():
        return DEFAULT_ROLE_SESSION_NAME
    name = value.strip()
    # STS: 2..64 characters of [\w+=,.@-].
    if not _SESSION_NAME.fullmatch(name):
        raise OptionError(
            "roleSessionName",
            f"got {name!r}; expected 2 to 64 letters, digits or any of _+=,.@-",
        )
    return name


# -- value parsers -----------------------------------------------------------------------

E = TypeVar("E", bound=Enum)


def parse_enum(option: str, value: str, kind: type[E]) -> E:
    """The member of ``kind`` whose value is ``value`` (any case); the error lists them."""
    try:
        return kind(value.strip().lower())
    except ValueError:
        valid = ", ".join(str(member.value) for member in kind)
        raise OptionError(option, f"got {value!r}; valid values (any case) are: {valid}") from None


def parse_timestamp_ms(option: str, value: str) -> int:
    """Epoch milliseconds from an ISO-8601 time with a zone, or from epoch milliseconds."""
    text = value.strip()
    if text.isdigit():
        return int(text)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise OptionError(
            option,
            f"got {value!r}; expected an ISO-8601 time with a zone, such as "
            "2026-01-31T12:00:00Z or 2026-01-31T13:00:00+01:00, or epoch milliseconds",
        )
    return int(parsed.timestamp() * 1000)


def parse_int(
    opts: Mapping[str, str],
    name: str,
    default: int,
    *,
    minimum: int,
    maximum: int | None = None,
) -> int:
    if name not in opts:
        return default
    raw = opts[name].strip()
    allowed = f"an integer >= {minimum}" if maximum is None else f"an integer {minimum}..{maximum}"
    try:
        value = int(raw)
    except ValueError:
        raise OptionError(name, f"got {raw!r}; expected {allowed}") from None
    if value < minimum or (maximum is not None and value > maximum):
        raise OptionError(name, f"got {value}; expected {allowed}")
    return value


def parse_limit(opts: Mapping[str, str], name: str) -> int | None:
    """A count of records, at least 1; None (no limit) when the option is not set."""
    return parse_int(opts, name, 0, minimum=1) if name in opts else None


def parse_bool(opts: Mapping[str, str], name: str, default: bool) -> bool:
    if name not in opts:
        return default
    raw = opts[name].strip().lower()
    if raw in ("true", "1", "yes"):
        return True
    if raw in ("false", "0", "no"):
        return False
    raise OptionError(name, f"got {opts[name]!r}; expected true or false")
