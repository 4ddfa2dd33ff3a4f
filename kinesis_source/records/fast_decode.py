"""The fast GetRecords decoder: the raw response body, msgspec, into columns.

botocore parses every record of a GetRecords response into a dict with a datetime and
decoded bytes, about 65,000 records/s per core measured here: slower than the network.
This module keeps botocore for everything it is good at (signing, endpoints, retries,
errors) and takes over only the parsing of a successful GetRecords body:

- ``install_raw_get_records(client)`` registers a handler on the client's
  ``before-parse.kinesis.GetRecords`` event. That event carries the HTTP response as a dict
  just before botocore parses it. For a 200 response the handler moves the body into the
  parsed result under ``RAW_BODY_KEY`` and leaves botocore ``{}`` to parse. Any other
  status is left alone, so Kinesis errors (ExpiredIteratorException,
  ProvisionedThroughputExceededException, ResourceNotFoundException, ...) are parsed,
  retried and raised as ``ClientError`` exactly as without the handler.
- ``decode_records(body)`` parses the body with msgspec into typed structs, whose ``Data``
  msgspec base64-decodes in C as it parses (about twice the speed of orjson followed by
  ``binascii.a2b_base64``), expands KPL aggregates with ``deaggregation.deaggregate_arrow``
  and returns a ``RecordsPage``. msgspec is compiled, so it cannot travel in the
  ``--py-files`` zip: where it is not installed the body is parsed with the json module
  and ``a2b_base64`` instead (same rows, slower), and that is logged once per process.
  msgspec is stricter than the json module botocore uses (a lone surrogate in a key,
  base64 with a line break): a body it rejects goes the json module's way, as the
  reference decoder would read it.

Why this hook rather than signing and sending the request ourselves: it keeps botocore's
retry policy (standard mode, which decides on status codes and error codes only, never
on a 200 body), its credential refresh, endpoint resolution and error parsing, with one
small documented extension point. The handler only acts on a client it was installed
on, so other calls and other clients see plain boto3.

The body is also received in one piece. botocore's HTTP session reads a response's body
as ``b"".join(raw.stream())``: urllib3's 64 KiB chunks, then their joined copy, so a 13 MiB
body (a 10 MiB page) is held twice while it arrives, whatever the decoder does next. A
handler on ``before-send.kinesis.GetRecords`` sends the request with the client's own HTTP
session (what botocore does next anyway) as a streamed request, so that the session
returns once the headers are in, reads the body with one ``read()`` (with a Content-Length,
one bytes object filled in place), raising read failures as the session would
(``ReadTimeoutError``, ``ConnectionClosedError``, ...), and hands botocore the response
with a ``raw`` whose ``stream()`` yields that body: joining a single bytes object returns
it as is. The session is a private attribute (``client._endpoint.http_session``): where a
botocore release no longer has it, the handler is not installed and botocore reads the
body its own way (the same records, the body held twice for a moment), with a warning once
per process.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from binascii import a2b_base64
from collections.abc import Callable, Iterator
from functools import cache
from typing import Any, NamedTuple

import pyarrow as pa
import pyarrow.compute as pc
import urllib3.exceptions
from botocore.exceptions import (
    ConnectionClosedError,
    HTTPClientError,
    ReadTimeoutError,
    SSLError,
)

try:
    import msgspec
except ImportError:  # a cluster with only the documented minimum: the zip, no msgspec
    msgspec = None  # type: ignore[assignment,unused-ignore]

from kinesis_source.errors import KinesisReadError
from kinesis_source.records.kpl_format import KPL_MAGIC
from kinesis_source.records.records_page import RecordsPage, arrival_micros, page_from_response

log = logging.getLogger(__name__)

RAW_BODY_KEY = "KinesisSourceRawBody"
_EVENT = "before-parse.kinesis.GetRecords"
_HANDLER_ID = "kinesis_source.records.fast_decode.keep_raw_body"
_SEND_EVENT = "before-send.kinesis.GetRecords"
_SEND_HANDLER_ID = "kinesis_source.records.fast_decode.send_read_whole"
_HTTP_OK = 200
# Bodies larger than this (pages of large records: a 10 MiB page is a 13.3 MiB body) are read
# for memory: the body let go as soon as parsed (by msgspec straight from the bytes; by the
# json module as text, each record's base64 let go as it is decoded), and the data left as
# bytes for Arrow to copy one batch (limits.ARROW_BATCH_MAX_BYTES) at a time rather than
# the whole page at once. A page of 10,000 records of up to ~600 bytes stays below.
LARGE_BODY_BYTES = 8 * 1024 * 1024
# Each fallback (no raw body, no msgspec) is worth one warning per process, not one per page.
_warned: set[str] = set()
_warned_lock = threading.Lock()


def _warn_once(key: str, message: str, *args: Any) -> None:
    with _warned_lock:
        if key in _warned:
            return
        _warned.add(key)
    log.warning(message, *args)


def _keep_raw_body(
    response_dict: dict[str, Any], customized_response_dict: dict[str, Any], **_: Any
) -> None:
    body = response_dict.get("body")
    if response_dict.get("status_code") == _HTTP_OK and isinstance(body, (bytes, bytearray)):
        customized_response_dict[RAW_BODY_KEY] = body
        response_dict["body"] = b"{}"


class _WholeBody:
    """A response's ``raw`` stream once its body has been read: ``stream()`` yields it whole.

    botocore builds the body as ``b"".join(raw.stream())``, and one bytes object joined is
    that very object. Everything else is the urllib3 response's own.
    """

    def __init__(self, raw: Any, body: bytes) -> None:
        self._raw = raw
        self._body = body

    def stream(self, *_: Any, **__: Any) -> Iterator[bytes]:
        body, self._body = self._body, b""
        yield body

    def __getattr__(self, name: str) -> Any:
        return getattr(self._raw, name)


def _http_send(client: Any) -> Callable[[Any], Any] | None:
    """The client's own HTTP sender, ``client._endpoint.http_session.send`` (private in
    botocore: what its endpoint calls to send a prepared request); None if not there."""
    session = getattr(getattr(client, "_endpoint", None), "http_session", None)
    send = getattr(session, "send", None)
    return send if callable(send) else None


def _read_body(raw: Any, request: Any) -> bytes:
    """The whole body in one read, failures raised as botocore's session raises them."""
    try:
        # http.client reads a body of known length into one bytes object of that size,
        # and raises IncompleteRead where the connection ends short of it.
        body: bytes = raw.read()
    except urllib3.exceptions.ReadTimeoutError as exc:
        raise ReadTimeoutError(endpoint_url=request.url, error=exc) from exc
    except urllib3.exceptions.ProtocolError as exc:
        raise ConnectionClosedError(error=exc, request=request, endpoint_url=request.url) from exc
    except urllib3.exceptions.SSLError as exc:
        raise SSLError(endpoint_url=request.url, error=exc) from exc
    except Exception as exc:
        raise HTTPClientError(error=exc) from exc
    return body


def _whole_body_sender(send: Callable[[Any], Any]) -> Callable[..., Any]:
    def _send_read_whole(request: Any, **_: Any) -> Any:
        if request.stream_output:
            return None
        # Streamed, the session returns once the headers are in and leaves the body to
        # read; read here, before botocore goes on, as the session would have read it.
        request.stream_output = True
        try:
            response = send(request)
        finally:
            request.stream_output = False
        raw = getattr(response, "raw", None)
        if callable(getattr(raw, "read", None)):
            response.raw = _WholeBody(raw, _read_body(raw, request))
        # else a session that returned something else: botocore reads it its own way.
        return response

    return _send_read_whole


def install_raw_get_records(client: Any) -> None:
    """Make ``client.get_records`` return the raw body of a successful response, received
    in one piece where botocore lets us (see the module's docstring).

    Registering twice is harmless (the handlers have unique ids).
    """
    client.meta.events.register(_EVENT, _keep_raw_body, unique_id=_HANDLER_ID)
    send = _http_send(client)
    if send is None:
        _warn_once(
            "http-session",
            "botocore %s has no client._endpoint.http_session: GetRecords bodies are read "
            "by botocore in 64 KiB chunks, which holds each body twice while it arrives",
            _botocore_version(),
        )
        return
    client.meta.events.register(_SEND_EVENT, _whole_body_sender(send), unique_id=_SEND_HANDLER_ID)


def get_records_body(client: Any, iterator: str, limit: int) -> bytes:
    """The raw JSON body of one GetRecords call on a client prepared with the handler."""
    response = client.get_records(ShardIterator=iterator, Limit=limit)
    body = response.get(RAW_BODY_KEY)
    if body is None:
        raise KinesisReadError(
            "GetRecords returned no raw body: the client was built without "
            "install_raw_get_records (use the decoder=boto3 option to bypass the fast path)"
        )
    return bytes(body)


def _as_bytes(body: bytes | bytearray) -> bytes:
    return body if isinstance(body, bytes) else bytes(body)


def get_records_page(
    client: Any, iterator: str, limit: int, *, deaggregate_kpl: bool
) -> RecordsPage:
    """One GetRecords call as a ``RecordsPage``, by the fast decoder whenever it can be.

    The ``before-parse`` event is botocore's internal extension point, and botocore
    releases every few days. If the raw body does not arrive (a botocore that no longer
    emits the event, or drops what the handler kept), the page comes from botocore's
    parsed response instead, with one warning per process: slower, never wrong.
    """
    response = client.get_records(ShardIterator=iterator, Limit=limit)
    if response.get(RAW_BODY_KEY) is not None:
        # Popped and passed on, not kept: the decoder then holds the body's only reference
        # and lets it go once parsed, before the records are copied into Arrow (a 10 MiB
        # page would otherwise be held three times at once).
        return decode_records(
            _as_bytes(response.pop(RAW_BODY_KEY)), deaggregate_kpl=deaggregate_kpl
        )
    if "Records" not in response:
        # A successful GetRecords always has Records: the handler emptied the body and
        # botocore dropped what it kept. Read again without the handler (an iterator may
        # be used again until it expires) rather than take an empty page for the end.
        client.meta.events.unregister(_EVENT, unique_id=_HANDLER_ID)
        response = require_records(client.get_records(ShardIterator=iterator, Limit=limit))
    _warn_fallback()
    return page_from_response(response, deaggregate_kpl=deaggregate_kpl)


def require_records(response: dict[str, Any]) -> dict[str, Any]:
    """A parsed GetRecords response, which must have ``Records``; else a retryable error.

    botocore >= 1.44 no longer checks a body's length against its Content-Length, and its
    JSON parser turns a body cut short into a dict with neither ``Records`` nor
    ``NextShardIterator``: taken as a page, that is an empty page at a closed shard's end,
    and the read would stop there for good, the rest of the shard unread.
    """
    if "Records" not in response:
        raise HTTPClientError(
            error="GetRecords answered without Records (its body cut short or unreadable)"
        )
    return response


def _warn_fallback() -> None:
    _warn_once(
        "raw-body",
        "the raw GetRecords body did not arrive through botocore's %s event "
        "(botocore %s); decoding GetRecords with botocore's parser instead, which is slower",
        _EVENT,
        _botocore_version(),
    )


def _botocore_version() -> str:
    # For the fallback warnings: they name the release whose internals differ.
    return str(getattr(sys.modules.get("botocore"), "__version__", "unknown"))


if msgspec is not None:
    # The ignores: where msgspec is not installed, mypy sees Struct as Any.
    class _Record(msgspec.Struct, gc=False):  # type: ignore[misc,call-arg,unused-ignore]
        """A GetRecords record; other fields (EncryptionType) are skipped by the parser."""

        SequenceNumber: str
        ApproximateArrivalTimestamp: float
        Data: bytes  # base64 in the JSON: msgspec decodes it
        PartitionKey: str

    class _Body(msgspec.Struct, gc=False):  # type: ignore[misc,call-arg,unused-ignore]
        Records: list[_Record] = []  # noqa: RUF012 (msgspec copies mutable defaults)
        NextShardIterator: str | None = None
        MillisBehindLatest: int | None = None
        ChildShards: list[dict[str, Any]] | None = None

    _BODY_DECODER = msgspec.json.Decoder(_Body)


class _Columns(NamedTuple):
    """A body's records as columns (``Data`` decoded), and the page's own fields."""

    sequence_numbers: list[str]
    arrival_seconds: list[float]
    data: list[bytes]
    partition_keys: list[str]
    millis_behind_latest: int | None
    next_shard_iterator: str | None
    child_shards: list[dict[str, Any]] | None


def _msgspec_columns(body: bytes) -> _Columns | None:
    try:
        page = _BODY_DECODER.decode(body)
    except (msgspec.DecodeError, ValueError):
        # ValueError: UnicodeDecodeError for bytes that are not UTF-8.
        _warn_once(
            "msgspec-rejected",
            "msgspec rejected a GetRecords body; decoding it with the json module as "
            "botocore would (logged once per process)",
        )
        return None
    records = page.Records
    return _Columns(
        [r.SequenceNumber for r in records],
        [r.ApproximateArrivalTimestamp for r in records],
        [r.Data for r in records],
        [r.PartitionKey for r in records],
        page.MillisBehindLatest,
        page.NextShardIterator,
        page.ChildShards,
    )


def _json_module_columns(holder: list[bytes], *, as_text: bool = False) -> _Columns:
    """The pure-Python path: the json module and ``a2b_base64``, as botocore reads it.

    The body is taken out of ``holder``, so that where the caller kept no other reference
    no frame keeps it alive while it is parsed; ``as_text`` parses it as text (see
    LARGE_BODY_BYTES). Each record's base64 is let go as it is decoded.
    """
    body = holder.pop()
    text: bytes | str = _text(body) if as_text else body
    del body
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise KinesisReadError(f"GetRecords returned a body that is not JSON: {exc}") from exc
    del text
    if not isinstance(document, dict):
        raise KinesisReadError("GetRecords returned JSON that is not an object")
    records: list[dict[str, Any]] = document.get("Records") or []
    return _Columns(
        [r["SequenceNumber"] for r in records],
        [r["ApproximateArrivalTimestamp"] for r in records],
        [a2b_base64(r.pop("Data")) for r in records],
        [r["PartitionKey"] for r in records],
        document.get("MillisBehindLatest"),
        document.get("NextShardIterator"),
        document.get("ChildShards"),
    )


def _columns(holder: list[bytes], *, large: bool) -> _Columns:
    """The body's columns; the body is taken out of ``holder`` as soon as it is parsed."""
    if msgspec is None:
        _warn_once(
            "msgspec",
            "msgspec is not installed: GetRecords bodies are parsed with the json module "
            "(same records, slower); pip install msgspec on the workers for speed",
        )
    else:
        # msgspec parses the bytes in place and writes each Data straight into its bytes:
        # the body and the decoded data (three quarters of it), no text copy.
        columns = _msgspec_columns(holder[0])
        if columns is not None:
            holder.clear()
            return columns
    return _json_module_columns(holder, as_text=large)


@cache
def _magic() -> pa.Scalar:
    # Made on first use: see records_page._zero (pandas, imported by pyarrow's conversions).
    return pa.scalar(KPL_MAGIC, pa.binary())


def _holds_aggregate(data: pa.BinaryArray) -> bool:
    """Whether any record starts with KPL's magic: one pass in C, a tenth of a generator's."""
    return bool(pc.any(pc.equal(pc.binary_slice(data, 0, len(KPL_MAGIC)), _magic())).as_py())


def _text(body: bytes) -> str:
    """The body as text, decoded as the json module decodes UTF-8 bytes."""
    try:
        return body.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError as exc:
        raise KinesisReadError(f"GetRecords returned a body that is not UTF-8: {exc}") from exc


def decode_records(body: bytes, *, deaggregate_kpl: bool) -> RecordsPage:
    """A GetRecords response body as a ``RecordsPage``; same content as the reference."""
    large = len(body) > LARGE_BODY_BYTES
    holder = [body]
    del body  # get_records_page passed its only reference: the holder has the last
    columns = _columns(holder, large=large)
    sequence_numbers, blobs, keys = columns.sequence_numbers, columns.data, columns.partition_keys
    arrival = arrival_micros(columns.arrival_seconds)
    count = len(blobs)
    if large:
        page_data: list[bytes] | pa.BinaryArray = blobs
        aggregated = deaggregate_kpl and any(blob[:4] == KPL_MAGIC for blob in blobs)
    else:
        page_data = pa.array(blobs, pa.binary())
        aggregated = deaggregate_kpl and _holds_aggregate(page_data)
    if not aggregated:
        return RecordsPage(
            sequence_numbers=sequence_numbers,
            arrival_us=arrival,
            unit_starts=list(range(count + 1)),
            data=page_data,
            partition_keys=keys,
            explicit_hash_keys=[None] * count,
            unit_records=None,
            unit_subs=None,
            millis_behind_latest=columns.millis_behind_latest,
            next_shard_iterator=columns.next_shard_iterator,
            child_shards=columns.child_shards,
        )
    try:
        return _aggregated_page(columns, arrival, page_data)
    except UnicodeEncodeError:
        # A plain record's key that Arrow cannot hold (a lone surrogate: only a hand-made
        # body has one). The reference builds that page as lists, and its to_batch raises
        # for the rows that hold the key, as it always did.
        return page_from_response(_response(columns), deaggregate_kpl=True)


def _response(columns: _Columns) -> dict[str, Any]:
    """``columns`` shaped as botocore's parsed GetRecords response."""
    return {
        "Records": [
            {
                "SequenceNumber": sequence,
                "ApproximateArrivalTimestamp": stamp,
                "Data": blob,
                "PartitionKey": key,
            }
            for sequence, stamp, blob, key in zip(
                columns.sequence_numbers,
                columns.arrival_seconds,
                columns.data,
                columns.partition_keys,
                strict=True,
            )
        ],
        "MillisBehindLatest": columns.millis_behind_latest,
        "NextShardIterator": columns.next_shard_iterator,
        "ChildShards": columns.child_shards,
    }


def _aggregated_page(
    columns: _Columns, arrival: pa.Array, page_data: list[bytes] | pa.BinaryArray
) -> RecordsPage:
    """A page that holds KPL aggregates; raises UnicodeEncodeError for a plain record's key
    that Arrow cannot hold."""
    sequence_numbers, blobs, keys = columns.sequence_numbers, columns.data, columns.partition_keys
    count = len(blobs)
    # One Arrow chunk per aggregate (deaggregate_arrow) and per run of plain records.
    data: list[pa.Array] = []
    unit_keys: list[pa.Array] = []
    hash_keys: list[pa.Array] = []
    unit_records: list[int] = []
    unit_subs: list[int] = []
    aggregated: list[bool] = []
    unit_starts = [0]
    plain_from = 0  # first plain record not yet in a chunk

    def add_plain(end: int) -> None:
        if end > plain_from:
            data.append(
                page_data.slice(plain_from, end - plain_from)
                if isinstance(page_data, pa.Array)
                else pa.array(page_data[plain_from:end], pa.binary())
            )
            unit_keys.append(pa.array(keys[plain_from:end], pa.string()))
            hash_keys.append(pa.nulls(end - plain_from, pa.string()))

    # Imported here: the planner loads this module (for its clients) but never
    # deaggregates, and protobuf would cost it about 0.1 s at each query's start.
    from kinesis_source.records.deaggregation import deaggregate_arrow

    units_so_far = 0
    for index, blob in enumerate(blobs):
        units = deaggregate_arrow(blob)
        aggregated.append(units is not None)
        if units is None:
            added = 1
        else:
            add_plain(index)
            plain_from = index + 1
            data.append(units.data)
            unit_keys.append(units.partition_keys)
            hash_keys.append(units.explicit_hash_keys)
            added = len(units.data)
        unit_records.extend([index] * added)
        unit_subs.extend(range(added))
        units_so_far += added
        unit_starts.append(units_so_far)
    add_plain(count)
    return RecordsPage(
        sequence_numbers=sequence_numbers,
        arrival_us=arrival,
        unit_starts=unit_starts,
        data=pa.chunked_array(data, pa.binary()),
        partition_keys=pa.chunked_array(unit_keys, pa.string()),
        explicit_hash_keys=pa.chunked_array(hash_keys, pa.string()),
        unit_records=unit_records,
        unit_subs=unit_subs,
        millis_behind_latest=columns.millis_behind_latest,
        next_shard_iterator=columns.next_shard_iterator,
        child_shards=columns.child_shards,
        aggregated=aggregated,
    )
