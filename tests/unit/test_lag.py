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


def test_each_stream_reports_avg_max_and_min_ms_behind_latest_of_its_shards() -> None:
    report = lag_report(
        2,
        {
            "orders": {"s-0": _end(3, 0), "s-1": _end(5, 20), "s-2": _end(0, 30)},
            "payments": {"s-0": _end(1, 7)},
        },
    )
    orders = report["streams"]["orders"]
    assert (orders["avgMsBehindLatest"], orders["maxMsBehindLatest"]) == (16.7, 30)
    assert orders["minMsBehindLatest"] == 0
    payments = report["streams"]["payments"]
    assert [payments[f"{k}MsBehindLatest"] for k in ("avg", "max", "min")] == [7, 7, 7]
    # Over all streams too, next to the per-shard figures.
    assert [report[f"{k}MsBehindLatest"] for k in ("avg", "max", "min")] == [14.2, 30, 0]
    assert orders["shards"]["s-1"]["millisBehindLatest"] == 20


def test_no_lag_figure_when_no_read_reported_one() -> None:
    end = ShardEnd(Position.after("1"), 2, None, caught_up=False)
    report = lag_report(3, {"orders": {"s-0": end}})
    assert not [key for key in report["streams"]["orders"] if "BehindLatest" in key]


def test_the_listener_example_reads_the_figures_back_from_progress_text() -> None:
    import json

    from examples.lag_listener import stream_lags

    report = lag_report(5, {"orders": {"s-0": _end(3, 10), "s-1": _end(5, 30)}})
    assert stream_lags(json.dumps(report)) == {
        "orders": {"avgMsBehindLatest": 20.0, "maxMsBehindLatest": 30, "minMsBehindLatest": 10}
    }
    assert stream_lags('{"offset": 7}') == {} and stream_lags(None) == {}  # another source
