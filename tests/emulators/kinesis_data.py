"""The test server's data plane: GetShardIterator, GetRecords, PutRecord(s), the feeder.

The reads walk a shard's time line as ``kinesis_rules.step`` says; the writes route by hash
key and pass each shard's write quota. The state (streams, clock, quotas, counts) is the
``kinesis_api.Service``'s.
"""

from __future__ import annotations

import base64
import bisect
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from tests.emulators.kinesis_meters import decode_token, encode_token, timestamp_ms, utc
from tests.emulators.kinesis_rules import iterator_expired, millis_behind, page_end, step
from tests.emulators.kinesis_store import ApiError, Stream

if TYPE_CHECKING:
    from tests.emulators.kinesis_api import Service


class DataPlane:
    """Reads and writes of one server's streams."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self.fed = 0

    def op_GetShardIterator(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """[GSI]: every iterator type; an AT_TIMESTAMP older than the trim horizon is
        TRIM_HORIZON; a trimmed sequence number is accepted and its reads walk on from the
        trim horizon (as consumers of AWS report: empty pages, MillisBehindLatest about the
        retention; harlow/kinesis-consumer#125)."""
        now = self.service.clock.now_ms()
        stream = self.service.stream(request)
        shard = stream.shard(request["ShardId"], now)
        if not self.service.quota(stream, shard).get_shard_iterator.admit(now):
            raise self.service.throttle("GetShardIterator", shard, stream)
        key = f"{stream.name}/{shard.shard_id}"
        self.service.stats.get_shard_iterator.setdefault(key, []).append(now / 1000)
        self.service.stats.traced("GetShardIterator", key, now)
        horizon = now - stream.retention_ms
        kind = request["ShardIteratorType"]
        if kind == "AT_TIMESTAMP" and timestamp_ms(request["Timestamp"]) < horizon:
            kind = "TRIM_HORIZON"
        if kind == "TRIM_HORIZON":
            position, cursor = shard.first_live(horizon), max(shard.storage_start_ms, horizon)
        elif kind == "LATEST":
            position, cursor = shard.count, now
        elif kind in ("AT_SEQUENCE_NUMBER", "AFTER_SEQUENCE_NUMBER"):
            after = kind == "AFTER_SEQUENCE_NUMBER"
            position = shard.position_of(request["StartingSequenceNumber"], after)
            if not after and position < shard.count:
                cursor = shard.arrivals[position]
            else:
                cursor = shard.arrivals[position - 1] if position else shard.storage_start_ms
        elif kind == "AT_TIMESTAMP":
            at = timestamp_ms(request["Timestamp"])
            position = bisect.bisect_left(shard.arrivals, at)
            cursor = max(at, shard.storage_start_ms)
        else:
            raise ApiError("InvalidArgumentException", f"ShardIteratorType {kind!r} is not valid")
        return {"ShardIterator": encode_token(stream.number, shard.index, position, cursor, now)}

    def get_records(self, request: Mapping[str, Any]) -> list[bytes]:
        """[GR]: one page along the shard's time line (``kinesis_rules.step``)."""
        now = self.service.clock.now_ms()
        try:
            number, index, position, cursor, issued = (
                int(p) for p in decode_token(request["ShardIterator"], "ShardIterator")
            )
        except ValueError as exc:
            raise ApiError("InvalidArgumentException", f"Invalid ShardIterator: {exc}") from exc
        stream = self.service.by_number.get(number)
        if stream is None or index >= len(stream.shards):
            raise ApiError("ResourceNotFoundException", "The iterator's stream is gone.")
        shard = stream.shard(stream.shards[index].shard_id, now)
        ttl = self.service.rules.iterator_ttl_s
        if iterator_expired(issued, now, ttl):
            raise ApiError(
                "ExpiredIteratorException",
                f"Iterator expired. The iterator was created at time {utc(issued)} while right "
                f"now it is {utc(now)} which is further in the future than the tolerated delay "
                f"of {round((ttl or 0) * 1000)} milliseconds.",
            )
        limit = int(request.get("Limit", 10_000))
        if not 1 <= limit <= 10_000:
            raise ApiError("InvalidArgumentException", f"Limit {limit} must be 1 to 10000")
        quota = self.service.quota(stream, shard)
        if not quota.read_bytes.admit(now) or not quota.get_records.admit(now):
            raise self.service.throttle("GetRecords", shard, stream)
        self.service.stats.get_records.setdefault(f"{stream.name}/{shard.shard_id}", []).append(
            now / 1000
        )
        live = shard.first_live(now - stream.retention_ms)
        if position < live:  # [RET]: trimmed records are gone; the walk goes on from there
            position, cursor = live, max(cursor, now - stream.retention_ms)
        slice_s = self.service.rules.walk_slice_s
        slice_ms = None if slice_s is None else round(slice_s * 1000)
        arrivals = shard.arrivals
        move = step(
            cursor,
            arrivals[position] if position < shard.count else None,
            now,
            slice_ms,
            shard.closed_ms,
        )
        records, end = b"", position
        if move.take_records:
            limit = min(limit, self.service.rules.page_max_records)
            records, end = shard.records(
                position, limit, self.service.rules.page_max_bytes, page_end
            )
            cursor = arrivals[end - 1]
            quota.read_bytes.spend(now, shard.size(position, end))
            self.service.stats.records_served += end - position
            at_end = shard.closed_ms is not None and end == shard.count
            at_end = at_end and stream.end_shape == "with_records"
        else:
            cursor, at_end = move.cursor_ms, move.at_end
        key = f"{stream.name}/{shard.shard_id}"
        self.service.stats.traced("GetRecords", key, now, arrivals[position:end])
        if at_end:
            tail = {"MillisBehindLatest": 0, "ChildShards": shard.child_shards()}
        else:
            next_arrival = arrivals[end] if end < shard.count else None
            closed = shard.closed_ms is not None
            tail = {
                "NextShardIterator": encode_token(number, index, end, cursor, now),
                "MillisBehindLatest": millis_behind(cursor, next_arrival, now, slice_ms, closed),
            }
        return [b'{"Records":[', records, b"]," + json.dumps(tail).encode()[1:]]

    def put(self, stream: Stream, entry: Mapping[str, Any], now_ms: int) -> dict[str, Any]:
        key = entry["PartitionKey"]
        shard = stream.route(key, entry.get("ExplicitHashKey"))
        data = base64.b64decode(entry["Data"])
        if not self.service.quota(stream, shard).writes.admit(now_ms, len(data) + len(key)):
            raise self.service.throttle("PutRecord", shard, stream)
        return {"ShardId": shard.shard_id, "SequenceNumber": shard.append(data, key, now_ms)}

    def op_PutRecord(self, request: Mapping[str, Any]) -> dict[str, Any]:
        return self.put(self.service.stream(request), request, self.service.clock.now_ms())

    def op_PutRecords(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """[PR]: a record over its shard's write rate fails alone, with its ErrorCode."""
        stream = self.service.stream(request)
        entries = request["Records"]
        top = self.service.rules.put_records_max
        if not 1 <= len(entries) <= top:
            raise ApiError(
                "InvalidArgumentException", f"PutRecords takes 1 to {top}, not {len(entries)}"
            )
        now, results, failed = self.service.clock.now_ms(), [], 0
        for entry in entries:
            try:
                results.append(self.put(stream, entry, now))
            except ApiError as exc:
                failed += 1
                results.append({"ErrorCode": exc.code, "ErrorMessage": exc.message})
        if failed:
            self.service.stats.throttled["PutRecords"] = (
                self.service.stats.throttled.get("PutRecords", 0) + failed
            )
        return {"FailedRecordCount": failed, "Records": results}

    def feed(self, elapsed_s: float) -> None:
        """The feeder: ``feed_bytes_per_s`` of ``feed_record_bytes`` records into every open
        shard, caught up to ``elapsed_s`` since the server started (no write throttle)."""
        size = self.service.rules.feed_record_bytes
        if size <= 0 or self.service.rules.feed_bytes_per_s <= 0:
            return
        due = int(elapsed_s * self.service.rules.feed_bytes_per_s / size)
        now = self.service.clock.now_ms()
        for n in range(self.fed, due):
            data = f"feed-{n:012d}".encode().ljust(size, b".")[:size]
            for stream in self.service.streams.values():
                for shard in stream.open_shards():
                    shard.append(data, f"feed-{n % 1000}", now)
        self.fed = max(self.fed, due)
        for stream in self.service.streams.values():
            for shard in stream.open_shards():
                shard.forget_before(shard.first_live(now - stream.retention_ms))
