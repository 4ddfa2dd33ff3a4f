"""(d) planning time of one trigger on the driver (``latestOffset`` then ``partitions``).

The bench's in-memory Kinesis server (``kinesis_server``, a subprocess on 127.0.0.1) answers
every call after ``PLANNING_LATENCY_MS``, as AWS does seen from an EC2 host. The driver's
loop runs as Spark runs it, without Spark: one trigger every ``TRIGGER_S``; when a batch is
planned its partitions are read in this process (what the executors do, store entries
included) before the next trigger, and only the planning is timed. Three cases:

- 2,000 idle shards: each trigger probes its budget (``maxProbesPerTrigger``, 200) of the
  least recently called shards;
- 10,000 shards, one with a backlog (``maxRecordsPerShard`` 2,000 of 100,000 records): the
  batch is planned at once, the idle shards wait for later budgets;
- the cost before the budget, for reference: 2,000 idle shards, every one probed on every
  trigger (``maxProbesPerTrigger`` 2,000, ``fetchIntervalMs`` 0).

Next to each figure: the most GetRecords calls any one shard got in any 1-second window, as
the server counted them (Kinesis allows 5, shared by every consumer of the stream).
"""

from __future__ import annotations

import math
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kinesis_source.source.options import parse_options
from tests.emulators.kinesis_server import KinesisServer, StreamSpec, kinesis_server

from .common import BENCH_SERVER_RULES, REGION, fake_credentials, figure

PLANNING_LATENCY_MS = 20
TRIGGER_S = 0.2  # a 200 ms processingTime trigger
PLANNING_TRIGGERS = 20
REFERENCE_TRIGGERS = 3
BACKLOG_RECORDS = 100_000
BACKLOG_PER_BATCH = 2_000


@dataclass(frozen=True)
class Planned:
    times: list[float]  # seconds of each timed trigger's planning
    batches: int
    rows: int
    calls_per_shard_1s: int  # the most GetRecords calls of one shard in any 1 s window
    get_records: int

    @property
    def median(self) -> float:
        return statistics.median(self.times)


def drive(server: KinesisServer, stream: str, triggers: int, **extra: str) -> Planned:
    """``triggers`` timed triggers of a reader of ``stream`` after one warm-up trigger."""
    from pyspark.sql.streaming.datasource import ReadAllAvailable

    from kinesis_source.source.stream_reader import KinesisStreamReader

    fake_credentials()
    with tempfile.TemporaryDirectory() as tmp:
        opts = parse_options(
            {
                "streamName": stream,
                "region": REGION,
                "endpointUrl": server.endpoint,
                "checkpointStore": str(Path(tmp) / "store"),
                "initialPosition": "trim_horizon",
                **extra,
            }
        )
        reader = KinesisStreamReader(opts)
        current = reader.initialOffset()
        times: list[float] = []
        batches = rows = 0
        for trigger in range(triggers + 1):
            if trigger == 1:
                # The first trigger also gets each probed shard's iterator: not timed.
                server.reset_stats()
            tick = time.monotonic()
            begin = time.perf_counter()
            end = reader.latestOffset(current, ReadAllAvailable())
            partitions = reader.partitions(current, end) if end != current else []
            if trigger:
                times.append(time.perf_counter() - begin)
            if partitions:
                batches += 1
                for partition in partitions:
                    rows += sum(batch.num_rows for batch in reader.read(partition))
                reader.commit(end)
                current = end
            time.sleep(max(0.0, tick + TRIGGER_S - time.monotonic()))
        stats: dict[str, Any] = server.stats()
    return Planned(
        times,
        batches,
        rows,
        int(stats["get_records_max_per_shard_1s"]),
        int(stats["get_records_calls"]),
    )


def describe(label: str, shards: int, planned: Planned) -> str:
    calls = planned.get_records / len(planned.times)
    line = (
        f"  {label}: median {planned.median:.3f} s, max {max(planned.times):.3f} s per trigger; "
        f"{calls:,.0f} GetRecords per trigger over {shards:,} shards, "
        f"at most {planned.calls_per_shard_1s} calls/s on one shard"
    )
    if planned.batches:
        line += f"; {planned.batches} batches read {planned.rows:,} rows"
    print(line)
    return f"{planned.calls_per_shard_1s} calls/s per shard at most"


def run(repeat: int) -> None:
    budget = parse_options(
        {"streamName": "s", "region": REGION, "checkpointStore": "unused"}
    ).max_probes_per_trigger
    print(
        f"(d) planning one trigger (latestOffset + partitions), {PLANNING_LATENCY_MS} ms per "
        f"call, bench Kinesis server (subprocess, 127.0.0.1), a trigger every "
        f"{TRIGGER_S * 1000:.0f} ms, {PLANNING_TRIGGERS} timed after one warm-up"
    )
    idle = {"idle": StreamSpec(shards=2_000)}
    with kinesis_server(idle, latency_ms=PLANNING_LATENCY_MS, rules=BENCH_SERVER_RULES) as server:
        paced = drive(server, "idle", PLANNING_TRIGGERS)
        per_shard = describe("2,000 idle shards", 2_000, paced)
        rotation = math.ceil(2_000 / budget)
        print(
            f"  each idle shard is probed at least every {rotation} triggers "
            f"({rotation * TRIGGER_S:.1f} s at this trigger)"
        )
        figure(
            "d",
            f"planning an idle trigger, 2,000 shards, {PLANNING_LATENCY_MS} ms per call",
            f"median {paced.median:.3f} s, max {max(paced.times):.3f} s; {per_shard}",
            "< 1 s, <= 5 calls/s per shard",
            paced.median < 1 and paced.calls_per_shard_1s <= 5,
        )
        full = drive(
            server, "idle", REFERENCE_TRIGGERS, maxProbesPerTrigger="2000", fetchIntervalMs="0"
        )
        describe("every shard probed on every trigger (reference)", 2_000, full)
        figure(
            "d",
            "the same, every shard probed each trigger (no budget: the design before)",
            f"median {full.median:.3f} s: budget {full.median / paced.median:.1f}x faster",
        )
    flowing = {
        "busy": StreamSpec(shards=10_000, records_per_shard=BACKLOG_RECORDS, shards_with_data=1)
    }
    with kinesis_server(
        flowing, latency_ms=PLANNING_LATENCY_MS, rules=BENCH_SERVER_RULES
    ) as server:
        busy = drive(server, "busy", PLANNING_TRIGGERS, maxRecordsPerShard=str(BACKLOG_PER_BATCH))
        per_shard = describe("10,000 shards, one with a backlog", 10_000, busy)
        figure(
            "d",
            f"planning a trigger, 10,000 shards, one with data, {PLANNING_LATENCY_MS} ms per call",
            f"median {busy.median:.3f} s, max {max(busy.times):.3f} s; {per_shard}",
            "< 1 s, <= 5 calls/s per shard",
            busy.median < 1 and busy.calls_per_shard_1s <= 5 and busy.batches > 0,
        )
