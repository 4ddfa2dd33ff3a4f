"""The Kinesis operations of the test server on top of the store and the rules, without HTTP.

``Service.dispatch(target, body)`` takes an ``X-Amz-Target`` and a JSON body and returns the
HTTP status and the response body in chunks (a pre-built GetRecords page is sent as it is,
not copied). Errors are ``{"__type": ..., "message": ...}`` with HTTP 400, the shape botocore
parses into ``ClientError`` codes. Operations: CreateStream, DeleteStream,
DescribeStreamSummary, DescribeStream, ListShards, GetShardIterator, GetRecords, PutRecord,
PutRecords, SplitShard, MergeShards, UpdateShardCount (double or halve only),
Increase/DecreaseStreamRetentionPeriod; and the test control calls under ``CONTROL``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from tests.emulators.kinesis_data import DataPlane
from tests.emulators.kinesis_meters import (
    Clock,
    Quota,
    Stats,
    decode_token,
    encode_token,
    timestamp_ms,
)
from tests.emulators.kinesis_rules import Rules
from tests.emulators.kinesis_store import ACCOUNT, ApiError, Shard, Stream

CONTROL = "KinesisTestServer."
RETENTION_MIN_HOURS = 24  # [RET]: 24 hours to 8,760 hours (365 days)
RETENTION_MAX_HOURS = 8_760
ON_DEMAND_SHARDS = 4  # an on-demand stream starts with 4 shards


class Service:
    """Every stream of one server, its clock, rules, throttles and counts."""

    def __init__(self, rules: Rules) -> None:
        self.rules = rules
        self.clock = Clock()
        self.streams: dict[str, Stream] = {}
        self.by_number: dict[int, Stream] = {}
        self.numbers = 0
        self.quotas: dict[tuple[int, int], Quota] = {}
        self.stats = Stats()
        self.data = DataPlane(self)

    # -- the door

    def dispatch(self, target: str, body: bytes) -> tuple[int, list[bytes]]:
        op = target.rpartition(".")[2]
        try:
            request = json.loads(body or b"{}")
            if target.startswith(CONTROL):
                return 200, [json.dumps(self.control(op, request)).encode()]
            self.stats.calls[op] = self.stats.calls.get(op, 0) + 1
            if op == "GetRecords":
                return 200, self.data.get_records(request)
            handler = getattr(self, "op_" + op, None) or getattr(self.data, "op_" + op, None)
            if handler is None:
                raise ApiError("UnknownOperationException", f"{op} is not served here")
            return 200, [json.dumps(handler(request)).encode()]
        except ApiError as exc:
            if exc.code == "ProvisionedThroughputExceededException":
                self.stats.throttled[op] = self.stats.throttled.get(op, 0) + 1
            return 400, [json.dumps({"__type": exc.code, "message": exc.message}).encode()]
        except (KeyError, ValueError, TypeError) as exc:
            error = {"__type": "InvalidArgumentException", "message": f"bad request: {exc!r}"}
            return 400, [json.dumps(error).encode()]

    def control(self, op: str, request: Mapping[str, Any]) -> dict[str, Any]:
        """Test calls: Stats, ResetStats, Trace (On), FreezeClock, AdvanceClock (Seconds),
        ConfigureStream (StreamName, EndShape, RetentionSeconds)."""
        if op == "Stats":
            return self.stats.as_dict()
        if op == "ResetStats":
            self.stats.reset()
        elif op == "Trace":
            self.stats.tracing = bool(request["On"])
        elif op == "FreezeClock":
            self.clock.freeze()
        elif op == "AdvanceClock":
            self.clock.offset_ms += round(float(request["Seconds"]) * 1000)
        elif op == "ConfigureStream":
            stream = self.stream(request)
            if "EndShape" in request:
                Rules(end_shape=request["EndShape"])  # checks the name
                stream.end_shape = request["EndShape"]
            if "RetentionSeconds" in request:
                stream.retention_ms = round(float(request["RetentionSeconds"]) * 1000)
        else:
            raise ApiError("UnknownOperationException", f"{CONTROL}{op} is not served here")
        return {"NowMs": self.clock.now_ms()}

    def throttle(self, what: str, shard: Shard, stream: Stream) -> ApiError:
        return ApiError(
            "ProvisionedThroughputExceededException",
            f"Rate exceeded for {what} of shard {shard.shard_id} in stream {stream.name} "
            f"under account {ACCOUNT}.",
        )

    # -- streams

    def add_stream(self, name: str, shards: int) -> Stream:
        if name in self.streams:
            raise ApiError(
                "ResourceInUseException", f"Stream {name} under account {ACCOUNT} already exists."
            )
        if shards < 1:
            raise ApiError("InvalidArgumentException", f"ShardCount {shards} must be at least 1")
        self.numbers += 1
        stream = Stream(
            self.numbers,
            name,
            shards,
            self.clock.now_ms(),
            round(self.rules.retention_s * 1000),
            self.rules.end_shape,
            round(self.rules.empty_history_s * 1000),
        )
        self.streams[name] = self.by_number[stream.number] = stream
        return stream

    def stream(self, request: Mapping[str, Any]) -> Stream:
        arn = request.get("StreamARN")
        name = request.get("StreamName") or (arn.rpartition("/")[2] if arn else "")
        found = self.streams.get(name)
        if found is None or (arn and found.arn != arn):
            raise ApiError(
                "ResourceNotFoundException",
                f"Stream {arn or name} under account {ACCOUNT} not found.",
            )
        return found

    def quota(self, stream: Stream, shard: Shard) -> Quota:
        key = (stream.number, shard.index)
        found = self.quotas.get(key)
        if found is None:
            found = self.quotas[key] = Quota(self.rules)
        return found

    def op_CreateStream(self, request: Mapping[str, Any]) -> dict[str, Any]:
        self.add_stream(request["StreamName"], int(request.get("ShardCount", ON_DEMAND_SHARDS)))
        return {}

    def op_DeleteStream(self, request: Mapping[str, Any]) -> dict[str, Any]:
        stream = self.stream(request)
        del self.streams[stream.name], self.by_number[stream.number]
        return {}

    def op_DescribeStreamSummary(self, request: Mapping[str, Any]) -> dict[str, Any]:
        return {"StreamDescriptionSummary": self.stream(request).summary()}

    def op_DescribeStream(self, request: Mapping[str, Any]) -> dict[str, Any]:
        stream = self.stream(request)
        limit = int(request.get("Limit", 100))
        shards = stream.listed(self.clock.now_ms())
        after = request.get("ExclusiveStartShardId")
        if after is not None:
            shards = [s for s in shards if s.shard_id > after]
        summary = stream.summary()
        keep = ("StreamName", "StreamARN", "StreamStatus", "StreamModeDetails")
        return {
            "StreamDescription": {
                **{k: summary[k] for k in keep},
                "Shards": [s.describe() for s in shards[:limit]],
                "HasMoreShards": len(shards) > limit,
                **{k: summary[k] for k in ("RetentionPeriodHours", "StreamCreationTimestamp")},
                "EnhancedMonitoring": summary["EnhancedMonitoring"],
                "EncryptionType": "NONE",
            }
        }

    def op_ListShards(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """[LS]: pages of MaxResults shards; NextToken alone (with no StreamName) for the next
        page, expiring after ``list_shards_token_ttl_s``; ExclusiveStartShardId and
        ShardFilter (AFTER_SHARD_ID, AT_LATEST, AT_/FROM_TRIM_HORIZON, AT_/FROM_TIMESTAMP)."""
        now = self.clock.now_ms()
        size = int(request.get("MaxResults", self.rules.list_shards_default))
        if not 1 <= size <= 10_000:
            raise ApiError("InvalidArgumentException", f"MaxResults {size} must be 1 to 10000")
        token = request.get("NextToken")
        if token is not None:
            if "StreamName" in request or "StreamARN" in request:
                raise ApiError(
                    "InvalidArgumentException",
                    "NextToken and StreamName cannot be provided together.",
                )
            number, after, kind, at, issued = decode_token(token, "NextToken")
            stream = self.by_number.get(int(number))
            if stream is None:
                raise ApiError("ResourceNotFoundException", "The stream of NextToken is gone.")
            ttl = self.rules.list_shards_token_ttl_s
            if ttl is not None and now - int(issued) > ttl * 1000:
                raise ApiError("ExpiredNextTokenException", "The NextToken has expired.")
            at_ms = int(at)
        else:
            stream = self.stream(request)
            shard_filter = request.get("ShardFilter") or {}
            kind = shard_filter.get("Type", "")
            after = request.get("ExclusiveStartShardId") or shard_filter.get("ShardId") or ""
            stamp = shard_filter.get("Timestamp")
            at_ms = timestamp_ms(stamp) if stamp is not None else 0
        shards = [s for s in stream.shards_at(kind, at_ms, now) if s.shard_id > after]
        response: dict[str, Any] = {"Shards": [s.describe() for s in shards[:size]]}
        if len(shards) > size:
            last = shards[size - 1].shard_id
            response["NextToken"] = encode_token(stream.number, last, kind, at_ms, now)
        return response

    def op_SplitShard(self, request: Mapping[str, Any]) -> dict[str, Any]:
        stream = self.stream(request)
        stream.split(request["ShardToSplit"], request["NewStartingHashKey"], self.clock.now_ms())
        return {}

    def op_MergeShards(self, request: Mapping[str, Any]) -> dict[str, Any]:
        stream = self.stream(request)
        now = self.clock.now_ms()
        stream.merge(request["ShardToMerge"], request["AdjacentShardToMerge"], now)
        return {}

    def op_UpdateShardCount(self, request: Mapping[str, Any]) -> dict[str, Any]:
        stream = self.stream(request)
        current = len(stream.open_shards())
        stream.update_shard_count(int(request["TargetShardCount"]), self.clock.now_ms())
        return {
            "StreamName": stream.name,
            "StreamARN": stream.arn,
            "CurrentShardCount": current,
            "TargetShardCount": int(request["TargetShardCount"]),
        }

    def retention(self, request: Mapping[str, Any], longer: bool) -> dict[str, Any]:
        stream = self.stream(request)
        hours = int(request["RetentionPeriodHours"])
        current = stream.retention_ms / 3_600_000
        if not RETENTION_MIN_HOURS <= hours <= RETENTION_MAX_HOURS or (
            hours < current if longer else hours > current
        ):
            verb = "increase" if longer else "decrease"
            raise ApiError(
                "InvalidArgumentException",
                f"RetentionPeriodHours {hours} cannot {verb} {current:g} hours (24 to 8760)",
            )
        stream.retention_ms = hours * 3_600_000
        return {}

    def op_IncreaseStreamRetentionPeriod(self, request: Mapping[str, Any]) -> dict[str, Any]:
        return self.retention(request, longer=True)

    def op_DecreaseStreamRetentionPeriod(self, request: Mapping[str, Any]) -> dict[str, Any]:
        return self.retention(request, longer=False)
