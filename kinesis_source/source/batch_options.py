"""A batch read's options (``spark.read.format("kinesis")``): where its range starts and ends.

The source's options (``source/options.py``) say which streams, how to call them and where
the range starts; a batch read changes two defaults and adds an end (docs/design.md
section 19):

- the start defaults to ``trim_horizon`` (so does ``initialPositionDefault``), and
  ``latest`` is an error: it means the records that arrive after the read starts, and a
  batch read ends when it is planned, so it would always be empty;
- ``endingPosition``: ``latest`` (the default: what arrived by the time the read is
  planned), ``at_timestamp`` with ``endingTimestamp`` (records that arrived before it), or
  per-shard JSON in the shape of ``initialPosition``'s, where ``AT_SEQUENCE_NUMBER`` ends
  before that record and ``AFTER_SEQUENCE_NUMBER`` after it (and its
  ``subSequenceNumber``, if given);
- ``checkpointStore`` and the options that shape micro-batches are accepted and unused, so
  that one options map serves a stream and a backfill of it; enhanced fan-out is an error.

Checked here without I/O; what needs the shard listing (a shard the end names that its
stream does not have, an end before a shard's start) is checked when the read is planned
(``driver/batch_plan.py``), still on the driver before any task runs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import Enum

from kinesis_source.errors import OptionError
from kinesis_source.options import SOURCE_OPTION_NAMES, by_public_name, parse_timestamp_ms
from kinesis_source.source.driver.start_positions import (
    LATEST,
    ShardStart,
    looks_like_json,
    parse_shard_starts,
)
from kinesis_source.source.options import (
    ConsumerMode,
    InitialPosition,
    KinesisOptions,
    parse_options,
)
from kinesis_source.source.positions import AFTER_SEQUENCE_NUMBER, AT_SEQUENCE_NUMBER


class EndingPosition(Enum):
    LATEST = "latest"
    AT_TIMESTAMP = "at_timestamp"
    # Per-shard ends from JSON (BatchEnd.shard_ends); the other shards end as for latest.
    SHARDS = "json"


END_ITERATOR_TYPES = (AT_SEQUENCE_NUMBER, AFTER_SEQUENCE_NUMBER)
_END_JSON = (
    '{"STREAM": {"SHARD_ID": {"iteratorType": "AT_SEQUENCE_NUMBER" or '
    '"AFTER_SEQUENCE_NUMBER", "sequenceNumber": "..."}}}'
)
_LATEST_START = (
    "latest is not a start for a batch read: it means the records that arrive after the "
    "read starts, and a batch read ends when it is planned"
)


@dataclass(frozen=True)
class BatchEnd:
    """Where a batch read's range ends."""

    kind: EndingPosition = EndingPosition.LATEST
    # endingTimestamp (epoch ms): the range holds the records that arrived before it.
    timestamp_ms: int | None = None
    # endingPosition JSON: stream -> shard id -> end (AT_ or AFTER_SEQUENCE_NUMBER).
    shard_ends: Mapping[str, Mapping[str, ShardStart]] = field(default_factory=dict)


@dataclass(frozen=True)
class BatchRead:
    """A batch read's options: the source's (start, streams, connection) and the end."""

    opts: KinesisOptions
    end: BatchEnd


def parse_batch_read(raw: Mapping[str, str], env: Mapping[str, str] | None = None) -> BatchRead:
    """Validate ``raw`` (Spark's option map) for ``spark.read``."""
    opts = parse_options(raw, env, stream=False)
    given = by_public_name(raw, SOURCE_OPTION_NAMES)
    if "initialPosition" not in given:
        opts = replace(opts, initial_position=InitialPosition.TRIM_HORIZON)
    elif opts.initial_position is InitialPosition.LATEST:
        raise OptionError(
            "initialPosition",
            f"{_LATEST_START}; valid values (any case) are: trim_horizon (the default), "
            "earliest, at_timestamp, kcl, or per-shard JSON",
        )
    if "initialPositionDefault" not in given:
        opts = replace(opts, initial_position_default=InitialPosition.TRIM_HORIZON)
    elif opts.initial_position_default is InitialPosition.LATEST:
        raise OptionError(
            "initialPositionDefault",
            f"{_LATEST_START}; valid values (any case) are: trim_horizon (the default), earliest",
        )
    for stream, shards in sorted(opts.shard_starts.items()):
        for sid, start in sorted(shards.items()):
            if start.iterator_type == LATEST:
                raise OptionError(
                    "initialPosition",
                    f"stream {stream!r} shard {sid!r}: {_LATEST_START}; valid iteratorTypes "
                    "for a batch read: TRIM_HORIZON, AT_TIMESTAMP, AT_SEQUENCE_NUMBER, "
                    "AFTER_SEQUENCE_NUMBER",
                )
    if opts.consumer_mode is ConsumerMode.EFO:
        raise OptionError(
            "consumerMode",
            "efo is for streams only: a batch read reads its range with GetRecords; valid "
            "value for a batch read: polling (the default)",
        )
    return BatchRead(opts, _parse_end(given, opts))


def _parse_end(given: Mapping[str, str], opts: KinesisOptions) -> BatchEnd:
    raw = given.get("endingPosition", EndingPosition.LATEST.value)
    if looks_like_json(raw):
        kind, shard_ends = EndingPosition.SHARDS, _parse_shard_ends(raw, opts)
    else:
        try:
            kind, shard_ends = EndingPosition(raw.strip().lower()), {}
        except ValueError:
            raise OptionError(
                "endingPosition",
                f"got {raw!r}; valid values (any case) are: latest (the default), "
                f"at_timestamp (with endingTimestamp), or per-shard JSON {_END_JSON}",
            ) from None
        if kind is EndingPosition.SHARDS:  # "json" spelled out is no JSON
            raise OptionError("endingPosition", f"got {raw!r}; expected per-shard JSON {_END_JSON}")
    if kind is not EndingPosition.AT_TIMESTAMP:
        if "endingTimestamp" in given:
            raise OptionError(
                "endingTimestamp",
                f"is only allowed with endingPosition=at_timestamp (endingPosition is {raw!r})",
            )
        return BatchEnd(kind, shard_ends=shard_ends)
    if "endingTimestamp" not in given:
        raise OptionError(
            "endingTimestamp",
            "is required with endingPosition=at_timestamp: an ISO-8601 time with a zone "
            "(2026-01-31T13:00:00Z) or epoch milliseconds; the read holds the records that "
            "arrived before it",
        )
    end_ms = parse_timestamp_ms("endingTimestamp", given["endingTimestamp"])
    start_ms = opts.initial_timestamp_ms
    if opts.initial_position is InitialPosition.AT_TIMESTAMP and start_ms is not None:
        if end_ms < start_ms:
            raise OptionError(
                "endingTimestamp",
                f"got {given['endingTimestamp']!r} ({end_ms} epoch ms), which is before "
                f"initialTimestamp ({start_ms} epoch ms): the end of a range must be at or "
                "after its start",
            )
    return BatchEnd(EndingPosition.AT_TIMESTAMP, timestamp_ms=end_ms)


def _parse_shard_ends(raw: str, opts: KinesisOptions) -> dict[str, dict[str, ShardStart]]:
    """The JSON of ``endingPosition``: the shape of ``initialPosition``'s, ends only."""
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise OptionError("endingPosition", f"is not valid JSON ({exc}): {raw!r}") from None
    if isinstance(data, dict):
        for stream, shards in data.items():
            for sid, spec in (shards or {}).items() if isinstance(shards, dict) else ():
                kind = spec.get("iteratorType") if isinstance(spec, dict) else None
                if kind not in END_ITERATOR_TYPES:
                    raise OptionError(
                        "endingPosition",
                        f"stream {stream!r} shard {sid!r}: got the iteratorType {kind!r}; "
                        f"valid values for an end are: {', '.join(END_ITERATOR_TYPES)} "
                        "(AT_SEQUENCE_NUMBER ends before that record, AFTER_SEQUENCE_NUMBER "
                        "after it)",
                    )
    try:
        return parse_shard_starts(raw, [ref.name for ref in opts.streams])
    except OptionError as exc:
        # The same shape as initialPosition's JSON: name the option the user gave.
        detail = str(exc).removeprefix(f"option '{exc.option}': ")
        raise OptionError("endingPosition", detail) from None
