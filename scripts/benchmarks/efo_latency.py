"""(g) put-to-row latency with enhanced fan-out next to polling, at a 1 s trigger: section e's
producer (a put every 50 ms for 20 s) and sink, once with GetRecords and once with
SubscribeToShard, each on its own stream of the same set-up: kinesis-local behind the
SubscribeToShard test double (tests/emulators/efo_server.py), as the EFO tests run it.

Both modes read the two shards in one task a batch (``shardsPerTask=2``), as
docs/enhanced-fan-out.md advises for short triggers with enhanced fan-out: a shard then
stays in its Python worker, whose open subscription the next batch continues. A third run
shows EFO with one task per shard (the default): a shard that moves to the other worker
finds its SubscribeToShard refused by Kinesis' 5-second rule and reads that batch by
GetRecords instead of waiting (``efoFallbackToPolling``). Each run prints how many
subscriptions the double refused by that rule, and how many of those were retries of a
refused call (a read waiting it out).

The double pushes what it reads from kinesis-local's GetRecords every 50 ms; AWS pushes a
record within about 70 ms. Polling's calls pass through the double too (forwarded unchanged).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from tests.emulators import kinesis_local
from tests.emulators.efo_server import EfoServer

from .common import E2E_SHARDS, figure, kinesis, new_stream, spark_session
from .latency import percentiles, put_to_row_latencies

# The trigger for EFO against polling.
EFO_TRIGGER = "1 second"

# label -> source options of the run.
RUNS = {
    "polling": {"consumerMode": "polling", "shardsPerTask": str(E2E_SHARDS)},
    "efo": {"consumerMode": "efo", "shardsPerTask": str(E2E_SHARDS)},
    "efo, a task per shard": {"consumerMode": "efo", "shardsPerTask": "1"},
}


def run(repeat: int) -> None:
    print(
        f"(g) put-to-row latency, {EFO_TRIGGER} trigger, EFO next to polling, "
        "kinesis-local (node) behind the SubscribeToShard double"
    )
    spark = spark_session()
    p50s: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp, kinesis_local.running(Path(tmp)) as upstream:
        server = EfoServer(upstream)
        endpoint = server.start()
        try:
            for label, options in RUNS.items():
                stream = new_stream(kinesis(endpoint), E2E_SHARDS)
                refused_before = sum(server.rejections.values())
                retried_before = sum(server.retried_refusals.values())
                latencies = put_to_row_latencies(
                    spark, endpoint, stream, str(Path(tmp) / str(len(p50s))), EFO_TRIGGER, **options
                )
                refused = sum(server.rejections.values()) - refused_before
                retried = sum(server.retried_refusals.values()) - retried_before
                p50, p95, top = percentiles(latencies)
                p50s[label] = p50
                print(
                    f"  {label:<22} {len(latencies):,} rows: p50 {p50:.2f} s, p95 {p95:.2f} s, "
                    f"max {top:.2f} s; SubscribeToShard refused by the 5 s rule {refused} times, "
                    f"{retried} of them retries"
                )
                figure(
                    "g",
                    f"put-to-row latency, {label}, {EFO_TRIGGER} trigger",
                    f"p50 {p50:.2f} s, p95 {p95:.2f} s, max {top:.2f} s",
                )
        finally:
            server.stop()
    spark.stop()
    ratio = p50s["efo"] / p50s["polling"]
    print(f"  EFO/polling p50: {ratio:.2f}")
    figure("g", f"put-to-row latency p50, EFO/polling, {EFO_TRIGGER} trigger", f"{ratio:.2f}")
