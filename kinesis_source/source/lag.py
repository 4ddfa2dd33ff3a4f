"""Progress: how far behind the stream's tip the last finished batch left each shard."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kinesis_source.source.positions import ShardEnd


def lag_report(batch: int, ends: Mapping[str, ShardEnd]) -> dict[str, Any]:
    """What ``reportLatestOffset`` shows in progress: the last finished batch per shard."""
    behind = [e.millis_behind_latest for e in ends.values() if e.millis_behind_latest is not None]
    shards: dict[str, dict[str, Any]] = {}
    for sid in sorted(ends):
        entry: dict[str, Any] = {"recordsRead": ends[sid].records}
        if ends[sid].millis_behind_latest is not None:
            entry["millisBehindLatest"] = ends[sid].millis_behind_latest
        shards[sid] = entry
    report: dict[str, Any] = {
        "batch": batch,
        "recordsRead": sum(e.records for e in ends.values()),
    }
    if behind:
        report["maxMillisBehindLatest"] = max(behind)
    report["shards"] = shards
    return report
