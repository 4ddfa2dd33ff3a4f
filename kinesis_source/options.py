"""Source and sink options: parsed once, on the driver, into frozen dataclasses.

``ConnectionOptions`` holds what both directions need (stream, region, endpoint, retries,
timeouts, credentials); ``KinesisOptions`` (the source) and ``SinkOptions`` add their own.
Spark lower-cases option keys, so every name is matched case-insensitively; the public,
documented spelling is the camelCase one in ``OPTION_NAMES``. Each error names the option,
the bad value (never for secrets) and what is allowed.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any
from urllib.parse import urlparse

from kinesis_source import limits
from kinesis_source.errors import OptionError
from kinesis_source.source.start_positions import (
    ShardStart,
    looks_like_json,
    parse_shard_starts,
)
from kinesis_source.source.streams import (
    StreamRef,
    check_region,
    parse_stream_arns,
    parse_stream_names,
)


class InitialPosition(Enum):
    TRIM_HORIZON = "trim_horizon"
    LATEST = "latest"
    AT_TIMESTAMP = "at_timestamp"
    # Per-shard positions from JSON (KinesisOptions.shard_starts), the rest at the default.
    SHARDS = "json"
    # Each shard after its checkpoint in a KCL lease table (kclLeaseTable), the rest at the
    # default.
    KCL = "kcl"


class ConsumerMode(Enum):
    """How shards are read: shared GetRecords polling, or enhanced fan-out."""

    POLLING = "polling"
    EFO = "efo"


class Decoder(Enum):
    """How GetRecords responses are decoded (see fast_decode.py)."""

    # msgspec (or the json module) and base64 on the raw body, KPL straight into columns.
    FAST = "fast"
    # boto3's parsed response and the reference deaggregator: the slower reference.
    BOTO3 = "boto3"


_INITIAL_POSITION_ALIASES = {
    "trim_horizon": InitialPosition.TRIM_HORIZON,
    "earliest": InitialPosition.TRIM_HORIZON,
    "latest": InitialPosition.LATEST,
    "at_timestamp": InitialPosition.AT_TIMESTAMP,
    "kcl": InitialPosition.KCL,
}
# initialPositionDefault: where shards that JSON or the KCL table do not name start.
_DEFAULT_POSITIONS = {
    "trim_horizon": InitialPosition.TRIM_HORIZON,
    "earliest": InitialPosition.TRIM_HORIZON,
    "latest": InitialPosition.LATEST,
}

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
# Options of both directions: the stream, its endpoint, retries, timeouts, credentials.
CONNECTION_OPTION_NAMES = (
    "streamName",
    "region",
    "endpointUrl",
    *_CALL_OPTION_NAMES,
    *_CREDENTIAL_OPTION_NAMES,
)
# Options only the sink takes (README "Writing to Kinesis").
SINK_ONLY_OPTION_NAMES = (
    "maxRecordBytes",
    "maxInFlightRequests",
    "aggregate",
    "preserveOrder",
)
# Public spelling of every source option, in the order of the README table.
OPTION_NAMES = (
    "streamName",
    "streamARN",
    "region",
    "endpointUrl",
    "initialPosition",
    "initialTimestamp",
    "initialPositionDefault",
    "kclLeaseTable",
    "checkpointStore",
    "checkpointRegion",
    "checkpointEndpointUrl",
    "createCheckpointTable",
    "maxRecordsPerShard",
    "maxRecordsPerTrigger",
    "maxFetchTimeMs",
    "getRecordsLimit",
    "fetchIntervalMs",
    "maxProbesPerTrigger",
    "shardDiscoveryIntervalMs",
    *_CALL_OPTION_NAMES,
    "shardsPerTask",
    "deaggregate",
    "decoder",
    "failOnDataLoss",
    *_CREDENTIAL_OPTION_NAMES,
    # Enhanced fan-out.
    "consumerMode",
    "consumerName",
    "consumerARN",
    "deregisterConsumerOnStop",
    "consumerRegistrationTimeoutMs",
    "efoFallbackToPolling",
)
SINK_OPTION_NAMES = (*CONNECTION_OPTION_NAMES, *SINK_ONLY_OPTION_NAMES)
# Options of one direction only, by lower-cased name: named as such when given to the other.
_OTHER_DIRECTION = {
    name.lower(): name
    for name in (*OPTION_NAMES, *SINK_ONLY_OPTION_NAMES)
    if (name in OPTION_NAMES) != (name in SINK_OPTION_NAMES)
}
# Spark adds this to a streaming writer's options itself; the sink ignores it.
SINK_IGNORED_OPTIONS = frozenset({"checkpointlocation"})
DEFAULT_ROLE_SESSION_NAME = "kinesis-source"
_SESSION_NAME = re.compile(r"[\w+=,.@-]{2,64}")
STORE_SCHEMES = ("file", "s3", "dynamodb")
# Options whose values must never appear in a message, a log line or a file.
SECRET_OPTIONS = frozenset({"awsSecretKey", "awsSessionToken"})


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


@dataclass(frozen=True, kw_only=True)
class KinesisOptions(ConnectionOptions):
    """The source's options."""

    checkpoint_store: str
    initial_position: InitialPosition = InitialPosition.LATEST
    # Epoch milliseconds; set only with initial_position AT_TIMESTAMP.
    initial_timestamp_ms: int | None = None
    max_records_per_shard: int | None = None
    # Rows per micro-batch over all shards (ReadMaxRows); None: no limit.
    max_records_per_trigger: int | None = None
    max_fetch_time_ms: int = limits.DEFAULT_MAX_FETCH_TIME_MS
    get_records_limit: int = limits.GET_RECORDS_MAX_RECORDS
    fetch_interval_ms: int = limits.DEFAULT_FETCH_INTERVAL_MS
    # Idle shards one trigger probes, at most, per stream (source/pacing.py).
    max_probes_per_trigger: int = limits.DEFAULT_MAX_PROBES_PER_TRIGGER
    shard_discovery_interval_ms: int = limits.DEFAULT_SHARD_DISCOVERY_INTERVAL_MS
    shards_per_task: int = 1
    deaggregate: bool = True
    decoder: Decoder = Decoder.FAST
    fail_on_data_loss: bool = True
    # Where the checkpoint store lives when it is not next to the stream (None: the same).
    checkpoint_region: str | None = None
    checkpoint_endpoint_url: str | None = None
    create_checkpoint_table: bool = True
    # Every stream the query reads, by name or ARN; defaults to ``stream_name``.
    streams: tuple[StreamRef, ...] = ()
    # initialPosition JSON: stream -> shard id -> start.
    shard_starts: Mapping[str, Mapping[str, ShardStart]] = field(default_factory=dict)
    # Where shards not named by the JSON or the KCL table start: TRIM_HORIZON or LATEST.
    initial_position_default: InitialPosition = InitialPosition.LATEST
    kcl_lease_table: str | None = None
    # -- enhanced fan-out ------------------------------------------------------------------
    consumer_mode: ConsumerMode = ConsumerMode.POLLING
    # None: derived from the query's id (aws/consumers.py: default_consumer_name).
    consumer_name: str | None = None
    # An already registered consumer, used as it is (never registered or deregistered).
    consumer_arn: str | None = None
    deregister_consumer_on_stop: bool = False
    consumer_registration_timeout_ms: int = limits.DEFAULT_CONSUMER_REGISTRATION_TIMEOUT_MS
    # A batch whose SubscribeToShard is refused because another Python worker subscribed
    # the shard under 5 s ago reads by GetRecords instead of waiting (source/efo.py).
    efo_fallback_to_polling: bool = True

    def __post_init__(self) -> None:
        if not self.streams:
            object.__setattr__(self, "streams", (StreamRef(self.stream_name),))

    def stream_ref(self, name: str) -> StreamRef:
        """The stream of the query called ``name`` (by name or ARN, as the user gave it)."""
        for ref in self.streams:
            if ref.name == name:
                return ref
        # A stream of an older offset, no longer in the options: addressed by name.
        return StreamRef(name)


@dataclass(frozen=True, kw_only=True)
class SinkOptions(ConnectionOptions):
    """The sink's options (``df.write.format("kinesis")``, ``writeStream``)."""

    # Largest record (data + partition key) the stream takes; also the aggregate size cap.
    max_record_bytes: int = limits.RECORD_MAX_BYTES
    # PutRecords calls one task keeps in flight at once.
    max_in_flight_requests: int = limits.DEFAULT_MAX_IN_FLIGHT_REQUESTS
    aggregate: bool = False
    preserve_order: bool = False


def parse_options(raw: Mapping[str, str], env: Mapping[str, str] | None = None) -> KinesisOptions:
    """Validate ``raw`` (Spark's option map) and return the source's typed options.

    ``env`` defaults to ``os.environ``; it supplies the region when the option is absent.
    """
    opts = _by_public_name(raw, OPTION_NAMES)
    env = os.environ if env is None else env
    streams, arn_region = _parse_streams(opts, env)
    connection = _parse_connection(opts, env, streams[0].name, arn_region)
    check_region(connection["region"], streams, connection["endpoint_url"])

    checkpoint_store = opts.get("checkpointStore", "").strip()
    if not checkpoint_store:
        raise OptionError(
            "checkpointStore",
            "is required: where the connector records what each batch read: a local "
            "directory or file:// URI (local mode), s3://BUCKET/PREFIX or dynamodb://TABLE",
        )
    _check_store_uri(checkpoint_store)

    initial_position, shard_starts = _parse_start(opts, streams)
    initial_position_default, kcl_lease_table = _parse_start_extras(opts, initial_position)
    initial_timestamp_ms = None
    if initial_position is InitialPosition.AT_TIMESTAMP:
        if "initialTimestamp" not in opts:
            raise OptionError(
                "initialTimestamp",
                "is required with initialPosition=at_timestamp: an ISO-8601 time with a zone "
                "(2026-01-31T12:00:00Z) or epoch milliseconds",
            )
        initial_timestamp_ms = parse_timestamp_ms("initialTimestamp", opts["initialTimestamp"])
    elif "initialTimestamp" in opts:
        raise OptionError("initialTimestamp", "is only allowed with initialPosition=at_timestamp")

    efo = _parse_efo(opts, streams)

    return KinesisOptions(
        **connection,
        streams=streams,
        shard_starts=shard_starts,
        initial_position_default=initial_position_default,
        kcl_lease_table=kcl_lease_table,
        **efo,
        checkpoint_store=checkpoint_store,
        initial_position=initial_position,
        initial_timestamp_ms=initial_timestamp_ms,
        max_records_per_shard=_parse_limit(opts, "maxRecordsPerShard"),
        max_records_per_trigger=_parse_limit(opts, "maxRecordsPerTrigger"),
        max_fetch_time_ms=_parse_int(
            opts, "maxFetchTimeMs", limits.DEFAULT_MAX_FETCH_TIME_MS, minimum=1
        ),
        get_records_limit=_parse_int(
            opts,
            "getRecordsLimit",
            limits.GET_RECORDS_MAX_RECORDS,
            minimum=1,
            maximum=limits.GET_RECORDS_MAX_RECORDS,
        ),
        fetch_interval_ms=_parse_int(
            opts, "fetchIntervalMs", limits.DEFAULT_FETCH_INTERVAL_MS, minimum=0
        ),
        max_probes_per_trigger=_parse_int(
            opts, "maxProbesPerTrigger", limits.DEFAULT_MAX_PROBES_PER_TRIGGER, minimum=1
        ),
        shard_discovery_interval_ms=_parse_int(
            opts,
            "shardDiscoveryIntervalMs",
            limits.DEFAULT_SHARD_DISCOVERY_INTERVAL_MS,
            minimum=0,
        ),
        shards_per_task=_parse_int(opts, "shardsPerTask", 1, minimum=1),
        deaggregate=_parse_bool(opts, "deaggregate", True),
        decoder=_parse_decoder(opts.get("decoder")),
        fail_on_data_loss=_parse_bool(opts, "failOnDataLoss", True),
        checkpoint_region=opts.get("checkpointRegion", "").strip() or None,
        checkpoint_endpoint_url=opts.get("checkpointEndpointUrl", "").strip() or None,
        create_checkpoint_table=_parse_bool(opts, "createCheckpointTable", True),
    )


def parse_sink_options(raw: Mapping[str, str], env: Mapping[str, str] | None = None) -> SinkOptions:
    """Validate ``raw`` (a writer's option map) and return the sink's typed options."""
    kept = {k: v for k, v in raw.items() if k.lower() not in SINK_IGNORED_OPTIONS}
    opts = _by_public_name(kept, SINK_OPTION_NAMES)
    env = os.environ if env is None else env
    name = opts.get("streamName", "").strip()
    if not name:
        raise OptionError("streamName", "is required: the name of the Kinesis stream to write")
    (stream,) = _one_stream(parse_stream_names(name, opts.get("region")))
    connection = _parse_connection(opts, env, stream.name, None)
    check_region(connection["region"], (stream,), connection["endpoint_url"])
    return SinkOptions(
        **connection,
        max_record_bytes=_parse_int(
            opts,
            "maxRecordBytes",
            limits.RECORD_MAX_BYTES,
            minimum=1,
            maximum=limits.RECORD_MAX_BYTES_CONFIGURABLE,
        ),
        max_in_flight_requests=_parse_int(
            opts,
            "maxInFlightRequests",
            limits.DEFAULT_MAX_IN_FLIGHT_REQUESTS,
            minimum=1,
            maximum=limits.MAX_IN_FLIGHT_REQUESTS,
        ),
        aggregate=_parse_bool(opts, "aggregate", False),
        preserve_order=_parse_bool(opts, "preserveOrder", False),
    )


def _by_public_name(raw: Mapping[str, str], names: tuple[str, ...]) -> dict[str, str]:
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


def _parse_connection(
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
        "max_retries": _parse_int(opts, "maxRetries", limits.DEFAULT_MAX_RETRIES, minimum=0),
        "retry_base_delay_ms": _parse_int(
            opts, "retryBaseDelayMs", limits.DEFAULT_RETRY_BASE_DELAY_MS, minimum=1
        ),
        "retry_max_delay_ms": _parse_int(
            opts, "retryMaxDelayMs", limits.DEFAULT_RETRY_MAX_DELAY_MS, minimum=1
        ),
        "connect_timeout_ms": _parse_int(
            opts, "connectTimeoutMs", limits.DEFAULT_CONNECT_TIMEOUT_MS, minimum=1
        ),
        "read_timeout_ms": _parse_int(
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
    }


# -- streams and where they start (streamName, streamARN, initialPosition JSON, kcl) ------


def _parse_streams(
    opts: Mapping[str, str], env: Mapping[str, str]
) -> tuple[tuple[StreamRef, ...], str | None]:
    """The streams, and the region their ARNs name (None when named by name)."""
    names = opts.get("streamName", "").strip()
    arns = opts.get("streamARN", "").strip()
    if names and arns:
        raise OptionError(
            "streamARN",
            "cannot be given with streamName: name the streams by one of the two",
        )
    if arns:
        return parse_stream_arns(arns)
    if not names:
        raise OptionError(
            "streamName",
            "is required: the name of the Kinesis stream to read (or a comma-separated "
            "list), or give streamARN instead",
        )
    region = opts.get("region") or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
    return parse_stream_names(names, region), None


def _parse_start(
    opts: Mapping[str, str], streams: tuple[StreamRef, ...]
) -> tuple[InitialPosition, Mapping[str, Mapping[str, ShardStart]]]:
    value = opts.get("initialPosition")
    if value is not None and looks_like_json(value):
        return InitialPosition.SHARDS, parse_shard_starts(value, [s.name for s in streams])
    return _parse_initial_position(value), {}


def _parse_start_extras(
    opts: Mapping[str, str], initial_position: InitialPosition
) -> tuple[InitialPosition, str | None]:
    """``initialPositionDefault`` and ``kclLeaseTable``, each only where it means something."""
    per_shard = initial_position in (InitialPosition.SHARDS, InitialPosition.KCL)
    default = InitialPosition.LATEST
    if "initialPositionDefault" in opts:
        if not per_shard:
            raise OptionError(
                "initialPositionDefault",
                "is only allowed with initialPosition=kcl or a JSON initialPosition",
            )
        raw = opts["initialPositionDefault"]
        found = _DEFAULT_POSITIONS.get(raw.strip().lower())
        if found is None:
            valid = ", ".join(_DEFAULT_POSITIONS)
            raise OptionError(
                "initialPositionDefault", f"got {raw!r}; valid values (any case) are: {valid}"
            )
        default = found
    table = opts.get("kclLeaseTable", "").strip() or None
    if initial_position is InitialPosition.KCL and table is None:
        raise OptionError(
            "kclLeaseTable",
            "is required with initialPosition=kcl: the DynamoDB lease table of the KCL or "
            "DStream application to take over from (its application name)",
        )
    if table is not None and initial_position is not InitialPosition.KCL:
        raise OptionError("kclLeaseTable", "is only allowed with initialPosition=kcl")
    return default, table


def _one_stream(streams: tuple[StreamRef, ...]) -> tuple[StreamRef]:
    if len(streams) != 1:
        raise OptionError(
            "streamName",
            f"got {len(streams)} streams; the sink writes to one stream: one query or write "
            "per stream",
        )
    return (streams[0],)


# Enhanced fan-out: a consumer name as Kinesis takes it, and a consumer ARN's stream name.
_CONSUMER_NAME = re.compile(r"[a-zA-Z0-9_.-]{1,128}")
_CONSUMER_ARN = re.compile(r"arn:[^:]+:kinesis:[^:]*:[^:]*:stream/([^/]+)/consumer/[^/]+")
_EFO_ONLY = (
    "consumerName",
    "consumerARN",
    "deregisterConsumerOnStop",
    "consumerRegistrationTimeoutMs",
    "efoFallbackToPolling",
)


def _parse_efo(opts: Mapping[str, str], streams: tuple[StreamRef, ...]) -> dict[str, Any]:
    """The enhanced fan-out block of KinesisOptions' fields."""
    raw_mode = opts.get("consumerMode", ConsumerMode.POLLING.value).strip().lower()
    try:
        mode = ConsumerMode(raw_mode)
    except ValueError:
        valid = ", ".join(m.value for m in ConsumerMode)
        raise OptionError(
            "consumerMode", f"got {opts['consumerMode']!r}; valid values (any case) are: {valid}"
        ) from None
    if mode is ConsumerMode.POLLING:
        for name in _EFO_ONLY:
            if name in opts:
                raise OptionError(name, "is only allowed with consumerMode=efo")
        return {}
    consumer_name = opts.get("consumerName", "").strip() or None
    consumer_arn = opts.get("consumerARN", "").strip() or None
    if consumer_name is not None and consumer_arn is not None:
        raise OptionError("consumerARN", "set either consumerName or consumerARN, not both")
    if consumer_name is not None and not _CONSUMER_NAME.fullmatch(consumer_name):
        raise OptionError(
            "consumerName",
            f"got {consumer_name!r}; expected 1 to 128 letters, digits or any of _.-",
        )
    if consumer_arn is not None:
        match = _CONSUMER_ARN.fullmatch(consumer_arn)
        if match is None:
            raise OptionError(
                "consumerARN",
                f"got {consumer_arn!r}; expected a consumer ARN: "
                "arn:aws:kinesis:REGION:ACCOUNT:stream/STREAM/consumer/NAME:EPOCH",
            )
        if len(streams) != 1:
            raise OptionError(
                "consumerARN",
                "names the consumer of one stream; this query reads "
                f"{len(streams)}: use consumerName (registered on every stream) instead",
            )
        if match.group(1) != streams[0].name:
            raise OptionError(
                "consumerARN",
                f"got a consumer of stream {match.group(1)!r}; the query reads {streams[0].name!r}",
            )
        if "deregisterConsumerOnStop" in opts:
            raise OptionError(
                "deregisterConsumerOnStop",
                "is not allowed with consumerARN: a consumer given by ARN is never deregistered",
            )
    return {
        "consumer_mode": mode,
        "consumer_name": consumer_name,
        "consumer_arn": consumer_arn,
        "deregister_consumer_on_stop": _parse_bool(opts, "deregisterConsumerOnStop", False),
        "consumer_registration_timeout_ms": _parse_int(
            opts,
            "consumerRegistrationTimeoutMs",
            limits.DEFAULT_CONSUMER_REGISTRATION_TIMEOUT_MS,
            minimum=1,
        ),
        "efo_fallback_to_polling": _parse_bool(opts, "efoFallbackToPolling", True),
    }


def _check_store_uri(uri: str) -> None:
    scheme = urlparse(uri).scheme.lower()
    # A one-letter scheme is a Windows drive letter: a local path.
    if scheme and len(scheme) > 1 and scheme not in STORE_SCHEMES:
        raise OptionError(
            "checkpointStore",
            f"got {uri!r}; expected a local directory, file:///PATH, s3://BUCKET/PREFIX or "
            "dynamodb://TABLE",
        )
    if scheme in ("s3", "dynamodb") and not urlparse(uri).netloc:
        what = "bucket" if scheme == "s3" else "table"
        raise OptionError("checkpointStore", f"got {uri!r}; the URI names no {what}")


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


def _parse_initial_position(value: str | None) -> InitialPosition:
    if value is None:
        return InitialPosition.LATEST
    found = _INITIAL_POSITION_ALIASES.get(value.strip().lower())
    if found is None:
        valid = ", ".join(_INITIAL_POSITION_ALIASES)
        raise OptionError(
            "initialPosition",
            f"got {value!r}; valid values (any case) are: {valid}, or per-shard JSON "
            '{"STREAM": {"SHARD_ID": {"iteratorType": ..., "sequenceNumber": ...}}}',
        )
    return found


def _parse_decoder(value: str | None) -> Decoder:
    if value is None:
        return Decoder.FAST
    try:
        return Decoder(value.strip().lower())
    except ValueError:
        valid = ", ".join(d.value for d in Decoder)
        message = f"got {value!r}; valid values (any case) are: {valid}"
        raise OptionError("decoder", message) from None


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


def _parse_int(
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


def _parse_limit(opts: Mapping[str, str], name: str) -> int | None:
    """A count of records, at least 1; None (no limit) when the option is not set."""
    return _parse_int(opts, name, 0, minimum=1) if name in opts else None


def _parse_bool(opts: Mapping[str, str], name: str, default: bool) -> bool:
    if name not in opts:
        return default
    raw = opts[name].strip().lower()
    if raw in ("true", "1", "yes"):
        return True
    if raw in ("false", "0", "no"):
        return False
    raise OptionError(name, f"got {opts[name]!r}; expected true or false")
