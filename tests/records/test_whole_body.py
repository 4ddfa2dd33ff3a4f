"""A GetRecords body is received in one piece, and a body that breaks off fails as in botocore.

botocore's HTTP session builds a body by joining urllib3's 64 KiB chunks, which holds it
twice while it arrives; the fast decoder's ``before-send`` handler reads it with one read
instead (see fast_decode's docstring). On real servers over HTTP on 127.0.0.1:

- the memory a body of 2 records of 1 MB takes while it arrives, by tracemalloc, from
  kinesis-local: a server in its own process, so only the client's allocations count;
- answers broken off half-way through the body (tests/fault_proxy.py in front of moto):
  the connection closed, or stalled past the read timeout. They must raise botocore's
  exceptions (``ConnectionClosedError``, ``ReadTimeoutError``), which the read retries,
  never a truncated page.
"""

from __future__ import annotations

import gc
import tracemalloc
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from botocore.exceptions import ConnectionClosedError, ReadTimeoutError

from kinesis_source.aws import clients
from kinesis_source.aws.clients import kinesis_client
from kinesis_source.records import fast_decode
from kinesis_source.records.fast_decode import decode_records, install_raw_get_records
from kinesis_source.source.executor.shard_reader import read_shard
from kinesis_source.source.options import parse_options
from kinesis_source.source.positions import Position
from kinesis_source.source.tasks import ShardTask
from kinesis_source.stores import open_store
from tests.helpers import create_stream, put, source_options

pytestmark = pytest.mark.lowest

RECORD_BYTES = 1_000_000


def _first_iterator(client: Any, stream: str, shard_id: str) -> str:
    return str(
        client.get_shard_iterator(
            StreamName=stream, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
    )


def test_a_get_records_body_is_held_once_while_it_arrives(
    kinesis_local: Any, kinesis_local_endpoint: str
) -> None:
    stream = "whole-body-memory"
    (shard_id,) = create_stream(kinesis_local, stream, 1)
    data = [bytes([i]) * RECORD_BYTES for i in range(2)]
    kinesis_local.put_records(
        StreamName=stream, Records=[{"PartitionKey": "k", "Data": blob} for blob in data]
    )
    opts = parse_options(source_options(kinesis_local_endpoint, stream, "unused"))
    raw = kinesis_client(opts, prepare=install_raw_get_records)
    iterator = _first_iterator(raw, stream, shard_id)
    raw.get_records(ShardIterator=iterator, Limit=1)  # connection and botocore's caches made
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        response = raw.get_records(ShardIterator=iterator, Limit=10)
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    body = response.pop(fast_decode.RAW_BODY_KEY)
    assert len(body) > 2 * RECORD_BYTES * 4 // 3  # base64
    # botocore's chunked read holds at least twice the body; one read, the body and a bit.
    assert peak < 1.25 * len(body), f"peak {peak:,} bytes for a body of {len(body):,}"
    page = decode_records(body, deaggregate_kpl=False)
    assert page.to_batch(0, len(page), stream, shard_id).column("data").to_pylist() == data


@pytest.fixture
def shard(kinesis: Any, stream_name: str) -> tuple[str, str, list[dict[str, Any]]]:
    (shard_id,) = create_stream(kinesis, stream_name, 1)
    puts = put(kinesis, stream_name, ((f"k{i}", f"record-{i}".encode() * 50) for i in range(30)))
    return stream_name, shard_id, puts


@pytest.mark.parametrize(
    ("fault", "error", "read_timeout_ms"),
    [("cut", ConnectionClosedError, 10_000), ("stall", ReadTimeoutError, 1_000)],
)
def test_a_body_broken_off_raises_botocores_error(
    proxy: Any,
    shard: tuple[str, str, list[dict[str, Any]]],
    monkeypatch: pytest.MonkeyPatch,
    fault: str,
    error: type[Exception],
    read_timeout_ms: int,
) -> None:
    monkeypatch.setattr(clients, "_CLIENTS", {})
    stream, shard_id, _ = shard
    opts = parse_options(
        source_options(proxy.endpoint, stream, "unused", readTimeoutMs=str(read_timeout_ms))
    )
    raw = kinesis_client(opts, prepare=install_raw_get_records)
    iterator = _first_iterator(raw, stream, shard_id)
    proxy.inject("GetRecords", fault, 1)
    with pytest.raises(error):
        raw.get_records(ShardIterator=iterator, Limit=100)
    # The connection is not reused half-read: the next call gets the whole page.
    body = fast_decode.get_records_body(raw, iterator, 100)
    assert len(decode_records(body, deaggregate_kpl=False)) == 30


# decoder=boto3 too: botocore >= 1.44 hands a body cut short to its parser, which made it
# an empty page at the shard's end (7 of 30 records read, no error) before the read
# required Records in every GetRecords answer.
@pytest.mark.parametrize("decoder", ["fast", "boto3"])
def test_a_shard_read_retries_a_body_broken_off(
    proxy: Any,
    shard: tuple[str, str, list[dict[str, Any]]],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    decoder: str,
) -> None:
    monkeypatch.setattr(clients, "_CLIENTS", {})
    stream, shard_id, puts = shard
    opts = parse_options(
        source_options(
            proxy.endpoint,
            stream,
            str(tmp_path / "store"),
            getRecordsLimit="7",  # several pages, the second one broken off
            retryBaseDelayMs="5",
            retryMaxDelayMs="20",
            decoder=decoder,
        )
    )
    proxy.inject("GetRecords", "cut", 1, skip=1)
    task = ShardTask(
        batch=0, stream=stream, query="q", shard_id=shard_id, start=Position.trim_horizon()
    )
    batches = list(read_shard(opts, open_store(opts), task))
    rows = pa.Table.from_batches(batches).to_pylist()
    assert [(r["sequenceNumber"], r["data"]) for r in rows] == [
        (p["sequenceNumber"], p["data"]) for p in puts
    ]
    assert proxy.faults["GetRecords"] == 1
