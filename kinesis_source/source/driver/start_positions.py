"""Per-shard start positions given as JSON in ``initialPosition`` (the JVM connectors' shape).

    {"STREAM": {"shardId-000000000000": {"iteratorType": "AFTER_SEQUENCE_NUMBER",
                                         "sequenceNumber": "4959..."}, ...}, ...}

Parsed on the driver into ``ShardStart``s; whether each named shard exists is checked when
the query starts (``resolve_shard_starts``), since that needs the shard listing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from kinesis_source.errors import OptionError
from kinesis_source.source.driver.lineage import ShardInfo, advance_shards
from kinesis_source.source.positions import (
    AFTER_SEQUENCE_NUMBER,
    AT_SEQUENCE_NUMBER,
    AT_TIMESTAMP,
    TRIM_HORIZON,
    Position,
)

LATEST = "LATEST"
ITERATOR_TYPES = (TRIM_HORIZON, LATEST, AT_TIMESTAMP, AT_SEQUENCE_NUMBER, AFTER_SEQUENCE_NUMBER)
_OPTION = "initialPosition"


@dataclass(frozen=True)
class ShardStart:
    """Where one shard starts. ``LATEST`` has no position of its own: it is resolved to the
    query's start time, once, like ``initialPosition=latest``."""

    iterator_type: str
    sequence: str | None = None
    sub: int | None = None
    timestamp_ms: int | None = None

    def position(self, latest_ms: int) -> Position:
        if self.iterator_type == LATEST:
            return Position.at_timestamp(latest_ms)
        if self.iterator_type == TRIM_HORIZON:
            return Position.trim_horizon()
        if self.iterator_type == AT_TIMESTAMP:
            assert self.timestamp_ms is not None
            return Position.at_timestamp(self.timestamp_ms)
        assert self.sequence is not None
        if self.iterator_type == AT_SEQUENCE_NUMBER:
            return Position(AT_SEQUENCE_NUMBER, sequence=self.sequence)
        return Position.after(self.sequence, self.sub)


def looks_like_json(value: str) -> bool:
    return value.lstrip().startswith(("{", "["))


def parse_shard_starts(value: str, streams: Iterable[str]) -> dict[str, dict[str, ShardStart]]:
    """Stream name -> shard id -> start, from the JSON of ``initialPosition``."""
    try:
        data = json.loads(value)
    except ValueError as exc:
        raise OptionError(_OPTION, f"is not valid JSON ({exc}): {value!r}") from None
    known = list(streams)
    if not isinstance(data, dict) or not data:
        raise OptionError(
            _OPTION,
            f"got {value!r}; expected a JSON object of streams, each an object of shard ids: "
            '{"STREAM": {"shardId-000000000000": {"iteratorType": "AFTER_SEQUENCE_NUMBER", '
            '"sequenceNumber": "..."}}}',
        )
    starts: dict[str, dict[str, ShardStart]] = {}
    for stream, shards in data.items():
        if stream not in known:
            raise OptionError(
                _OPTION,
                f"names the stream {stream!r}, which the query does not read; it reads "
                f"{', '.join(map(repr, known))}",
            )
        if not isinstance(shards, dict):
            raise OptionError(
                _OPTION, f"stream {stream!r}: expected an object of shard ids, got {shards!r}"
            )
        starts[stream] = {
            str(sid): _shard_start(stream, str(sid), spec) for sid, spec in shards.items()
        }
    return starts


def _shard_start(stream: str, shard_id: str, spec: Any) -> ShardStart:
    where = f"stream {stream!r} shard {shard_id!r}"
    if not isinstance(spec, dict):
        raise OptionError(_OPTION, f"{where}: expected an object with iteratorType, got {spec!r}")
    unknown = set(spec) - {"iteratorType", "sequenceNumber", "subSequenceNumber", "timestamp"}
    if unknown:
        raise OptionError(
            _OPTION,
            f"{where}: unknown keys {sorted(unknown)}; allowed: iteratorType, sequenceNumber, "
            "subSequenceNumber (AFTER_SEQUENCE_NUMBER only), timestamp (AT_TIMESTAMP only)",
        )
    kind = spec.get("iteratorType")
    if kind not in ITERATOR_TYPES:
        raise OptionError(
            _OPTION,
            f"{where}: got the iteratorType {kind!r}; valid values are: "
            f"{', '.join(ITERATOR_TYPES)}",
        )
    needs = {
        AT_SEQUENCE_NUMBER: {"sequenceNumber"},
        AFTER_SEQUENCE_NUMBER: {"sequenceNumber"},
        AT_TIMESTAMP: {"timestamp"},
    }.get(kind, set())
    may = needs | ({"subSequenceNumber"} if kind == AFTER_SEQUENCE_NUMBER else set())
    missing, extra = needs - set(spec), set(spec) - may - {"iteratorType"}
    if missing or extra:
        raise OptionError(
            _OPTION,
            f"{where}: iteratorType {kind} takes "
            f"{', '.join(sorted(may)) or 'no other key'}; got {json.dumps(spec)}",
        )
    sequence = spec.get("sequenceNumber")
    if sequence is not None and not (isinstance(sequence, str) and sequence.isdigit()):
        raise OptionError(
            _OPTION, f"{where}: sequenceNumber must be a string of digits, got {sequence!r}"
        )
    sub = spec.get("subSequenceNumber")
    if sub is not None and not (isinstance(sub, int) and not isinstance(sub, bool) and sub >= 0):
        raise OptionError(
            _OPTION, f"{where}: subSequenceNumber must be an integer >= 0, got {sub!r}"
        )
    stamp = spec.get("timestamp")
    if stamp is not None and not (isinstance(stamp, int) and not isinstance(stamp, bool)):
        raise OptionError(
            _OPTION, f"{where}: timestamp must be epoch milliseconds (an integer), got {stamp!r}"
        )
    return ShardStart(kind, sequence=sequence, sub=sub, timestamp_ms=stamp)


def resolve_shard_starts(
    stream: str,
    named: Mapping[str, ShardStart],
    listed: Iterable[str],
    latest_ms: int,
) -> dict[str, Position]:
    """The positions of the shards ``named`` for ``stream``; a shard that the stream does not
    have is an error naming it (a typo must not silently read from the default)."""
    present = set(listed)
    for sid in sorted(named):
        if sid not in present:
            raise OptionError(
                _OPTION,
                f"names shard {sid!r} of stream {stream!r}, which the stream does not have "
                f"(its shards: {', '.join(sorted(present)) or 'none'})",
            )
    return {sid: start.position(latest_ms) for sid, start in named.items()}


def start_shards(
    listing: Iterable[ShardInfo], given: Mapping[str, Position], default: Position
) -> dict[str, Position]:
    """The shards a query tracks at its start, when some shards have positions of their own
    (the JSON option or a KCL lease table) and the rest start at ``default``.

    A given ``SHARD_END`` marks the shard finished, and a shard with any other given position
    has finished parents (the KCL reads parents first, and so do we). A shard not given but
    descended from a given one starts at TRIM_HORIZON: its records all come after the
    ancestor's, which were read, so starting it anywhere later would skip some. Parent before
    child holds as for any start (lineage.py): a child is tracked once its parents finish.
    The same goes for a shard descended from a finished one, which a table may not know yet.
    """
    shards = list(listing)
    listed = {info.shard_id: info for info in shards}
    finished = {sid for sid, pos in given.items() if sid in listed and pos.is_shard_end}
    for sid, pos in given.items():
        if sid in listed and not pos.is_shard_end:
            finished |= _ancestors_of(sid, listed)
    # Shards whose records all follow records the application read.
    read = set(given) | finished
    covered = {sid for sid in listed if _ancestors_of(sid, listed) & read}

    def start_of(sid: str) -> Position:
        if sid in given:
            return given[sid]
        return Position.trim_horizon() if sid in covered else default

    tracked: dict[str, Position] = {sid: Position.shard_end() for sid in finished}
    # advance_shards adds one generation per call: repeat until nothing changes.
    while True:
        advanced = advance_shards(tracked, shards, _PENDING)
        advanced = {sid: start_of(sid) if pos == _PENDING else pos for sid, pos in advanced.items()}
        if advanced == tracked:
            return tracked
        tracked = advanced


# A marker no real start equals: advance_shards puts it on the shards it adds.
_PENDING = Position("PENDING")


def _ancestors_of(shard_id: str, listed: Mapping[str, ShardInfo]) -> set[str]:
    seen: set[str] = set()
    stack = list(listed[shard_id].parents) if shard_id in listed else []
    while stack:
        sid = stack.pop()
        if sid in seen:
            continue
        seen.add(sid)
        if sid in listed:
            stack.extend(listed[sid].parents)
    return seen
