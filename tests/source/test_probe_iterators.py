"""The driver's probe iterators stay bounded by the shards it tracks (probing.py)."""

from __future__ import annotations

from typing import Any

from kinesis_source.source.driver.probing import ShardProber
from kinesis_source.source.options import parse_options
from kinesis_source.source.positions import Position
from tests.helpers import create_stream, source_options


def test_probe_iterators_of_shards_no_longer_tracked_are_forgotten(
    kinesis: Any, moto_endpoint: str, stream_name: str
) -> None:
    a, b = create_stream(kinesis, stream_name, 2)
    raw = source_options(moto_endpoint, stream_name, "unused")
    prober = ShardProber(parse_options({k.lower(): v for k, v in raw.items()}), stream_name, noop)
    both = {a: Position.trim_horizon(), b: Position.trim_horizon()}
    prober.start(both, [a, b], None)
    prober.collect(both, None, wait=True)
    assert set(prober._iterators) == {a, b}  # idle shards: their next iterators kept
    prober.collect({a: both[a]}, None, wait=True)  # b finished and is no longer tracked
    assert set(prober._iterators) == {a}


def noop(shard_id: str, at_ms: int) -> None:
    pass
