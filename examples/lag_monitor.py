"""A small lag monitor: a running query's lag and input rate over time, drawn to a PNG.

It keeps every progress event of the query (``lag_listener.LagListener``) and redraws
``--png`` every few batches: above, each stream's ``maxMsBehindLatest`` and
``avgMsBehindLatest``; below, Spark's input and processing rates (rows/s). A line that
climbs above means the query reads slower than producers write.

Needs matplotlib (``pip install -e '.[examples]'``). By default it runs against an
embedded Kinesis with a producer that writes faster than the query's row budget
(``maxRecordsPerTrigger``) for the first half of the run, then at a fifth of that, so the
lag climbs while the backlog lasts and flattens once the query catches up::

    python examples/lag_monitor.py --duration 40 --png lag.png

To watch a query of your own, add the listener to its session and call ``draw``::

    listener = LagListener(str(query.id)); spark.streams.addListener(listener)
    ...; draw(listener.snapshot(), "lag.png")
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
sys.path.insert(0, str(Path(__file__).resolve().parent))

from lag_listener import LagListener, LagSample

# Redraw the PNG after this many new progress events.
REDRAW_EVERY = 5


def draw(samples: Sequence[LagSample], png: str | Path) -> None:
    """Lag (ms, per stream) and input rate (rows/s) against time, to ``png``."""
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    times = [datetime.fromisoformat(s.timestamp.replace("Z", "+00:00")) for s in samples]
    fig, (lag, rate) = plt.subplots(2, 1, sharex=True, figsize=(9, 6))
    for name in sorted({n for s in samples for n in s.streams}):
        for key, style in (("maxMsBehindLatest", "-"), ("avgMsBehindLatest", "--")):
            points = [
                (t, s.streams[name][key])
                for t, s in zip(times, samples, strict=True)
                if key in s.streams.get(name, {})
            ]
            if points:
                xs, ys = zip(*points, strict=True)
                lag.plot(xs, [y / 1000 for y in ys], style, label=f"{name} {key}")
    lag.set_ylabel("behind latest (s)")
    lag.set_title("Kinesis source: lag and input rate")
    lag.grid(True, alpha=0.3)
    if lag.lines:
        lag.legend(loc="upper left", fontsize="small")
    rate.plot(times, [s.input_rows_per_second for s in samples], label="input rows/s")
    rate.plot(times, [s.processed_rows_per_second for s in samples], label="processed rows/s")
    rate.set_ylabel("rows/s")
    rate.set_xlabel("progress time (UTC)")
    rate.grid(True, alpha=0.3)
    rate.legend(loc="upper left", fontsize="small")
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(png, dpi=90)
    plt.close(fig)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from local_kinesis import add_target_arguments

    add_target_arguments(parser, default_stream="lag-monitor")
    parser.add_argument("--duration", type=float, default=40.0, help="seconds to run")
    parser.add_argument("--records-per-sec", type=int, default=600, help="first half's rate")
    parser.add_argument("--max-records-per-trigger", type=int, default=200)
    parser.add_argument("--trigger-ms", type=int, default=1000)
    parser.add_argument("--shards", type=int, default=2, help="shards of an embedded stream")


def _produce(client: Any, stream: str, rate: int, duration: float, stop: threading.Event) -> None:
    """``rate`` records/s for the first half of ``duration``, a fifth of it after."""
    started = time.monotonic()
    n = 0
    while not stop.is_set():
        second = time.monotonic()
        now_rate = rate if second - started < duration / 2 else rate // 5
        for chunk in range(0, now_rate, 500):
            size = min(500, now_rate - chunk)
            entries = [{"Data": b"x" * 100, "PartitionKey": str(n + i)} for i in range(size)]
            client.put_records(StreamName=stream, Records=entries)
            n += size
        stop.wait(max(0.0, 1.0 - (time.monotonic() - second)))


def run_query(
    args: argparse.Namespace,
    on_sample: Callable[[LagSample], None] | None = None,
    png: str | None = None,
) -> list[LagSample]:
    """Run a query over ``args.stream`` for ``args.duration`` seconds while a producer
    writes; hand each progress event to ``on_sample`` and redraw ``png``."""
    from contextlib import nullcontext

    from local_kinesis import embedded_kinesis, is_embedded, source_credentials
    from spark_env import get_spark

    target = embedded_kinesis(args.stream, args.shards) if is_embedded(args) else nullcontext()
    with target as embedded:
        spark = get_spark("KinesisLagMonitor")
        spark.sparkContext.setLogLevel("ERROR")
        work = Path(tempfile.mkdtemp(prefix="kinesis-lag-monitor-"))
        reader = (
            spark.readStream.format("kinesis")
            .option("streamName", args.stream)
            .option("region", args.region)
            .option("initialPosition", "latest")
            .option("checkpointStore", str(work / "store"))
            .option("maxRecordsPerTrigger", str(args.max_records_per_trigger))
        )
        if embedded is not None:
            reader = reader.option("endpointUrl", embedded[0]).options(**source_credentials())
        elif args.endpoint_url:
            reader = reader.option("endpointUrl", args.endpoint_url)
        query = (
            reader.load()
            .writeStream.format("noop")
            .option("checkpointLocation", str(work / "checkpoint"))
            .trigger(processingTime=f"{args.trigger_ms} milliseconds")
            .start()
        )
        listener = LagListener(str(query.id))
        spark.streams.addListener(listener)
        # The run's time counts from the query's first progress, not from Spark's start.
        while not listener.snapshot() and query.isActive:
            query.awaitTermination(0.5)
        stop = threading.Event()
        producer = None
        if embedded is not None:
            producer = threading.Thread(
                target=_produce,
                args=(embedded[1], args.stream, args.records_per_sec, args.duration, stop),
                daemon=True,
            )
            producer.start()
        seen = drawn = 0
        deadline = time.monotonic() + args.duration
        try:
            while time.monotonic() < deadline and query.isActive:
                query.awaitTermination(1.0)
                samples = listener.snapshot()
                for sample in samples[seen:]:
                    if on_sample is not None:
                        on_sample(sample)
                seen = len(samples)
                if png and seen - drawn >= REDRAW_EVERY:
                    draw(samples, png)
                    drawn = seen
        finally:
            stop.set()
            if producer is not None:
                producer.join()
            query.stop()
            spark.streams.removeListener(listener)
            spark.stop()
        samples = listener.snapshot()
        if png:
            draw(samples, png)
        return samples


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    parser.add_argument("--png", default="lag.png", help="where to draw")
    args = parser.parse_args(argv)
    samples = run_query(args, png=args.png)
    print(f"{len(samples)} progress events drawn to {args.png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
