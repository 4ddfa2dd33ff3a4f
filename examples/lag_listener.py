"""Read the source's lag from each micro-batch's progress, in a ``StreamingQueryListener``.

Python sources have no custom metrics, so the connector reports its figures where Spark
shows a source's ``reportLatestOffset()``: ``progress.sources[i].latestOffset``, a JSON
text. Per stream it holds ``avgMsBehindLatest``, ``maxMsBehindLatest`` and
``minMsBehindLatest`` (the Databricks connector's names) over the shards the last finished
batch read, and each shard's own ``millisBehindLatest`` under ``shards``.

Run it (an embedded Kinesis, a producer faster than the query's row budget, so the lag
grows; ``--aws``/``--endpoint-url`` for another Kinesis)::

    python examples/lag_listener.py --duration 20
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
sys.path.insert(0, str(Path(__file__).resolve().parent))

from pyspark.sql.streaming import StreamingQueryListener

LAG_NAMES = ("avgMsBehindLatest", "maxMsBehindLatest", "minMsBehindLatest")


@dataclass(frozen=True)
class LagSample:
    """One progress event: its time, its rates, and each stream's lag figures."""

    timestamp: str
    batch_id: int
    input_rows_per_second: float
    processed_rows_per_second: float
    streams: dict[str, dict[str, float]] = field(default_factory=dict)


def stream_lags(latest_offset: str | None) -> dict[str, dict[str, float]]:
    """Each stream's lag figures from one source's ``latestOffset`` text; empty for a
    source that is not this connector's, or before its first finished batch."""
    try:
        report = json.loads(latest_offset or "null")
    except ValueError:
        return {}
    if not isinstance(report, dict) or not isinstance(report.get("streams"), dict):
        return {}
    return {
        name: {key: figures[key] for key in LAG_NAMES if key in figures}
        for name, figures in report["streams"].items()
    }


def lag_sample(progress: Any) -> LagSample:
    """A ``StreamingQueryProgress`` as a ``LagSample`` (every kinesis source's streams)."""
    streams: dict[str, dict[str, float]] = {}
    for source in progress.sources:
        streams.update(stream_lags(source.latestOffset))
    return LagSample(
        timestamp=progress.timestamp,
        batch_id=progress.batchId,
        input_rows_per_second=float(progress.inputRowsPerSecond or 0.0),
        processed_rows_per_second=float(progress.processedRowsPerSecond or 0.0),
        streams=streams,
    )


class LagListener(StreamingQueryListener):
    """Keeps a ``LagSample`` of every progress event (of one query, if ``query_id``)."""

    def __init__(self, query_id: str | None = None) -> None:
        self.query_id = query_id
        self.samples: list[LagSample] = []
        self._lock = threading.Lock()

    def onQueryStarted(self, event: Any) -> None:
        pass

    def onQueryProgress(self, event: Any) -> None:
        progress = event.progress
        if self.query_id is not None and str(progress.id) != self.query_id:
            return
        sample = lag_sample(progress)
        with self._lock:
            self.samples.append(sample)

    def onQueryIdle(self, event: Any) -> None:
        pass

    def onQueryTerminated(self, event: Any) -> None:
        pass

    def snapshot(self) -> list[LagSample]:
        with self._lock:
            return list(self.samples)


def main(argv: list[str] | None = None) -> int:
    from lag_monitor import add_arguments, run_query

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    args = parser.parse_args(argv)

    def show(sample: LagSample) -> None:
        for name, figures in sorted(sample.streams.items()):
            text = ", ".join(f"{k}={v}" for k, v in figures.items())
            print(f"{sample.timestamp} batch {sample.batch_id} {name}: {text}", flush=True)

    run_query(args, on_sample=show)
    return 0


if __name__ == "__main__":
    sys.exit(main())
