"""Benchmarks of the source, printed in one run on one machine (issue 4, part 7).

    python scripts/bench.py            # every section
    python scripts/bench.py --only a,b # some sections
    python scripts/bench.py --repeat 9
    python scripts/bench.py --soak 60  # only the soak, for 60 minutes

Sections:
  (a) decode throughput per core, plain 100-byte records: our fast decoder (raw JSON body
      to an Arrow batch) vs botocore's parser alone (body to dicts). Target >= 20x.
  (b) KPL user records per core: ``deaggregation.deaggregate_arrow`` (aggregate bytes to
      Arrow columns) vs aws_kinesis_agg's deaggregator, median against median. Target >= 4x.
  (c) end to end through Spark (local[2], noop sink, Trigger.AvailableNow), in wall-clock
      seconds, on the bench's in-memory Kinesis server (``tests/emulators/kinesis_server.py``:
      pre-built GetRecords pages, so the emulator is not the bottleneck): the connector vs
      Spark's ceiling for a Python streaming source (a trivial source yielding the same
      Arrow batches from memory, same partitions and micro-batches) and vs a single-process
      boto3 GetRecords loop, for plain 100-byte records and for KPL aggregates (the loop
      then deaggregates with aws_kinesis_agg). Targets: >= 75% of the ceiling (plain and
      KPL), >= 5x the loop (plain), >= 1.0x the loop (KPL). And a batch read
      (``spark.read``, ``count()``) of the same records next to Trigger.AvailableNow:
      target at least as fast.
  (d) planning time of one trigger (``latestOffset`` + ``partitions`` on the driver), every
      call answered after 20 ms by the bench's Kinesis server: 2,000 idle shards, and
      10,000 shards of which one has a backlog. Target < 1 s; the most GetRecords calls of
      one shard in any second is printed next to each figure (Kinesis allows 5).
  (e) put-to-row latency with a 100 ms processingTime trigger: a producer puts a record
      every 50 ms holding its put time, the foreachBatch sink notes when each row
      arrives (the bench's Kinesis server, 20 ms per call). Target p50 < 200 ms within
      5 GetRecords calls/s per shard, printed next to it.
  (f) the sink: user records/s written by ``df.write.format("kinesis")`` (local[2], a
      cached DataFrame) vs a single-process boto3 PutRecords loop on the same emulator, in
      wall-clock seconds: aggregation off (the loop puts 500 records a call) and on (the
      loop aggregates with aws_kinesis_agg's RecordAggregator), and the cost of
      ``preserveOrder=true`` against the default, with 1,000 and with 10 distinct keys.
  (g) put-to-row latency as (e) but at a 1 s trigger, enhanced fan-out
      (``consumerMode=efo``) next to polling, each on a stream of kinesis-local behind the
      SubscribeToShard test double, one task a batch; then EFO with a task per shard
      (subscriptions refused by the 5-second rule when a shard changes Python worker).
      The EFO/polling ratio of the p50s; no target.
  (h) shards per core at full rate, within the quotas: the Kinesis test server appends 1 KiB
      records at a shard's full write rate (1,000 records/s) to each of N shards by itself,
      with AWS' read quotas on; a query
      with the default options (pacing on) on local[2] into the noop sink at a 1 s trigger.
      The largest N whose lag stays flat for a minute (a few doubling steps and two halving
      steps), per core, against Spark's ceiling source fed the same rows at the same rate;
      at the smallest N that fell behind, a profile of one task's read and a step with
      ``shardsPerTask=8``.
      Targets: >= 80% of the ceiling's N, >= 25 shards per core; the most GetRecords calls
      of a shard in a second (<= 5), the server's CPU share and the shards per core of
      Spark time (next to the ceiling's) are printed next to it.
  (i) the sink at the write quota: ``df.write.format("kinesis")`` (local[2], a cached
      DataFrame of 100-byte records over 1,000 keys) to 4 shards of the Kinesis test server,
      which refuses entries over a shard's 1,000 records/s or 1 MiB/s as AWS does, 25 s of
      the quota each: aggregated, user bytes/s per shard against 1 MiB/s; plain, user
      records/s per shard against 1,000. Targets >= 90% of the quota, and every record read
      back exactly once. The refused entries are printed, and next to it a boto3 PutRecords
      loop (aws_kinesis_agg's aggregator) that sends rejected entries again.
  (j) Glue Schema Registry Avro rows per core, a 10-field record: our page decoder
      (registry-framed records to the value/schemaVersionId/decodeError Arrow columns) vs
      a plain fastavro ``schemaless_reader`` loop over the bare payloads (to dicts), page
      by page. Target >= 0.7x (framing, version look-ups and Arrow on top of the decode).
  (m) one task's memory: a fresh Python process reads 10 MiB pages of 1 MiB records
      through the real read path; its peak resident memory over its baseline (after a
      warm-up read). Target < 3 pages (30 MiB).

Soak (``--soak MINUTES``, ``benchmarks/soak.py``): 50 shards, a steady producer, a 1 s
trigger, a foreachBatch sink, the file store; the RSS and open files of the driver's
Python, the JVM and the Python workers, and the store's entries, after warm-up and at the
end, with a verdict each, and a check that every record put was read exactly once.

Each section lives in ``scripts/benchmarks/`` (decode, kpl, end_to_end, planning, latency,
sink, efo_latency, shards_per_core, sink_quota, glue_avro, memory); the run ends with one
table of every figure next to its target.

(a), (b) and (j) run in this one process on one core; each figure is the best of
``--repeat`` runs over the same data, timed in process CPU seconds (the median is printed
too), after one warm-up run; (b)'s runs of the two deaggregators take turns and its figure
is median against median (best against best next to it). (c), (d) and (e) start the
bench's own Kinesis server (``tests/emulators/kinesis_server.py``), (h) the same with
AWS' read quotas and its feeder, (i) with AWS' write quota, (f) moto's, in a subprocess
on 127.0.0.1, (g) kinesis-local (node, installed by scripts/test.sh) and the
SubscribeToShard double; (c), (e), (f), (g), (h) and (i) a local[2] SparkSession. Each
stops what it started.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from scripts.benchmarks import (
    common,
    decode,
    efo_latency,
    end_to_end,
    glue_avro,
    kpl,
    latency,
    memory,
    planning,
    shards_per_core,
    sink,
    sink_quota,
    soak,
)

# Sections by letter, in print order; ``--only`` picks them up.
SECTIONS: dict[str, Callable[[int], None]] = {
    "a": decode.run,
    "b": kpl.run,
    "c": end_to_end.run,
    "d": planning.run,
    "e": latency.run,
    "f": sink.run,
    "g": efo_latency.run,
    "h": shards_per_core.run,
    "i": sink_quota.run,
    "j": glue_avro.run,
    "m": memory.run,
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(SECTIONS), help="sections, e.g. a,b")
    parser.add_argument("--repeat", type=int, default=7, help="timed runs per figure")
    parser.add_argument(
        "--soak",
        type=float,
        metavar="MINUTES",
        help="run only the soak for MINUTES (60 for issue 15) and report what grew",
    )
    parser.add_argument(
        "--consumer-mode",
        choices=("polling", "efo"),
        default="polling",
        help="the soak's consumerMode (efo: kinesis-local behind the EFO test double)",
    )
    args = parser.parse_args(argv)
    if args.soak is not None:
        print(f"python {sys.version.split()[0]}, pid {os.getpid()}")
        soak.run_soak(args.soak, args.consumer_mode)
        common.print_table()
        return
    chosen = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = [s for s in chosen if s not in SECTIONS]
    if unknown:
        parser.error(f"unknown sections {unknown}; valid: {', '.join(SECTIONS)}")
    print(f"python {sys.version.split()[0]}, pid {os.getpid()}, one core per figure")
    for name in chosen:
        SECTIONS[name](args.repeat)
    common.print_table()


if __name__ == "__main__":
    main()
