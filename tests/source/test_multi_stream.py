"""Several streams in one query, on kinesis-mock: each record once, with its stream's name,
in order per key, while one stream is resharded and across a restart; a stream named by
ARN; and, on the Kinesis test server, streams added to and removed from the list between
runs."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from kinesis_source.source.options import parse_options
from kinesis_source.source.positions import QueryOffset
from kinesis_source.source.stream_reader import KinesisStreamReader
from tests.emulators.kinesis_server import KinesisServer
from tests.helpers import (
    BatchCollector,
    create_stream,
    put,
    run_until_idle,
    source_options,
    start_query,
    wait_for,
)
from tests.source.test_reshard import (
    Producer,
    assert_every_record_once_and_counters_increase,
    assert_parents_read_before_children,
    merge_first_adjacent_pair,
    open_shards,
    split_in_half,
)


def of_stream(batches: Mapping[int, list[dict[str, Any]]], stream: str) -> dict[int, list[Any]]:
    return {b: [r for r in rows if r["streamName"] == stream] for b, rows in batches.items()}


def collected(sink: BatchCollector) -> int:
    return sum(len(rows) for rows in list(sink.batches.values()))


def test_two_streams_one_resharded_while_running_every_record_once_across_a_restart(
    spark: Any, kinesis_local: Any, kinesis_local_endpoint: str, tmp_path: Path
) -> None:
    client = kinesis_local
    moving, still = "multi-moving", "multi-still"
    create_stream(client, moving, 2)
    create_stream(client, still, 1)
    producers = {moving: Producer(client, moving), still: Producer(client, still)}
    sink = BatchCollector()
    options = source_options(
        kinesis_local_endpoint,
        f" {moving} , {still}",
        str(tmp_path / "store"),
        shardDiscoveryIntervalMs="200",
    )

    def run(steps: list[Any]) -> None:
        query = start_query(spark, options, str(tmp_path / "ckpt"), sink, "100 milliseconds")
        try:
            for step in steps:
                step()
            total = sum(len(p.written) for p in producers.values())
            wait_for(lambda: collected(sink) >= total, 240, "every record")
            query.processAllAvailable()
        finally:
            query.stop()

    def produce() -> None:
        for producer in producers.values():
            producer.produce(1)

    run([produce, lambda: split_in_half(client, moving, open_shards(client, moving)[0]), produce])
    # Written while no query runs, then a reshard the second run finds at its start.
    produce()
    merge_first_adjacent_pair(client, moving)
    run([produce])

    assert {r["streamName"] for rows in sink.batches.values() for r in rows} == {moving, still}
    for stream, producer in producers.items():
        batches = of_stream(sink.batches, stream)
        assert_every_record_once_and_counters_increase(batches, producer.written)
    listing = client.list_shards(StreamName=moving)["Shards"]
    assert len(listing) == 5, "the stream was not split and merged"
    assert_parents_read_before_children(of_stream(sink.batches, moving), listing)


def test_a_stream_named_by_arn_is_read_with_its_region_from_the_arn(
    spark: Any, kinesis_local: Any, kinesis_local_endpoint: str, stream_name: str, tmp_path: Path
) -> None:
    create_stream(kinesis_local, stream_name, 2)
    written = put(kinesis_local, stream_name, [(f"k{i}", f"arn-{i}".encode()) for i in range(20)])
    summary = kinesis_local.describe_stream_summary(StreamName=stream_name)
    arn = summary["StreamDescriptionSummary"]["StreamARN"]
    options = source_options(kinesis_local_endpoint, "", str(tmp_path / "store"), streamARN=arn)
    del options["streamName"], options["region"]
    sink = BatchCollector()
    run_until_idle(start_query(spark, options, str(tmp_path / "ckpt"), sink))
    rows = sink.rows()
    assert sorted((r["shardId"], r["sequenceNumber"]) for r in rows) == sorted(
        (w["shardId"], w["sequenceNumber"]) for w in written
    )
    assert {r["streamName"] for r in rows} == {stream_name}


def test_a_stream_added_between_runs_starts_at_initial_position_and_a_removed_one_is_dropped(
    spark: Any,
    kinesis_server_client: Any,
    kinesis_server: KinesisServer,
    stream_name: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Several streams on the Kinesis test server (kinesis-local runs them above).
    client, endpoint = kinesis_server_client, kinesis_server.endpoint
    kept, dropped, added = (f"{stream_name}-{n}" for n in ("kept", "dropped", "added"))
    for name in (kept, dropped, added):
        create_stream(client, name, 1)
    sent: dict[str, list[bytes]] = {kept: [], dropped: [], added: []}

    def send(stream: str, tag: str) -> None:
        data = [f"{stream}-{tag}-{i}".encode() for i in range(5)]
        put(client, stream, [("k", d) for d in data])
        sent[stream].extend(data)

    store, checkpoint = str(tmp_path / "store"), str(tmp_path / "ckpt")
    sink = BatchCollector()
    send(kept, "1")
    send(dropped, "1")
    send(added, "1")  # before the stream is in the list: trim_horizon still reads it
    first = source_options(endpoint, f"{kept},{dropped}", store)
    run_until_idle(start_query(spark, first, checkpoint, sink))
    send(kept, "2")
    send(dropped, "2")
    second = source_options(endpoint, f"{kept},{added}", store)
    run_until_idle(start_query(spark, second, checkpoint, sink))

    got: dict[str, list[bytes]] = {kept: [], dropped: [], added: []}
    for row in sink.rows():
        got[row["streamName"]].append(bytes(row["data"]))
    assert got == {kept: sent[kept], dropped: sent[dropped][:5], added: sent[added]}

    # The warning, once, from the driver side of the reader (run here, in-process).
    offset = QueryOffset.from_json(
        {
            "v": 2,
            "batch": 1,
            "query": "q",
            "streams": {
                name: {"sinceMs": None, "shards": {"shardId-000000000000": {"at": "TRIM_HORIZON"}}}
                for name in (kept, dropped)
            },
        }
    ).to_json()
    opts = {k.lower(): v for k, v in second.items()}
    reader = KinesisStreamReader(parse_options(opts))
    with caplog.at_level(logging.WARNING, logger="kinesis_source"):
        for _ in range(2):
            reader.latestOffset(offset, reader.getDefaultReadLimit())
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len([w for w in warnings if repr(dropped) in w]) == 1, warnings
