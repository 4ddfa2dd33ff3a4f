"""The trim horizon moves between a batch's attempt and its replay (docs/design.md section
11): the replay reads what the first attempt read, or says why not. moto never trims; the
fault proxy's ``trim`` moves a shard's trim horizon as the retention would."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from kinesis_source.errors import DataLossError
from kinesis_source.source.executor.shard_reader import read_shard
from kinesis_source.source.options import parse_options
from kinesis_source.source.positions import Position
from kinesis_source.source.tasks import ShardTask
from kinesis_source.stores import open_store
from tests.helpers import create_stream, put, source_options


def _rows(batches: Any) -> list[bytes]:
    return [d for b in batches for d in b.column("data").to_pylist()]


def _setup(
    kinesis: Any, proxy: Any, stream: str, tmp_path: Path, **extra: str
) -> tuple[Any, Any, str, list[dict[str, str]]]:
    (shard,) = create_stream(kinesis, stream, 1)
    sent = put(kinesis, stream, [("k", f"r{i}".encode()) for i in range(6)])
    options = source_options(proxy.endpoint, stream, str(tmp_path / "store"), **extra)
    opts = parse_options({k.lower(): v for k, v in options.items()})
    return opts, open_store(opts), shard, sent


def test_a_replay_from_trim_horizon_after_the_horizon_moved_is_data_loss(
    kinesis: Any, proxy: Any, stream_name: str, tmp_path: Path
) -> None:
    opts, store, shard, sent = _setup(kinesis, proxy, stream_name, tmp_path)
    task = ShardTask(0, stream_name, "q", shard, Position.trim_horizon())
    first = _rows(read_shard(opts, store, task))
    assert first == [b"r0", b"r1", b"r2", b"r3", b"r4", b"r5"]
    end = store.get(stream_name, "q", 0, shard)
    assert end is not None and end.first_sequence == sent[0]["sequenceNumber"]
    # Spark runs the batch again (a failed sink, a restart before commit); meanwhile the
    # retention passed r0 and r1.
    proxy.trim(shard, sent[2]["sequenceNumber"])
    with pytest.raises(DataLossError) as err:
        _rows(read_shard(opts, store, task))
    message = str(err.value)
    assert f"shard {shard}: the replay of batch 0 from TRIM_HORIZON" in message
    assert f"starts at {sent[2]['sequenceNumber']}" in message
    assert f"first attempt read from {sent[0]['sequenceNumber']}" in message
    assert "failOnDataLoss=false" in message
    assert err.value.sequence_number == sent[0]["sequenceNumber"]


def test_a_replay_past_the_moved_horizon_goes_on_with_fail_on_data_loss_false(
    kinesis: Any, proxy: Any, stream_name: str, tmp_path: Path, caplog: Any
) -> None:
    opts, store, shard, sent = _setup(kinesis, proxy, stream_name, tmp_path, failOnDataLoss="false")
    task = ShardTask(0, stream_name, "q", shard, Position.trim_horizon(), max_records=4)
    assert _rows(read_shard(opts, store, task)) == [b"r0", b"r1", b"r2", b"r3"]
    proxy.trim(shard, sent[2]["sequenceNumber"])
    with caplog.at_level(logging.WARNING):
        replayed = _rows(read_shard(opts, store, task))
    # What is left of the batch's range, with a warning naming the loss.
    assert replayed == [b"r2", b"r3"]
    assert any("the trim horizon moved past" in r.getMessage() for r in caplog.records)
    # The whole range gone: the replay finds a first record past the batch's end.
    proxy.trim(shard, sent[5]["sequenceNumber"])
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert _rows(read_shard(opts, store, task)) == []
    assert any(f"starts at {sent[5]['sequenceNumber']}" in r.getMessage() for r in caplog.records)


def test_a_replay_of_a_sequence_number_start_needs_no_first_record(
    kinesis: Any, proxy: Any, stream_name: str, tmp_path: Path
) -> None:
    """Only starts Kinesis resolves record their first record: a sequence-number start
    is refused by Kinesis once trimmed, and a replay that reads the same range is quiet."""
    opts, store, shard, sent = _setup(kinesis, proxy, stream_name, tmp_path)
    task = ShardTask(0, stream_name, "q", shard, Position.after(sent[1]["sequenceNumber"]))
    assert _rows(read_shard(opts, store, task)) == [b"r2", b"r3", b"r4", b"r5"]
    end = store.get(stream_name, "q", 0, shard)
    assert end is not None and end.first_sequence is None
    assert _rows(read_shard(opts, store, task)) == [b"r2", b"r3", b"r4", b"r5"]
