"""Progress: how far behind the tip the last finished batch left each stream and shard.

Per stream and over all, ``avgMsBehindLatest``, ``maxMsBehindLatest`` and
``minMsBehindLatest`` are the names the Databricks Kinesis connector's progress uses, so
dashboards and alerts written for it read ours; ``maxMillisBehindLatest`` is kept for the
queries that read it before.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from kinesis_source.source.positions import ShardEnd


def _figures(ends: Iterable[ShardEnd]) -> dict[str, Any]:
    ends = list(ends)
    behind = [e.millis_behind_latest for e in ends if e.millis_behind_latest is not None]
    report: dict[str, Any] = {"recordsRead": sum(e.records for e in ends)}
    if behind:
        report["maxMillisBehindLatest"] = max(behind)
        report["avgMsBehindLatest"] = round(sum(behind) / len(behind), 1)
        report["maxMsBehindLatest"] = max(behind)
        report["minMsBehindLatest"] = min(behind)
    fallbacks = sum(e.efo_fallback for e in ends)
    if fallbacks:
        # consumerMode=efo: shards this batch read by GetRecords instead of waiting out
        # the 5-second SubscribeToShard rule.
        report["efoFallbackReads"] = fallbacks
    return report


def lag_report(batch: int, ends: Mapping[str, Mapping[str, ShardEnd]]) -> dict[str, Any]:
    """What ``reportLatestOffset`` shows in progress: the last finished batch, in total,
    per stream and per shard. ``ends`` is stream -> shard -> the end its read recorded."""
    every = [end for shards in ends.values() for end in shards.values()]
    streams: dict[str, Any] = {}
    for name in sorted(ends):
        shards: dict[str, dict[str, Any]] = {}
        for sid in sorted(ends[name]):
            end = ends[name][sid]
            entry: dict[str, Any] = {"recordsRead": end.records}
            if end.millis_behind_latest is not None:
                entry["millisBehindLatest"] = end.millis_behind_latest
            if end.efo_fallback:
                entry["efoFallback"] = True
            shards[sid] = entry
        streams[name] = {**_figures(ends[name].values()), "shards": shards}
    return {"batch": batch, **_figures(every), "streams": streams}
