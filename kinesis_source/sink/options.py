"""The sink's options (``df.write`` / ``writeStream.format("kinesis")``), parsed on the driver."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from kinesis_source import limits
from kinesis_source.errors import OptionError
from kinesis_source.options import (
    SINK_OPTION_NAMES,
    SINK_REGISTRY_OPTION_NAMES,
    ConnectionOptions,
    RegistrySchema,
    by_public_name,
    parse_bool,
    parse_connection,
    parse_int,
    parse_registry_schema,
)
from kinesis_source.records.glue_format import Compression
from kinesis_source.streams import StreamRef, check_region, parse_stream_names

# Spark adds this to a streaming writer's options itself; the sink ignores it.
SINK_IGNORED_OPTIONS = frozenset({"checkpointlocation"})


@dataclass(frozen=True, kw_only=True)
class SinkOptions(ConnectionOptions):
    """The sink's options (``df.write.format("kinesis")``, ``writeStream``)."""

    # Largest record (data + partition key) the stream takes; also the aggregate size cap.
    max_record_bytes: int = limits.RECORD_MAX_BYTES
    # PutRecords calls one task keeps in flight at once.
    max_in_flight_requests: int = limits.DEFAULT_MAX_IN_FLIGHT_REQUESTS
    aggregate: bool = False
    preserve_order: bool = False
    # schemaRegistry=glue: the ``value`` column is encoded with this schema's latest version
    # and framed (docs/schema-registry.md); None: the ``data`` column is written as it is.
    registry_schema: RegistrySchema | None = None
    compression: Compression = Compression.NONE


def parse_sink_options(raw: Mapping[str, str], env: Mapping[str, str] | None = None) -> SinkOptions:
    """Validate ``raw`` (a writer's option map) and return the sink's typed options."""
    kept = {k: v for k, v in raw.items() if k.lower() not in SINK_IGNORED_OPTIONS}
    opts = by_public_name(kept, SINK_OPTION_NAMES)
    env = os.environ if env is None else env
    name = opts.get("streamName", "").strip()
    if not name:
        raise OptionError("streamName", "is required: the name of the Kinesis stream to write")
    (stream,) = _one_stream(parse_stream_names(name, opts.get("region")))
    connection = parse_connection(opts, env, stream.name, None)
    check_region(connection["region"], (stream,), connection["endpoint_url"])
    registry_schema = parse_registry_schema(opts, SINK_REGISTRY_OPTION_NAMES)
    if registry_schema is not None and registry_schema.schema_name is None:
        raise OptionError(
            "schemaName",
            "is required with schemaRegistry=glue: the schema whose latest version encodes "
            "the value column",
        )
    return SinkOptions(
        **connection,
        max_record_bytes=parse_int(
            opts,
            "maxRecordBytes",
            limits.RECORD_MAX_BYTES,
            minimum=1,
            maximum=limits.RECORD_MAX_BYTES_CONFIGURABLE,
        ),
        max_in_flight_requests=parse_int(
            opts,
            "maxInFlightRequests",
            limits.DEFAULT_MAX_IN_FLIGHT_REQUESTS,
            minimum=1,
            maximum=limits.MAX_IN_FLIGHT_REQUESTS,
        ),
        aggregate=parse_bool(opts, "aggregate", False),
        preserve_order=parse_bool(opts, "preserveOrder", False),
        registry_schema=registry_schema,
        compression=Compression.parse("compression", opts.get("compression", "none")),
    )


def _one_stream(streams: tuple[StreamRef, ...]) -> tuple[StreamRef]:
    if len(streams) != 1:
        raise OptionError(
            "streamName",
            f"got {len(streams)} streams; the sink writes to one stream: one query or write "
            "per stream",
        )
    return (streams[0],)
