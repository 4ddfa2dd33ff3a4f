"""Which input columns the sink accepts: checked on the driver, before any task runs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from kinesis_source.errors import SinkInputError

# name -> the Spark types it may have.
ACCEPTED = {
    "data": ("binary", "string"),
    "partitionKey": ("string",),
    "explicitHashKey": ("string",),
}
_DESCRIPTION = (
    "data (binary or string, required), partitionKey (string; absent: a random key per "
    "record), explicitHashKey (string, optional)"
)


@dataclass(frozen=True)
class ColumnLayout:
    """The input's names for the accepted columns (as the DataFrame spells them)."""

    data: str
    data_is_string: bool
    partition_key: str | None
    explicit_hash_key: str | None


def check_columns(fields: Sequence[tuple[str, str]]) -> ColumnLayout:
    """``fields``: (name, Spark simple type) of each input column, in order.

    Names match case-insensitively, like Spark's own column resolution.
    """
    by_lower = {name.lower(): name for name in ACCEPTED}
    found: dict[str, tuple[str, str]] = {}
    for name, kind in fields:
        canonical = by_lower.get(name.lower())
        if canonical is None:
            raise SinkInputError(
                f"column {name!r} is not accepted by the kinesis sink; the accepted columns "
                f"are: {_DESCRIPTION}. Select or rename the columns to write."
            )
        if canonical in found:
            raise SinkInputError(f"column {canonical!r} appears twice in the input")
        if kind not in ACCEPTED[canonical]:
            allowed = " or ".join(ACCEPTED[canonical])
            raise SinkInputError(
                f"column {name!r} has type {kind}; the kinesis sink takes {allowed} there "
                f"(accepted columns: {_DESCRIPTION})"
            )
        found[canonical] = (name, kind)
    if "data" not in found:
        raise SinkInputError(
            f"the input has no column 'data'; the accepted columns are: {_DESCRIPTION}"
        )
    data_name, data_kind = found["data"]
    return ColumnLayout(
        data=data_name,
        data_is_string=data_kind == "string",
        partition_key=found["partitionKey"][0] if "partitionKey" in found else None,
        explicit_hash_key=found["explicitHashKey"][0] if "explicitHashKey" in found else None,
    )
