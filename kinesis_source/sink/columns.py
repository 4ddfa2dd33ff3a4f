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
# schemaRegistry=glue: a struct column ``value``, encoded with the schema, instead of data.
VALUE = "value"
_KEYS = "partitionKey (string; absent: a random key per record), explicitHashKey (string, optional)"
_DESCRIPTION = f"data (binary or string, required), {_KEYS}"
_REGISTRY_DESCRIPTION = f"value (a struct the schema encodes, required), {_KEYS}"


@dataclass(frozen=True)
class ColumnLayout:
    """The input's names for the accepted columns (as the DataFrame spells them)."""

    # The column written: ``data``, or ``value`` when it is encoded (encode_value).
    data: str
    data_is_string: bool
    partition_key: str | None
    explicit_hash_key: str | None
    # schemaRegistry=glue: ``data`` names the struct column to encode with the schema.
    encode_value: bool = False


def check_columns(fields: Sequence[tuple[str, str]], *, encode_value: bool = False) -> ColumnLayout:
    """``fields``: (name, Spark simple type) of each input column, in order.

    Names match case-insensitively, like Spark's own column resolution. ``encode_value``
    (schemaRegistry=glue): the record is the struct column ``value``, not ``data``.
    """
    accepted = dict(ACCEPTED)
    written, description = "data", _DESCRIPTION
    if encode_value:
        del accepted["data"]
        accepted[VALUE] = ("struct",)
        written, description = VALUE, _REGISTRY_DESCRIPTION
    by_lower = {name.lower(): name for name in accepted}
    found: dict[str, tuple[str, str]] = {}
    for name, kind in fields:
        canonical = by_lower.get(name.lower())
        if canonical is None:
            with_registry = " with schemaRegistry=glue" if encode_value else ""
            raise SinkInputError(
                f"column {name!r} is not accepted by the kinesis sink{with_registry}; the "
                f"accepted columns are: {description}. Select or rename the columns to write."
            )
        if canonical in found:
            raise SinkInputError(f"column {canonical!r} appears twice in the input")
        if kind.split("<")[0] not in accepted[canonical]:
            allowed = " or ".join(accepted[canonical])
            raise SinkInputError(
                f"column {name!r} has type {kind}; the kinesis sink takes {allowed} there "
                f"(accepted columns: {description})"
            )
        found[canonical] = (name, kind)
    if written not in found:
        raise SinkInputError(
            f"the input has no column '{written}'; the accepted columns are: {description}"
        )
    data_name, data_kind = found[written]
    return ColumnLayout(
        data=data_name,
        data_is_string=data_kind == "string",
        partition_key=found["partitionKey"][0] if "partitionKey" in found else None,
        explicit_hash_key=found["explicitHashKey"][0] if "explicitHashKey" in found else None,
        encode_value=encode_value,
    )
