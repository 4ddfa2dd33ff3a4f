"""What a store does over months: purges that fail are retried at the next commit and never
fail it, a removed stream's entries go, DynamoDB entries expire by TTL, a corrupt entry
names itself, and ``check()`` proves put-if-absent on the endpoint it is given."""

from __future__ import annotations

import errno
import json
import os
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest

from kinesis_source import limits
from kinesis_source.errors import CheckpointStoreError
from kinesis_source.source.options import parse_options
from kinesis_source.source.positions import Position, QueryOffset, ShardEnd, StreamOffset
from kinesis_source.source.stream_reader import KinesisStreamReader
from kinesis_source.stores import FileCheckpointStore, open_store
from kinesis_source.stores.dynamodb import TTL_ATTRIBUTE
from tests.helpers import REGION, create_stream, source_options

SHARD = "shardId-000000000000"


def _end(seq: str) -> ShardEnd:
    return ShardEnd(Position.after(seq), records=1, millis_behind_latest=0, caught_up=True)


def _offset(batch: int, *streams: str) -> dict[str, Any]:
    shards = {SHARD: Position.trim_horizon()}
    return QueryOffset(
        batch=batch, query="q", streams={s: StreamOffset(shards=shards) for s in streams}
    ).to_json()


def _store_opts(store: str, endpoint: str, **extra: str) -> Any:
    raw = source_options(endpoint, "s", store, checkpointEndpointUrl=endpoint, **extra)
    return parse_options({k.lower(): v for k, v in raw.items()})


def test_a_failing_purge_is_logged_and_the_next_commit_purges_a_removed_stream_too(
    kinesis: Any,
    moto_endpoint: str,
    stream_name: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    gone = f"{stream_name}-gone"
    create_stream(kinesis, stream_name, 1)
    root = tmp_path / "store"
    raw = source_options(moto_endpoint, stream_name, str(root))
    reader = KinesisStreamReader(parse_options({k.lower(): v for k, v in raw.items()}))
    store = FileCheckpointStore(str(root))
    for name in (stream_name, gone):
        for batch in range(4):
            store.put_if_absent(name, "q", batch, SHARD, _end(str(batch + 1)))
    # The checkpoint's offset still holds `gone`: dropped from the next offset, with a warning.
    reader.latestOffset(_offset(3, stream_name, gone), reader.getDefaultReadLimit())

    listdir = os.listdir

    def failing(path: Any) -> list[str]:
        if Path(path).name == "q":
            raise OSError(errno.EIO, "Input/output error", str(path))
        return listdir(path)

    monkeypatch.setattr(os, "listdir", failing)
    with caplog.at_level("WARNING", logger="kinesis_source"):
        reader.commit(_offset(3, stream_name))  # does not raise
    warnings = [r.getMessage() for r in caplog.records if "purging again" in r.getMessage()]
    assert len(warnings) == 2, warnings
    assert all(f"checkpoint store {root}" in w and "Input/output error" in w for w in warnings)
    assert [b for b in range(4) if store.get_batch(stream_name, "q", b)] == [0, 1, 2, 3]

    monkeypatch.undo()
    reader.commit(_offset(3, stream_name))
    assert [b for b in range(4) if store.get_batch(stream_name, "q", b)] == [2, 3]
    assert not (root / gone / "q").exists()


def test_s3_and_dynamodb_purge_errors_are_store_errors(moto_endpoint: str) -> None:
    s3 = open_store(_store_opts(f"s3://missing-{uuid.uuid4().hex[:8]}/p", moto_endpoint))
    with pytest.raises(CheckpointStoreError, match=r"checkpoint store s3://missing-.*NoSuchBucket"):
        s3.purge_before("s", "q", 5)
    table = f"missing-{uuid.uuid4().hex[:8]}"
    dynamodb = open_store(_store_opts(f"dynamodb://{table}", moto_endpoint))
    with pytest.raises(CheckpointStoreError, match=rf"dynamodb://{table}: Query failed"):
        dynamodb.purge_before("s", "q", 5)


def test_a_created_table_expires_entries_by_ttl(moto_endpoint: str) -> None:
    table = f"ttl-{uuid.uuid4().hex[:8]}"
    store = open_store(_store_opts(f"dynamodb://{table}", moto_endpoint))
    store.check()
    client = boto3.client("dynamodb", region_name=REGION, endpoint_url=moto_endpoint)
    ttl = client.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
    assert (ttl["TimeToLiveStatus"], ttl["AttributeName"]) == ("ENABLED", TTL_ATTRIBUTE)
    before = int(time.time())
    store.put_if_absent("s", "q", 1, SHARD, _end("7"))
    (item,) = client.scan(TableName=table)["Items"]  # the check's probe item is gone
    expires = int(item[TTL_ATTRIBUTE]["N"])
    assert (
        before + limits.STORE_ENTRY_TTL_SECONDS
        <= expires
        <= int(time.time()) + (limits.STORE_ENTRY_TTL_SECONDS)
    )


def test_a_corrupt_entry_names_the_store_the_key_and_what_is_wrong(
    moto_endpoint: str, tmp_path: Path
) -> None:
    store = FileCheckpointStore(str(tmp_path))
    path = tmp_path / "s" / "q" / "000000000002" / f"{SHARD}.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"records": 3}))
    with pytest.raises(CheckpointStoreError) as info:
        store.get_batch("s", "q", 2)
    assert f"checkpoint store {tmp_path}: the entry {path} is corrupt (missing field 'end')" in str(
        info.value
    )
    path.write_text("{not json")
    with pytest.raises(CheckpointStoreError, match=r"the entry .* is corrupt \(Expecting"):
        store.get("s", "q", 2, SHARD)

    table = f"corrupt-{uuid.uuid4().hex[:8]}"
    dynamodb = open_store(_store_opts(f"dynamodb://{table}", moto_endpoint))
    dynamodb.check()
    client = boto3.client("dynamodb", region_name=REGION, endpoint_url=moto_endpoint)
    client.put_item(
        TableName=table,
        Item={
            "streamQuery": {"S": "s/q"},
            "batchShard": {"S": f"000000000002/{SHARD}"},
            "shardId": {"S": SHARD},
            "checkpoint": {"S": "SOMEWHERE"},
        },
    )
    with pytest.raises(CheckpointStoreError) as info:
        dynamodb.get_batch("s", "q", 2)
    assert f"item s/q 000000000002/{SHARD} is corrupt (not a shard position: 'SOMEWHERE')" in (
        str(info.value)
    )


def test_the_file_store_check_needs_working_hard_links(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    FileCheckpointStore(str(tmp_path / "ok")).check()  # links work here

    def no_links(src: Any, dst: Any) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    with pytest.raises(CheckpointStoreError, match="put-if-absent needs hard links"):
        FileCheckpointStore(str(tmp_path / "fuse")).check()
    assert not list((tmp_path / "fuse").iterdir())  # the probes were removed


class _IgnoresIfNoneMatch(BaseHTTPRequestHandler):
    """An S3-compatible endpoint that ignores If-None-Match: every PUT succeeds."""

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _reply(self, status: int, body: bytes = b"") -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("ETag", '"0"')
        self.end_headers()
        self.wfile.write(body)

    def do_HEAD(self) -> None:
        self._reply(200)

    def do_GET(self) -> None:  # ListObjectsV2: nothing there
        self._reply(
            200,
            b'<?xml version="1.0"?><ListBucketResult><KeyCount>0</KeyCount>'
            b"<IsTruncated>false</IsTruncated></ListBucketResult>",
        )

    def do_PUT(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._reply(200)

    def do_DELETE(self) -> None:
        self._reply(204)


@pytest.fixture
def ignores_if_none_match() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _IgnoresIfNoneMatch)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_the_s3_check_fails_on_an_endpoint_that_ignores_if_none_match(
    moto_endpoint: str, ignores_if_none_match: str
) -> None:
    bucket = f"ckpt-{uuid.uuid4().hex[:8]}"
    boto3.client("s3", region_name=REGION, endpoint_url=moto_endpoint).create_bucket(Bucket=bucket)
    open_store(_store_opts(f"s3://{bucket}/p", moto_endpoint)).check()  # moto honours it
    store = open_store(_store_opts(f"s3://{bucket}/p", ignores_if_none_match))
    with pytest.raises(CheckpointStoreError) as info:
        store.check()
    message = str(info.value)
    assert f"checkpoint store s3://{bucket}/p: put-if-absent does not hold" in message
    assert "ignores If-None-Match" in message
