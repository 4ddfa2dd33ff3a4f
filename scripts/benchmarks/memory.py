"""(m) memory of one task reading 10 MiB pages of 1 MiB records (issue 15, target 6).

A fresh Python process plays one of Spark's Python workers: it imports pyspark and the
package, reads a one-record shard through the real read path (the warm-up: clients,
connection pool, imports all made), and takes its resident memory then as the baseline.
It then reads a shard of ``PAGES`` full pages through the same path, the way a task runs
it: ``KinesisStreamReader.read(partition)``, every Arrow batch written to an Arrow IPC
stream as the worker writes them to the JVM (here into a sink that only counts bytes).
The peak is the kernel's high-water mark of the resident set (VmHWM, reset after the
warm-up; where the kernel refuses the reset, a thread samples VmRSS instead).

Target: peak < baseline + 3 x the page size. A page of 10 MiB of data arrives as about
13.3 MiB of JSON (base64), so one body, its decoded records and their Arrow batch together
take about 3.3 pages: the read must never hold all three at once, nor two pages.

The server: ``kinesis_server``'s, in a subprocess, serving pre-built pages of 1 MiB
records (data and key) and stopping a GetRecords page at 10 MiB as AWS does.

Where the copies were (found with tracemalloc and VmHWM reset between the read's steps):
botocore joins the body from 64 KiB chunks (two bodies for a moment: the body is now read
in one piece, see fast_decode), orjson copies its input and reserves ~13x its size, a body
past 8 MiB was parsed as text (body and text at once: msgspec now parses the bytes), the
body outlived its parsing, and the previous page and its Arrow batch were still referenced
while the next page was fetched. Now one page's body and its decoded data (23.3 MiB for a
10 MiB page) are the most Python holds at once.

The figure is resident memory, so it also counts what glibc's heap keeps: its mmap
threshold rises to a freed body's size after the first page, so later bodies and chunks
come from the heap, and how well one page's holes fit the next page's blocks depends on
everything the process allocated before. Two bodies at once (the code before the one-piece
read) measured 2.7 pages in one virtual environment and 3.8 to 4.1 in another, whatever
the botocore version; one body at a time measures 2.4 to 2.6 in both.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

from kinesis_source import limits
from tests.emulators.kinesis_server import StreamSpec, kinesis_server

from . import procs
from .common import BENCH_SERVER_RULES, REPO_ROOT, fake_credentials, figure, kinesis, source_options

MIB = procs.MIB
PAGE_BYTES = limits.GET_RECORDS_MAX_BYTES
RECORDS_PER_PAGE = PAGE_BYTES // limits.RECORD_MAX_BYTES
PAGES = 4
TARGET_PAGES = 3
SAMPLE_EVERY_S = 0.002
CHILD_TIMEOUT_S = 600


def _read_all(endpoint: str, stream: str, store: str, batch: int) -> tuple[int, int]:
    """Read the whole shard as one task does; (rows, data bytes) handed on."""
    import pyarrow as pa

    from kinesis_source.source.options import parse_options
    from kinesis_source.source.positions import Position
    from kinesis_source.source.stream_reader import KinesisStreamReader
    from kinesis_source.source.tasks import ShardPartition, ShardTask

    opts = parse_options(source_options(endpoint, stream, store))
    reader = KinesisStreamReader(opts)
    shard = kinesis(endpoint).list_shards(StreamName=stream)["Shards"][0]["ShardId"]
    task = ShardTask(
        batch=batch, stream=stream, query="memory", shard_id=shard, start=Position.trim_horizon()
    )
    rows = size = 0
    writer: Any = None
    sink = pa.MockOutputStream()
    for arrow_batch in reader.read(ShardPartition([task])):
        if writer is None:
            writer = pa.ipc.new_stream(sink, arrow_batch.schema)
        writer.write_batch(arrow_batch)
        rows += arrow_batch.num_rows
        size += arrow_batch.column(0).nbytes
    if writer is not None:
        writer.close()
    return rows, size


class _Sampler:
    """Max VmRSS seen while running: the fallback when VmHWM cannot be reset."""

    def __init__(self) -> None:
        self.peak = procs.rss() or 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.wait(SAMPLE_EVERY_S):
            self.peak = max(self.peak, procs.rss() or 0)


def child(endpoint: str, stream: str, warm_stream: str) -> dict[str, Any]:
    """The measurement, in a fresh process; a dict of figures."""
    import pyspark.sql.datasource  # noqa: F401  (a worker has it loaded)

    with tempfile.TemporaryDirectory() as tmp:
        _read_all(endpoint, warm_stream, os.path.join(tmp, "store"), batch=0)
        gc.collect()
        baseline = procs.rss() or 0
        reset = procs.reset_peak_rss()
        sampler = None if reset else _Sampler()
        if sampler is not None:
            sampler.thread.start()
        started = time.perf_counter()
        rows, size = _read_all(endpoint, stream, os.path.join(tmp, "store"), batch=0)
        elapsed = time.perf_counter() - started
        if sampler is not None:
            sampler.stop.set()
            sampler.thread.join()
        peak = procs.peak_rss() if sampler is None else sampler.peak
        out: dict[str, Any] = {
            "baseline": baseline,
            "peak": peak,
            "how": "VmHWM" if reset else "VmRSS sampled",
            "rows": rows,
            "bytes": size,
            "seconds": elapsed,
        }
        return out


def run(repeat: int) -> None:
    del repeat  # one measurement: a peak is not averaged
    print(
        f"(m) one task's memory: {PAGES} pages of {RECORDS_PER_PAGE} x 1 MiB records "
        f"({PAGE_BYTES // MIB} MiB a page), a fresh process, in-memory server (subprocess)"
    )
    fake_credentials()
    streams = {
        "pages": StreamSpec(records_per_shard=PAGES * RECORDS_PER_PAGE, kind="mib"),
        "warm-up": StreamSpec(records_per_shard=1),
    }
    with kinesis_server(streams, rules=BENCH_SERVER_RULES) as server:
        result = _run_child(server.endpoint, "pages", "warm-up")
    baseline, peak = result["baseline"], result["peak"]
    expected = PAGES * RECORDS_PER_PAGE
    if result["rows"] != expected:
        raise RuntimeError(f"(m) read {result['rows']} rows, expected {expected}")
    over = peak - baseline
    target = TARGET_PAGES * PAGE_BYTES
    print(
        f"  baseline {baseline / MIB:,.1f} MiB, peak {peak / MIB:,.1f} MiB ({result['how']}): "
        f"+{over / MIB:,.1f} MiB = {over / PAGE_BYTES:.2f} pages "
        f"(target < {TARGET_PAGES} pages); {result['rows']} rows in {result['seconds']:.1f} s"
    )
    figure(
        "m",
        f"one task's peak over its baseline, {PAGE_BYTES // MIB} MiB pages of 1 MiB records",
        f"+{over / MIB:,.1f} MiB ({over / PAGE_BYTES:.2f} pages)",
        f"< {TARGET_PAGES} pages",
        over < target,
    )


def _run_child(endpoint: str, stream: str, warm: str) -> dict[str, Any]:
    command = [sys.executable, "-m", "scripts.benchmarks.memory", endpoint, stream, warm]
    env = dict(os.environ)
    path = env.get("PYTHONPATH")
    env["PYTHONPATH"] = REPO_ROOT if not path else os.pathsep.join([REPO_ROOT, path])
    done = subprocess.run(
        command, env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=CHILD_TIMEOUT_S
    )
    if done.returncode != 0:
        raise RuntimeError(f"(m) the measuring process failed:\n{done.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description="(m) the measuring process")
    parser.add_argument("endpoint")
    parser.add_argument("stream")
    parser.add_argument("warm_stream")
    args = parser.parse_args()
    print(json.dumps(child(args.endpoint, args.stream, args.warm_stream)))


if __name__ == "__main__":
    main()
