"""The source's options (``readStream.format("kinesis")``), parsed once on the driver.

``KinesisOptions`` adds to the connection options (``kinesis_source/options.py``) where the
streams start, the checkpoint store, the read's caps and pacing, and enhanced fan-out. The
reader pickles it to every task: it holds plain values only.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any
from urllib.parse import urlparse

from kinesis_source import limits
from kinesis_source.errors import OptionError
from kinesis_source.options import (
    BATCH_ONLY_OPTION_NAMES,
    EFO_ONLY_OPTION_NAMES,
    SOURCE_OPTION_NAMES,
    SOURCE_REGISTRY_OPTION_NAMES,
    ConnectionOptions,
    RegistrySchema,
    by_public_name,
    parse_bool,
    parse_connection,
    parse_enum,
    parse_int,
    parse_limit,
    parse_registry_schema,
    parse_timestamp_ms,
)
from kinesis_source.source.driver.start_positions import (
    ShardStart,
    looks_like_json,
    parse_shard_starts,
)
from kinesis_source.streams import (
    StreamRef,
    check_region,
    parse_stream_arns,
    parse_stream_names,
)

STORE_SCHEMES = ("file", "s3", "dynamodb")


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


@dataclass(frozen=True, kw_only=True)
class KinesisOptions(ConnectionOptions):
    """The source's options."""

    # Empty for a batch read, which records nothing.
    checkpoint_store: str = ""
    initial_position: InitialPosition = InitialPosition.LATEST
    # Epoch milliseconds; set only with initial_position AT_TIMESTAMP.
    initial_timestamp_ms: int | None = None
    max_records_per_shard: int | None = None
    # Rows per micro-batch over all shards (ReadMaxRows); None: no limit.
    max_records_per_trigger: int | None = None
    # Bytes of record data per micro-batch over all shards (ReadMaxBytes); None: no limit.
    max_bytes_per_trigger: int | None = None
    max_fetch_time_ms: int = limits.DEFAULT_MAX_FETCH_TIME_MS
    get_records_limit: int = limits.GET_RECORDS_MAX_RECORDS
    fetch_interval_ms: int = limits.DEFAULT_FETCH_INTERVAL_MS
    # Idle shards one trigger probes, at most, per stream (driver/pacing.py).
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
    # None: derived from the query's id (driver/consumers.py: default_consumer_name).
    consumer_name: str | None = None
    # An already registered consumer, used as it is (never registered or deregistered).
    consumer_arn: str | None = None
    deregister_consumer_on_stop: bool = False
    consumer_registration_timeout_ms: int = limits.DEFAULT_CONSUMER_REGISTRATION_TIMEOUT_MS
    # A batch whose SubscribeToShard is refused because another Python worker subscribed
    # the shard under 5 s ago reads by GetRecords instead of waiting (executor/efo.py).
    efo_fallback_to_polling: bool = True
    # -- the AWS Glue Schema Registry (docs/schema-registry.md) ----------------------------
    # None: records are not decoded (no value, schemaVersionId and decodeError columns).
    registry_schema: RegistrySchema | None = None
    # The reader schema's version number; None: the schema's latest at the query's start.
    schema_version_number: int | None = None
    # An undecodable record stops the query instead of getting a decodeError.
    fail_on_decode_error: bool = False

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


def parse_options(
    raw: Mapping[str, str], env: Mapping[str, str] | None = None, *, stream: bool = True
) -> KinesisOptions:
    """Validate ``raw`` (Spark's option map) and return the source's typed options.

    ``env`` defaults to ``os.environ``; it supplies the region when the option is absent.
    ``stream=False``: the options of a batch read, or of a read whose kind Spark has not
    said yet (``schema()``): no checkpointStore needed, the batch-only options let through
    (``batch_options.parse_batch_read`` checks them).
    """
    opts = by_public_name(raw, SOURCE_OPTION_NAMES)
    if stream:
        for name in BATCH_ONLY_OPTION_NAMES:
            if name in opts:
                raise OptionError(
                    name,
                    "is only for batch reads (spark.read): a stream has no end; to stop at "
                    "the records there now, run it with Trigger.AvailableNow",
                )
    env = os.environ if env is None else env
    streams, arn_region = _parse_streams(opts, env)
    connection = parse_connection(opts, env, streams[0].name, arn_region)
    check_region(connection["region"], streams, connection["endpoint_url"])

    checkpoint_store = opts.get("checkpointStore", "").strip()
    if not checkpoint_store and stream:
        raise OptionError(
            "checkpointStore",
            "is required: where the connector records what each batch read: a local "
            "directory or file:// URI (local mode), s3://BUCKET/PREFIX or dynamodb://TABLE",
        )
    if checkpoint_store:
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
    registry_schema = parse_registry_schema(opts, SOURCE_REGISTRY_OPTION_NAMES)
    if registry_schema is not None and registry_schema.schema_name is None:
        for name in ("registryName", "schemaVersionNumber"):
            if name in opts:
                raise OptionError(name, "is only allowed with schemaName (the reader schema)")

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
        max_records_per_shard=parse_limit(opts, "maxRecordsPerShard"),
        max_records_per_trigger=parse_limit(opts, "maxRecordsPerTrigger"),
        max_bytes_per_trigger=parse_limit(opts, "maxBytesPerTrigger"),
        max_fetch_time_ms=parse_int(
            opts, "maxFetchTimeMs", limits.DEFAULT_MAX_FETCH_TIME_MS, minimum=1
        ),
        get_records_limit=parse_int(
            opts,
            "getRecordsLimit",
            limits.GET_RECORDS_MAX_RECORDS,
            minimum=1,
            maximum=limits.GET_RECORDS_MAX_RECORDS,
        ),
        fetch_interval_ms=parse_int(
            opts, "fetchIntervalMs", limits.DEFAULT_FETCH_INTERVAL_MS, minimum=0
        ),
        max_probes_per_trigger=parse_int(
            opts, "maxProbesPerTrigger", limits.DEFAULT_MAX_PROBES_PER_TRIGGER, minimum=1
        ),
        shard_discovery_interval_ms=parse_int(
            opts,
            "shardDiscoveryIntervalMs",
            limits.DEFAULT_SHARD_DISCOVERY_INTERVAL_MS,
            minimum=0,
        ),
        shards_per_task=parse_int(opts, "shardsPerTask", 1, minimum=1),
        deaggregate=parse_bool(opts, "deaggregate", True),
        decoder=parse_enum("decoder", opts.get("decoder", Decoder.FAST.value), Decoder),
        fail_on_data_loss=parse_bool(opts, "failOnDataLoss", True),
        checkpoint_region=opts.get("checkpointRegion", "").strip() or None,
        checkpoint_endpoint_url=opts.get("checkpointEndpointUrl", "").strip() or None,
        create_checkpoint_table=parse_bool(opts, "createCheckpointTable", True),
        registry_schema=registry_schema,
        schema_version_number=(
            parse_int(opts, "schemaVersionNumber", 0, minimum=1)
            if "schemaVersionNumber" in opts
            else None
        ),
        fail_on_decode_error=parse_bool(opts, "failOnDecodeError", False),
    )


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


# Enhanced fan-out: a consumer name as Kinesis takes it, and a consumer ARN's stream name.
_CONSUMER_NAME = re.compile(r"[a-zA-Z0-9_.-]{1,128}")
_CONSUMER_ARN = re.compile(r"arn:[^:]+:kinesis:[^:]*:[^:]*:stream/([^/]+)/consumer/[^/]+")


def _parse_efo(opts: Mapping[str, str], streams: tuple[StreamRef, ...]) -> dict[str, Any]:
    """The enhanced fan-out block of KinesisOptions' fields."""
    raw_mode = opts.get("consumerMode", ConsumerMode.POLLING.value)
    mode = parse_enum("consumerMode", raw_mode, ConsumerMode)
    if mode is ConsumerMode.POLLING:
        for name in EFO_ONLY_OPTION_NAMES:
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
        "deregister_consumer_on_stop": parse_bool(opts, "deregisterConsumerOnStop", False),
        "consumer_registration_timeout_ms": parse_int(
            opts,
            "consumerRegistrationTimeoutMs",
            limits.DEFAULT_CONSUMER_REGISTRATION_TIMEOUT_MS,
            minimum=1,
        ),
        "efo_fallback_to_polling": parse_bool(opts, "efoFallbackToPolling", True),
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
