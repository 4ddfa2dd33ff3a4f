"""Shard positions and the offsets Spark logs (docs/design.md section 2).

A position is text such as ``AFTER_SEQUENCE_NUMBER(4959...,3)`` so that offsets stay small,
readable JSON. Sequence numbers are decimal strings and are compared as integers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

TRIM_HORIZON = "TRIM_HORIZON"
AT_TIMESTAMP = "AT_TIMESTAMP"
AT_SEQUENCE_NUMBER = "AT_SEQUENCE_NUMBER"
AFTER_SEQUENCE_NUMBER = "AFTER_SEQUENCE_NUMBER"
SHARD_END = "SHARD_END"

# The single-stream reader's offsets (``stream`` and ``shards`` at the top): still read.
SINGLE_STREAM_OFFSET_VERSION = 1

_POSITION_RE = re.compile(r"^([A-Z_]+)(?:\((\d+)(?:,(\d+))?\))?$")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True)
class Position:
    """Where a shard read starts (or, recorded as an end, where it stopped).

    ``sub`` is only set on ``AFTER_SEQUENCE_NUMBER`` when a KPL aggregate was split: the
    user records of ``sequence`` up to and including sub-sequence ``sub`` were consumed.

    ``skip_sequence`` is only set on ``AT_TIMESTAMP``, by a read that walked empty pages
    from a sequence-number position (docs/design.md section 12, "Empty stretches"): read
    from the timestamp, but the records up to and including ``skip_sequence`` were
    consumed already. Its text is ``AT_TIMESTAMP(ms,seq)``.
    """

    kind: str
    sequence: str | None = None
    sub: int | None = None
    timestamp_ms: int | None = None
    skip_sequence: str | None = None

    @staticmethod
    def trim_horizon() -> Position:
        return Position(TRIM_HORIZON)

    @staticmethod
    def shard_end() -> Position:
        return Position(SHARD_END)

    @staticmethod
    def at_timestamp(ms: int) -> Position:
        return Position(AT_TIMESTAMP, timestamp_ms=ms)

    @staticmethod
    def after(sequence: str, sub: int | None = None) -> Position:
        return Position(AFTER_SEQUENCE_NUMBER, sequence=sequence, sub=sub)

    @staticmethod
    def walked_to(ms: int, skip_sequence: str | None = None) -> Position:
        """How far a read of empty pages got: records that arrived from ``ms`` on, except
        those up to ``skip_sequence`` (read before the walk started)."""
        return Position(AT_TIMESTAMP, timestamp_ms=ms, skip_sequence=skip_sequence)

    @property
    def is_shard_end(self) -> bool:
        return self.kind == SHARD_END

    def text(self) -> str:
        if self.kind in (TRIM_HORIZON, SHARD_END):
            return self.kind
        if self.kind == AT_TIMESTAMP:
            if self.skip_sequence is not None:
                return f"{AT_TIMESTAMP}({self.timestamp_ms},{self.skip_sequence})"
            return f"{AT_TIMESTAMP}({self.timestamp_ms})"
        if self.sub is not None:
            return f"{self.kind}({self.sequence},{self.sub})"
        return f"{self.kind}({self.sequence})"

    @staticmethod
    def parse(text: str) -> Position:
        match = _POSITION_RE.match(text)
        if match is None:
            raise ValueError(f"not a shard position: {text!r}")
        kind, number, sub = match.group(1), match.group(2), match.group(3)
        if kind in (TRIM_HORIZON, SHARD_END) and number is None:
            return Position(kind)
        if kind == AT_TIMESTAMP and number is not None:
            return Position(kind, timestamp_ms=int(number), skip_sequence=sub)
        if kind == AT_SEQUENCE_NUMBER and number is not None and sub is None:
            return Position(kind, sequence=number)
        if kind == AFTER_SEQUENCE_NUMBER and number is not None:
            return Position(kind, sequence=number, sub=None if sub is None else int(sub))
        raise ValueError(f"not a shard position: {text!r}")

    def iterator_request(self) -> dict[str, Any]:
        """Keyword arguments of GetShardIterator that start reading at this position.

        A split aggregate restarts AT its sequence number; the reader then skips the user
        records already consumed (see ``skip_through``).
        """
        if self.kind == TRIM_HORIZON:
            return {"ShardIteratorType": TRIM_HORIZON}
        if self.kind == AT_TIMESTAMP:
            assert self.timestamp_ms is not None
            # Exact milliseconds (no float rounding); clients.py makes botocore send them.
            when = _EPOCH + timedelta(milliseconds=self.timestamp_ms)
            return {"ShardIteratorType": AT_TIMESTAMP, "Timestamp": when}
        if self.kind == AT_SEQUENCE_NUMBER or self.sub is not None:
            return {
                "ShardIteratorType": AT_SEQUENCE_NUMBER,
                "StartingSequenceNumber": self.sequence,
            }
        if self.kind == AFTER_SEQUENCE_NUMBER:
            return {
                "ShardIteratorType": AFTER_SEQUENCE_NUMBER,
                "StartingSequenceNumber": self.sequence,
            }
        raise ValueError(f"no iterator starts at {self.text()}")

    def skip_through(self) -> tuple[int, int | None] | None:
        """(sequence, sub) of the last user record consumed of a split aggregate, or
        (sequence, None) of the last whole record consumed before a walk, if any: a read
        from here skips what lies at or before it."""
        if self.kind == AFTER_SEQUENCE_NUMBER and self.sub is not None:
            assert self.sequence is not None
            return int(self.sequence), self.sub
        if self.skip_sequence is not None:
            return int(self.skip_sequence), None
        return None


@dataclass(frozen=True)
class ShardEnd:
    """What one read of one shard in one batch recorded in the checkpoint store."""

    position: Position
    records: int
    millis_behind_latest: int | None
    caught_up: bool
    # When the store recorded it (epoch ms); set when read back from a store. Metadata,
    # not part of what was read, so not compared.
    written_at_ms: int | None = field(default=None, compare=False)
    # Trigger.AvailableNow: the arrival-time bound (epoch ms) the read stopped at, if it
    # stopped because the next record arrived after it.
    reached_bound_ms: int | None = None
    # consumerMode=efo: the read took its records by GetRecords, its SubscribeToShard
    # having been refused (another Python worker subscribed the shard under 5 s ago).
    efo_fallback: bool = False
    # The sequence number of the first record the read met, when it started at TRIM_HORIZON
    # or a timestamp (Kinesis resolves those): a replay that meets a later first record
    # knows the trim horizon moved past records the first attempt read (docs/design.md
    # section 11). None for sequence-number starts, reads that met no record, old entries.
    first_sequence: str | None = None
    # The end is an enhanced fan-out continuation sequence number, not a record's: a replay
    # by GetRecords that reaches the shard's tip before it is complete (section 13).
    end_at_continuation: bool = False
    # How much longer than fetchIntervalMs after this read the shard's next call must wait,
    # because its last page spent the shard's read quota (get_records.call_gap_s). A
    # duration, not a time: the driver adds it to ``written_at_ms`` on its own clock.
    # Pacing only, not compared.
    quota_wait_ms: int = field(default=0, compare=False)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "end": self.position.text(),
            "records": self.records,
            "millisBehindLatest": self.millis_behind_latest,
            "caughtUp": self.caught_up,
        }
        if self.reached_bound_ms is not None:
            data["reachedBoundMs"] = self.reached_bound_ms
        if self.efo_fallback:
            data["efoFallback"] = True
        if self.first_sequence is not None:
            data["firstSequence"] = self.first_sequence
        if self.end_at_continuation:
            data["endAtContinuation"] = True
        if self.quota_wait_ms:
            data["quotaWaitMs"] = self.quota_wait_ms
        return data

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> ShardEnd:
        bound = data.get("reachedBoundMs")
        first = data.get("firstSequence")
        return ShardEnd(
            position=Position.parse(data["end"]),
            records=int(data.get("records", 0)),
            millis_behind_latest=data.get("millisBehindLatest"),
            caught_up=bool(data.get("caughtUp", False)),
            written_at_ms=None if data.get("writtenAtMs") is None else int(data["writtenAtMs"]),
            reached_bound_ms=None if bound is None else int(bound),
            efo_fallback=bool(data.get("efoFallback", False)),
            first_sequence=None if first is None else str(first),
            end_at_continuation=bool(data.get("endAtContinuation", False)),
            quota_wait_ms=int(data.get("quotaWaitMs", 0)),
        )


# -- the offsets Spark logs ----------------------------------------------------------------

QUERY_OFFSET_VERSION = 2


@dataclass(frozen=True)
class StreamOffset:
    """One stream's part of ``O_n``: the positions batch ``n`` starts reading from, one per
    tracked shard of the stream.

    ``since_ms`` is the resolved start time of a ``latest``/``at_timestamp`` start: shards
    discovered later start there rather than at TRIM_HORIZON, so a child of a long-closed
    parent is not read from its beginning. It is per stream because a stream added to the
    list in a later run starts at that run's time, not at the query's.

    ``limits`` caps the records batch ``n`` reads per shard (admission control); a shard
    absent from it reads up to the ``maxRecordsPerShard`` cap, a shard at 0 is not planned
    in this batch and keeps its position. It lives in the offset so that a replay of the
    batch plans and reads the same. ``byte_limits`` does the same for the bytes of record
    data (``maxBytesPerTrigger``); a shard absent from it has no byte limit.
    """

    shards: Mapping[str, Position] = field(default_factory=dict)
    since_ms: int | None = None
    limits: Mapping[str, int] = field(default_factory=dict)
    byte_limits: Mapping[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        shards: dict[str, dict[str, Any]] = {}
        for sid in sorted(self.shards):
            entry: dict[str, Any] = {"at": self.shards[sid].text()}
            if sid in self.limits:
                entry["limit"] = self.limits[sid]
            if sid in self.byte_limits:
                entry["bytes"] = self.byte_limits[sid]
            shards[sid] = entry
        return {"sinceMs": self.since_ms, "shards": shards}

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> StreamOffset:
        shards = data["shards"]
        return StreamOffset(
            shards={sid: Position.parse(s["at"]) for sid, s in shards.items()},
            since_ms=None if data.get("sinceMs") is None else int(data["sinceMs"]),
            limits={sid: int(s["limit"]) for sid, s in shards.items() if "limit" in s},
            byte_limits={sid: int(s["bytes"]) for sid, s in shards.items() if "bytes" in s},
        )

    def planned_shards(self) -> list[str]:
        """Shards the batch reads: readable ones whose limits are not 0, sorted."""
        return [
            sid
            for sid in sorted(self.shards)
            if not self.shards[sid].is_shard_end
            and self.limits.get(sid) != 0
            and self.byte_limits.get(sid) != 0
        ]

    def start_position_for_new_shard(self) -> Position:
        if self.since_ms is None:
            return Position.trim_horizon()
        return Position.at_timestamp(self.since_ms)


@dataclass(frozen=True)
class QueryOffset:
    """``O_n`` over every stream of the query, as Spark logs it (docs/design.md section 2):

        {"v": 2, "batch": n, "query": "...", "untilMs": <ms, AvailableNow only>,
         "streams": {"STREAM": {"sinceMs": <ms or null>,
                                "shards": {"shardId-...": {"at": ..., "limit": ...,
                                                           "bytes": ...}}}}}

    Streams and shards in sorted order, so equal offsets are equal JSON strings (Spark
    compares them as strings). ``query`` is a random id made once by ``initialOffset`` and
    carried forward, so that two queries sharing a checkpoint store never read each other's
    entries; ``until_ms`` is Trigger.AvailableNow's bound: records that arrived after it
    (epoch ms) are not read. ``from_json`` also reads version 1, written by the
    single-stream reader, so that a checkpoint taken before goes on where it was.
    """

    batch: int
    query: str
    streams: Mapping[str, StreamOffset] = field(default_factory=dict)
    until_ms: int | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"v": QUERY_OFFSET_VERSION, "batch": self.batch, "query": self.query}
        if self.until_ms is not None:
            data["untilMs"] = self.until_ms
        data["streams"] = {name: self.streams[name].to_json() for name in sorted(self.streams)}
        return data

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> QueryOffset:
        version = data.get("v")
        until = data.get("untilMs")
        until_ms = None if until is None else int(until)
        if version == SINGLE_STREAM_OFFSET_VERSION:
            # {"v": 1, "batch", "stream", "query", "sinceMs", "untilMs"?, "shards"}: one
            # stream's part sat at the top.
            stream = StreamOffset.from_json(data)
            return QueryOffset(
                int(data["batch"]), str(data["query"]), {str(data["stream"]): stream}, until_ms
            )
        if version != QUERY_OFFSET_VERSION:
            raise ValueError(
                f"unsupported offset version {version!r}; expected {QUERY_OFFSET_VERSION} "
                f"(or {SINGLE_STREAM_OFFSET_VERSION}, read for offsets of earlier versions)"
            )
        return QueryOffset(
            batch=int(data["batch"]),
            query=str(data["query"]),
            streams={name: StreamOffset.from_json(s) for name, s in data["streams"].items()},
            until_ms=until_ms,
        )
