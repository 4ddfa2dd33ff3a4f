"""The rows the source produces: the Spark schema and the matching Arrow schema.

With ``schemaRegistry=glue`` three columns follow those of every read: ``value`` (the
decoded record, its type from the reader schema), ``schemaVersionId`` and
``decodeError`` (``output_arrow_schema``).
"""

from __future__ import annotations

import pyarrow as pa

SCHEMA_DDL = (
    "data binary, streamName string, shardId string, partitionKey string, "
    "sequenceNumber string, subSequenceNumber bigint, explicitHashKey string, "
    "approximateArrivalTimestamp timestamp"
)

# Must match SCHEMA_DDL exactly, column for column (Spark rejects large_string, ns units
# and naive timestamps here).
ARROW_SCHEMA = pa.schema(
    [
        ("data", pa.binary()),
        ("streamName", pa.string()),
        ("shardId", pa.string()),
        ("partitionKey", pa.string()),
        ("sequenceNumber", pa.string()),
        ("subSequenceNumber", pa.int64()),
        ("explicitHashKey", pa.string()),
        ("approximateArrivalTimestamp", pa.timestamp("us", tz="UTC")),
    ]
)

VALUE = "value"
SCHEMA_VERSION_ID = "schemaVersionId"
DECODE_ERROR = "decodeError"


def output_arrow_schema(value_type: pa.DataType) -> pa.Schema:
    """``ARROW_SCHEMA`` and the registry's three columns, ``value`` of ``value_type``."""
    return pa.schema(
        [
            *ARROW_SCHEMA,
            pa.field(VALUE, value_type),
            pa.field(SCHEMA_VERSION_ID, pa.string()),
            pa.field(DECODE_ERROR, pa.string()),
        ]
    )
