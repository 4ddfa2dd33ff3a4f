"""The fast decoder never takes a read down: without its botocore hooks, reads still work.

The fast decoder gets the raw GetRecords body through botocore's ``before-parse`` event, an
internal extension point, and receives it in one piece through ``before-send`` with the
client's private HTTP session. Three ways a future botocore could break them are imitated
on real clients talking to moto over HTTP on 127.0.0.1: the event no longer reaches the
handler (it is unregistered), botocore drops what the handler kept (a later handler clears
it), or the client's endpoint has no ``http_session`` (the body is then read by botocore).
In each, whole shard reads (GetShardIterator, paged GetRecords, the checkpoint store) must
return exactly the records written, KPL user records included, and warn once per process.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from kinesis_source.aws import clients
from kinesis_source.records import fast_decode
from kinesis_source.source.executor.shard_reader import read_shard
from kinesis_source.source.options import Decoder, KinesisOptions
from kinesis_source.source.positions import Position
from kinesis_source.source.tasks import ShardTask
from kinesis_source.stores import open_store
from tests.helpers import REGION, aggregate, create_stream, put

pytestmark = pytest.mark.lowest

FALLBACK_WARNING = "did not arrive through botocore's before-parse.kinesis.GetRecords event"
SESSION_WARNING = "has no client._endpoint.http_session"
USERS = [("u0", b"user-0", None), ("u1", b"user-1", None), ("u2", b"user-2", None)]


def _unregister_hook(client: Any) -> None:
    client.meta.events.unregister(
        "before-parse.kinesis.GetRecords", unique_id=fast_decode._HANDLER_ID
    )


def _drop_kept_body(client: Any) -> None:
    def forget(customized_response_dict: dict[str, Any], **_: Any) -> None:
        customized_response_dict.clear()

    # Registered after the client's own handler, so it runs after it.
    client.meta.events.register("before-parse.kinesis.GetRecords", forget)


class _EndpointWithoutSession:
    """A client's endpoint as a botocore release without ``http_session`` would have it."""

    def __init__(self, endpoint: Any) -> None:
        self._endpoint = endpoint

    def __getattr__(self, name: str) -> Any:
        if name == "http_session":
            raise AttributeError(name)
        return getattr(self._endpoint, name)


def _no_http_session(client: Any) -> None:
    client.meta.events.unregister(
        "before-send.kinesis.GetRecords", unique_id=fast_decode._SEND_HANDLER_ID
    )
    client._endpoint = _EndpointWithoutSession(client._endpoint)
    fast_decode.install_raw_get_records(client)  # as kinesis_client would on that release


def _keep_hook(client: Any) -> None:
    pass


@pytest.mark.parametrize(
    ("break_hook", "warning"),
    [
        (_unregister_hook, FALLBACK_WARNING),
        (_drop_kept_body, FALLBACK_WARNING),
        (_no_http_session, SESSION_WARNING),
        (_keep_hook, None),
    ],
    ids=["event-not-emitted", "kept-body-dropped", "no-http-session", "hook-working"],
)
def test_shard_reads_return_every_record_whether_or_not_the_hook_delivers(
    kinesis: Any,
    moto_endpoint: str,
    stream_name: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    break_hook: Callable[[Any], None],
    warning: str | None,
) -> None:
    # Clients of this test only, and a process that has not warned yet.
    monkeypatch.setattr(clients, "_CLIENTS", {})
    monkeypatch.setattr(fast_decode, "_warned", set())
    shard_ids = create_stream(kinesis, stream_name, 2)
    puts = put(kinesis, stream_name, ((f"key-{i % 5}", f"rec-{i}".encode()) for i in range(24)))
    agg = put(kinesis, stream_name, [("agg", aggregate(USERS))])[0]
    opts = KinesisOptions(
        stream_name=stream_name,
        region=REGION,
        checkpoint_store=str(tmp_path / "store"),
        endpoint_url=moto_endpoint,
        fetch_interval_ms=0,
        get_records_limit=4,  # several pages per shard
        decoder=Decoder.FAST,
    )
    break_hook(clients.kinesis_client(opts, prepare=fast_decode.install_raw_get_records))
    store = open_store(opts)
    rows = []
    with caplog.at_level(logging.WARNING, logger=fast_decode.__name__):
        for shard_id in shard_ids:
            task = ShardTask(
                batch=0,
                stream=stream_name,
                query="q",
                shard_id=shard_id,
                start=Position.trim_horizon(),
            )
            batches = list(read_shard(opts, store, task))
            rows += pa.Table.from_batches(batches).to_pylist() if batches else []
    expected = [(p["shardId"], p["sequenceNumber"], 0, p["partitionKey"], p["data"]) for p in puts]
    expected += [
        (agg["shardId"], agg["sequenceNumber"], sub, key, data)
        for sub, (key, data, _) in enumerate(USERS)
    ]
    got = [
        (r["shardId"], r["sequenceNumber"], r["subSequenceNumber"], r["partitionKey"], r["data"])
        for r in rows
    ]
    # Per shard in sequence order, each record exactly once.
    assert got == sorted(expected, key=lambda e: (e[0], int(e[1]), e[2]))
    # One warning, once, for the way the hook broke; none while it works.
    hook_warnings = [
        r.getMessage()
        for r in caplog.records
        if FALLBACK_WARNING in r.getMessage() or SESSION_WARNING in r.getMessage()
    ]
    assert len(hook_warnings) == (warning is not None)
    assert all(warning in message for message in hook_warnings)
