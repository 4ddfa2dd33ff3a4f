"""The figures progress shows for the last finished batch (source/driver/lag.py): pure."""

from __future__ import annotations

from kinesis_source.source.driver.lag import lag_report
from kinesis_source.source.positions import Position, ShardEnd


def _end(records: int, behind: int, *, efo_fallback: bool = False) -> ShardEnd:
    return ShardEnd(Position.after("1"), records, behind, caught_up=True, efo_fallback=efo_fallback)


def test_reads_by_get_records_under_efo_are_counted_per_stream_and_in_total() -> None:
    report = lag_report(
        4,
        {
            "orders": {"s-0": _end(3, 0, efo_fallback=True), "s-1": _end(5, 20)},
            "payments": {"s-0": _end(1, 0, efo_fallback=True)},
        },
    )
    assert report["efoFallbackReads"] == 2
    assert report["streams"]["orders"]["efoFallbackReads"] == 1
    assert report["streams"]["orders"]["shards"] == {
        "s-0": {"recordsRead": 3, "millisBehindLatest": 0, "efoFallback": True},
        "s-1": {"recordsRead": 5, "millisBehindLatest": 20},
    }
    assert report["recordsRead"] == 9 and report["maxMillisBehindLatest"] == 20


def test_no_fallback_no_figure() -> None:
    report = lag_report(1, {"orders": {"s-0": _end(3, 0)}})
    assert "efoFallbackReads" not in report
    assert "efoFallbackReads" not in report["streams"]["orders"]
