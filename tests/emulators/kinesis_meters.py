"""The test server's clock, throttle state per shard, call counts, and its token formats."""

from __future__ import annotations

import base64
import time
from datetime import datetime, timezone
from typing import Any

from tests.emulators.kinesis_rules import CallRate, ReadBytes, Rules, WriteRate
from tests.emulators.kinesis_store import ApiError


class Clock:
    """The server's clock: wall time plus an offset a test moves forward to age the stream;
    a test may freeze it, so that only ``AdvanceClock`` moves it (exact figures, no race
    with the wall clock)."""

    def __init__(self) -> None:
        self.offset_ms = 0
        self.frozen_ms: int | None = None

    def now_ms(self) -> int:
        base = int(time.time() * 1000) if self.frozen_ms is None else self.frozen_ms
        return base + self.offset_ms

    def freeze(self) -> None:
        if self.frozen_ms is None:
            self.frozen_ms = int(time.time() * 1000)


class Quota:
    """One shard's throttles ([Q]); reads and writes apart, as AWS counts them."""

    def __init__(self, rules: Rules) -> None:
        self.get_records = CallRate(rules.get_records_calls_per_s)
        self.read_bytes = ReadBytes(rules.read_bytes_per_s)
        self.get_shard_iterator = CallRate(rules.get_shard_iterator_calls_per_s)
        self.writes = WriteRate(rules.write_records_per_s, rules.write_bytes_per_s)


def max_in_window(times: list[float], window_s: float) -> int:
    """The most of ``times`` (sorted) in any half-open window of ``window_s`` seconds."""
    best, lo = 0, 0
    for hi, t in enumerate(times):
        while t - times[lo] >= window_s:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


class Stats:
    """Calls per operation, GetRecords and GetShardIterator calls per shard (server seconds),
    refused calls per operation, records served; with ``tracing`` on, every GetRecords and
    GetShardIterator call answered (for a benchmark's breakdown of where time goes)."""

    def __init__(self) -> None:
        self.tracing = False
        self.reset()

    def reset(self) -> None:
        self.calls: dict[str, int] = {}
        self.throttled: dict[str, int] = {}
        self.get_records: dict[str, list[float]] = {}
        self.get_shard_iterator: dict[str, list[float]] = {}
        self.records_served = 0
        # With tracing on: [op, "stream/shardId", server ms, arrival ms of each record served].
        self.trace: list[tuple[str, str, int, list[int]]] = []

    def traced(self, op: str, shard: str, now_ms: int, arrivals: list[int] | None = None) -> None:
        if self.tracing:
            self.trace.append((op, shard, now_ms, arrivals or []))

    def as_dict(self) -> dict[str, Any]:
        per_shard = {k: max_in_window(v, 1.0) for k, v in self.get_records.items()}
        gsi = {k: max_in_window(v, 1.0) for k, v in self.get_shard_iterator.items()}
        busiest = max(per_shard, key=per_shard.__getitem__, default=None)
        gsi_busiest = max(gsi, key=gsi.__getitem__, default=None)
        return {
            "calls": dict(self.calls),
            "throttled": dict(self.throttled),
            "get_records_calls": sum(len(t) for t in self.get_records.values()),
            "get_records_max_per_shard_1s": per_shard.get(busiest, 0) if busiest else 0,
            "get_records_busiest_shard": busiest,
            "get_records_max_1s_by_shard": per_shard,
            "get_shard_iterator_max_per_shard_1s": gsi.get(gsi_busiest, 0) if gsi_busiest else 0,
            "get_shard_iterator_busiest_shard": gsi_busiest,
            "get_records_per_shard": {k: len(v) for k, v in self.get_records.items()},
            "records_served": self.records_served,
            "trace": [list(t) for t in self.trace],
        }


def timestamp_ms(value: Any) -> int:
    if isinstance(value, (int, float)):
        return round(value * 1000)
    text = str(value).replace("Z", "+00:00")
    return round(datetime.fromisoformat(text).timestamp() * 1000)


def utc(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%a %b %d %H:%M:%S UTC %Y")


def encode_token(*parts: int | str) -> str:
    return base64.b64encode(".".join(str(p) for p in parts).encode()).decode()


def decode_token(token: str, what: str) -> list[str]:
    try:
        return base64.b64decode(token, validate=True).decode().split(".")
    except ValueError as exc:
        raise ApiError("InvalidArgumentException", f"Invalid {what}: {exc}") from exc
