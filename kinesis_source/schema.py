"""The rows the source produces: the Spark schema and the matching Arrow schema."""

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
