"""The Kinesis service rules the test server keeps, as options and pure code (no I/O).

Each option of ``Rules`` imitates one documented rule of Kinesis Data Streams and defaults to
the AWS figure; ``None`` turns a rule off (the bench does, to measure the client, not the
quota). Sources, as "doc" below:

- [GR] GetRecords API reference,
  https://docs.aws.amazon.com/kinesis/latest/APIReference/API_GetRecords.html
- [GSI] GetShardIterator API reference,
  https://docs.aws.amazon.com/kinesis/latest/APIReference/API_GetShardIterator.html
- [Q] Kinesis Data Streams quotas and limits,
  https://docs.aws.amazon.com/streams/latest/dev/service-sizes-and-limits.html
- [PR] PutRecords / PutRecord API references,
  https://docs.aws.amazon.com/kinesis/latest/APIReference/API_PutRecords.html
- [RS] Resharding a stream,
  https://docs.aws.amazon.com/streams/latest/dev/kinesis-using-sdk-java-resharding.html
- [RET] Changing the data retention period,
  https://docs.aws.amazon.com/streams/latest/dev/kinesis-extended-retention.html
- [LS] ListShards API reference,
  https://docs.aws.amazon.com/kinesis/latest/APIReference/API_ListShards.html
"""

from __future__ import annotations

import bisect
import collections
from dataclasses import dataclass, fields, replace
from typing import Any

MIB = 1024 * 1024
END_SHAPES = ("separate", "with_records")


@dataclass(frozen=True)
class Rules:
    """The server's rules; every figure is per shard unless it says otherwise."""

    # [Q], [GR]: "each shard can support up to five read transactions per second"; more
    # GetRecords calls on a shard in one second get ProvisionedThroughputExceededException.
    get_records_calls_per_s: int | None = 5
    # [Q], [GR]: reads of at most 2 MiB/s per shard; "if a call returns 10 MiB, subsequent
    # calls made within the next 5 seconds throw ProvisionedThroughputExceededException".
    # Modelled as: a page of B bytes blocks the shard's next call for B / rate seconds.
    read_bytes_per_s: int | None = 2 * MIB
    # [GSI], [Q]: GetShardIterator "has a limit of five transactions per second per open shard".
    get_shard_iterator_calls_per_s: int | None = 5
    # [Q], [PR]: writes of "up to 1,000 records per second, up to a maximum total data write
    # rate of 1 MiB per second" per shard; beyond them PutRecords fails the record with
    # ErrorCode ProvisionedThroughputExceededException, PutRecord the whole call.
    write_records_per_s: int | None = 1_000
    write_bytes_per_s: int | None = MIB
    # [GR]: "GetRecords can return up to 10 MiB of data per call from a single shard, and up
    # to 10,000 records per call" (Limit 1 to 10,000).
    page_max_records: int = 10_000
    page_max_bytes: int = 10 * MIB
    # [GSI]: "A shard iterator expires 5 minutes after it is returned to the requester";
    # GetRecords then fails with ExpiredIteratorException.
    iterator_ttl_s: float | None = 300
    # [GR]: from TRIM_HORIZON or an old AT_TIMESTAMP "it might take multiple calls to get to
    # a portion of the shard that contains records", each an empty page with a
    # NextShardIterator and MillisBehindLatest > 0. AWS publishes neither how much storage
    # a call walks nor how much of it lies before the first record: a call here walks
    # ``walk_slice_s`` of the shard's time line, and the shards a stream is created with
    # start ``empty_history_s`` before their creation (qubole/kinesis-sql#87 saw about 250
    # calls for an iterator 16 minutes old; the repro walked one minute a call).
    walk_slice_s: float | None = 60
    empty_history_s: float = 0
    # [GR]: NextShardIterator "If set to null, the shard has been closed"; ChildShards come
    # "only when the end of the current shard is reached". Seen on AWS in two shapes:
    # "with_records", the last records come with no NextShardIterator and the ChildShards;
    # "separate", the last records come with a NextShardIterator (MillisBehindLatest 0) and
    # a later, empty call brings the end. The default for streams; per stream settable.
    end_shape: str = "separate"
    # [RET]: records are kept 24 hours by default ("records are no longer accessible" after
    # the retention period); tests set seconds.
    retention_s: float = 24 * 3600
    # [LS]: "NextToken ... has an expiration time of 300 seconds"; then
    # ExpiredNextTokenException. MaxResults 1 to 10,000, 1,000 by default.
    list_shards_token_ttl_s: float | None = 300
    list_shards_default: int = 1_000
    # [PR]: "Each PutRecords request can support up to 500 records".
    put_records_max: int = 500
    # Not an AWS rule: the server appends ``feed_record_bytes`` records at
    # ``feed_bytes_per_s`` to every open shard itself (0: no feeder), a steady producer
    # that costs the test process nothing.
    feed_record_bytes: int = 0
    feed_bytes_per_s: int = 0

    def __post_init__(self) -> None:
        if self.end_shape not in END_SHAPES:
            raise ValueError(f"end_shape must be one of {END_SHAPES}, not {self.end_shape!r}")
        if not 1 <= self.page_max_records <= 10_000:
            raise ValueError(f"page_max_records must be 1 to 10,000, not {self.page_max_records}")

    @classmethod
    def lenient(cls, **changes: Any) -> Rules:
        """The bench's rules: pages and the data contract as on AWS, but no throttling, no
        iterator expiry and no empty stretches, so a figure measures the client."""
        off: dict[str, Any] = {
            "get_records_calls_per_s": None,
            "read_bytes_per_s": None,
            "get_shard_iterator_calls_per_s": None,
            "write_records_per_s": None,
            "write_bytes_per_s": None,
            "iterator_ttl_s": None,
            "walk_slice_s": None,
            "list_shards_token_ttl_s": None,
        }
        return replace(cls(), **{**off, **changes})

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def option_names() -> list[str]:
    return [f.name for f in fields(Rules)]


# --------------------------------------------------------------------------------------
# Throttles: pure state machines fed with the server's clock (milliseconds).


class CallRate:
    """At most ``per_s`` accepted calls in any 1-second window; refused calls do not count."""

    def __init__(self, per_s: int | None) -> None:
        self.per_s = per_s
        self.accepted: collections.deque[int] = collections.deque()

    def admit(self, now_ms: int) -> bool:
        if self.per_s is None:
            return True
        while self.accepted and now_ms - self.accepted[0] >= 1_000:
            self.accepted.popleft()
        if len(self.accepted) >= self.per_s:
            return False
        self.accepted.append(now_ms)
        return True


class ReadBytes:
    """A page of B bytes keeps the shard's next read out for B / rate seconds ([GR]: 10 MiB
    blocks the next 5 seconds at 2 MiB/s)."""

    def __init__(self, per_s: int | None) -> None:
        self.per_s = per_s
        self.free_at_ms = 0

    def admit(self, now_ms: int) -> bool:
        return self.per_s is None or now_ms >= self.free_at_ms

    def spend(self, now_ms: int, size: int) -> None:
        if self.per_s is not None and size:
            # Whole milliseconds, as the clock counts: a small page blocks nothing.
            self.free_at_ms = max(self.free_at_ms, now_ms) + size * 1_000 // self.per_s


class WriteRate:
    """Records and bytes written to a shard in any 1-second window, within both limits."""

    def __init__(self, records_per_s: int | None, bytes_per_s: int | None) -> None:
        self.records_per_s = records_per_s
        self.bytes_per_s = bytes_per_s
        self.window: collections.deque[tuple[int, int]] = collections.deque()
        self.bytes_in_window = 0

    def admit(self, now_ms: int, size: int) -> bool:
        while self.window and now_ms - self.window[0][0] >= 1_000:
            self.bytes_in_window -= self.window.popleft()[1]
        if self.records_per_s is not None and len(self.window) >= self.records_per_s:
            return False
        if self.bytes_per_s is not None and self.bytes_in_window + size > self.bytes_per_s:
            return False
        if self.records_per_s is not None or self.bytes_per_s is not None:
            self.window.append((now_ms, size))
            self.bytes_in_window += size
        return True


def iterator_expired(issued_ms: int, now_ms: int, ttl_s: float | None) -> bool:
    """[GSI]: an iterator lives ``ttl_s`` after it was handed out."""
    return ttl_s is not None and now_ms - issued_ms > ttl_s * 1_000


# --------------------------------------------------------------------------------------
# The walk along a shard's time line ([GR]'s "multiple calls to get to a portion of the
# shard that contains records"). An iterator is a record index (never skips a record) and a
# time cursor (how far the storage was walked).


@dataclass(frozen=True)
class Step:
    """What one GetRecords call does: take records, walk an empty slice, or end the shard."""

    take_records: bool
    cursor_ms: int  # the cursor after an empty step (unused when records are taken)
    at_end: bool  # a closed shard's end: no NextShardIterator, ChildShards


def step(
    cursor_ms: int,
    next_arrival_ms: int | None,
    now_ms: int,
    slice_ms: int | None,
    closed_ms: int | None,
) -> Step:
    """One call from ``cursor_ms`` when the next unread record arrived at ``next_arrival_ms``
    (None: none left) on a shard closed at ``closed_ms`` (None: open)."""
    reach = None if slice_ms is None else cursor_ms + slice_ms
    if next_arrival_ms is not None:
        if reach is None or next_arrival_ms <= reach:
            return Step(True, cursor_ms, False)
        return Step(False, reach, False)
    if closed_ms is not None:
        if reach is None or closed_ms <= reach:
            return Step(False, cursor_ms, True)
        return Step(False, reach, False)
    if reach is None or now_ms <= reach:
        return Step(False, max(cursor_ms, now_ms), False)  # the tip: stay there
    return Step(False, reach, False)


def millis_behind(
    cursor_ms: int,
    next_arrival_ms: int | None,
    now_ms: int,
    slice_ms: int | None,
    closed: bool,
) -> int:
    """[GR] MillisBehindLatest of a position: how far its next read lies behind now; 0 only
    at the tip (and on a closed shard with nothing left to read, whose tip is its end)."""
    if next_arrival_ms is not None:
        if slice_ms is None or next_arrival_ms - cursor_ms <= slice_ms:
            return max(1, now_ms - next_arrival_ms)
        return max(1, now_ms - cursor_ms)
    if closed or slice_ms is None or now_ms - cursor_ms <= slice_ms:
        return 0
    return now_ms - cursor_ms


def page_end(
    start: int,
    count: int,
    limit: int,
    max_bytes: int,
    cumulative_bytes: list[int],
) -> int:
    """[GR]: the end (exclusive) of a page from ``start``: at most ``limit`` records and
    ``max_bytes`` of data and keys, but at least one record when there is one.
    ``cumulative_bytes[i]`` is the size of records ``0..i-1``."""
    by_bytes = bisect.bisect_right(cumulative_bytes, cumulative_bytes[start] + max_bytes) - 1
    return max(min(count, start + limit, by_bytes), min(count, start + 1))
