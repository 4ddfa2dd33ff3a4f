"""(g) put-to-row latency with enhanced fan-out next to polling, at a 1 s trigger: section e's
producer (a put every 50 ms for 20 s) and sink, once with GetRecords and once with
SubscribeToShard, each on its own stream of the same set-up: kinesis-local behind the
SubscribeToShard test double (tests/emulators/efo_server.py), as the EFO tests run it.

The double pushes what it reads from kinesis-local's GetRecords every 50 ms; AWS pushes a
record within about 70 ms. Polling's calls pass through the double too (forwarded unchanged).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from tests.emulators import kinesis_local
from tests.emulators.efo_server import EfoServer

from .common import E2E_SHARDS, figure, kinesis, new_stream, spark_session
from .latency import LATENCY_TRIGGER, percentiles, put_to_row_latencies

MODES = ("polling", "efo")


def run(repeat: int) -> None:
    print(
        f"(g) put-to-row latency, {LATENCY_TRIGGER} trigger, EFO next to polling, "
        "kinesis-local (node) behind the SubscribeToShard double"
    )
    spark = spark_session()
    p50s: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp, kinesis_local.running(Path(tmp)) as upstream:
        server = EfoServer(upstream)
        endpoint = server.start()
        try:
            for mode in MODES:
                stream = new_stream(kinesis(endpoint), E2E_SHARDS)
                latencies = put_to_row_latencies(
                    spark, endpoint, stream, str(Path(tmp) / mode), consumerMode=mode
                )
                p50, p95, top = percentiles(latencies)
                p50s[mode] = p50
                print(
                    f"  {mode:<8} {len(latencies):,} rows: p50 {p50:.2f} s, "
                    f"p95 {p95:.2f} s, max {top:.2f} s"
                )
                figure(
                    "g",
                    f"put-to-row latency, {mode}, {LATENCY_TRIGGER} trigger",
                    f"p50 {p50:.2f} s, p95 {p95:.2f} s, max {top:.2f} s",
                )
        finally:
            server.stop()
    spark.stop()
    ratio = p50s["efo"] / p50s["polling"]
    print(f"  EFO/polling p50: {ratio:.2f}")
    figure("g", f"put-to-row latency p50, EFO/polling, {LATENCY_TRIGGER} trigger", f"{ratio:.2f}")
