"""The fast GetRecords decoder: the raw response body, orjson and base64, into columns.

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
- ``decode_records(body)`` parses the body with orjson, decodes Data with base64, expands
  KPL aggregates with ``deaggregation.deaggregate_into`` and returns a ``RecordsPage``.
  orjson is compiled, so it cannot travel in the ``--py-files`` zip: where it is not
  installed the body is parsed with the json module instead (same rows, slower), and that
  is logged once per process.

Why this hook rather than signing and sending the request ourselves: it keeps botocore's
retry policy (standard mode, which decides on status codes and error codes only, never
on a 200 body), its credential refresh, endpoint resolution and error parsing, with one
small documented extension point. The handler only acts on a client it was installed
on, so other calls and other clients see plain boto3.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from binascii import a2b_base64
from typing import Any

try:
    import orjson
except ImportError:  # a cluster with only the documented minimum: the zip, no orjson
    orjson = None  # type: ignore[assignment]

from kinesis_source.errors import KinesisReadError
from kinesis_source.records.deaggregation import KPL_MAGIC, deaggregate_into
from kinesis_source.records.records_page import RecordsPage, arrival_micros, page_from_response

log = logging.getLogger(__name__)

RAW_BODY_KEY = "KinesisSourceRawBody"
_EVENT = "before-parse.kinesis.GetRecords"
_HANDLER_ID = "kinesis_source.records.fast_decode.keep_raw_body"
_HTTP_OK = 200
# Bodies larger than this go to the json module as text rather than to orjson: orjson
# copies its input and reserves about 13 times its size while parsing (measured with
# orjson 3.13: 173 MiB reserved, 25 MiB resident, for the 13 MiB body of a 10 MiB page),
# where the json module needs the text and the strings it makes. Parsing a 13 MiB body of
# ten 1 MiB records takes about 18 ms instead of 12 here, small beside its base64 decoding;
# pages of 10,000 records of up to ~600 bytes stay below and keep orjson's speed.
ORJSON_MAX_BODY_BYTES = 8 * 1024 * 1024
# Each fallback (no raw body, no orjson) is worth one warning per process, not one per page.
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


def install_raw_get_records(client: Any) -> None:
    """Make ``client.get_records`` return the raw body of a successful response.

    Registering twice is harmless (the handler has a unique id).
    """
    client.meta.events.register(_EVENT, _keep_raw_body, unique_id=_HANDLER_ID)


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
    if RAW_BODY_KEY in response:
        # Popped, and no name for it here: decode_records can then let it go once parsed.
        return decode_records(bytes(response.pop(RAW_BODY_KEY)), deaggregate_kpl=deaggregate_kpl)
    if "Records" not in response:
        # A successful GetRecords always has Records: the handler emptied the body and
        # botocore dropped what it kept. Read again without the handler (an iterator may
        # be used again until it expires) rather than take an empty page for the end.
        client.meta.events.unregister(_EVENT, unique_id=_HANDLER_ID)
        response = client.get_records(ShardIterator=iterator, Limit=limit)
    _warn_fallback()
    return page_from_response(response, deaggregate_kpl=deaggregate_kpl)


def _warn_fallback() -> None:
    _warn_once(
        "raw-body",
        "the raw GetRecords body did not arrive through botocore's %s event "
        "(botocore %s); decoding GetRecords with botocore's parser instead, which is slower",
        _EVENT,
        getattr(sys.modules.get("botocore"), "__version__", "unknown"),
    )


def _json_module_loads(body: bytes | str) -> Any:
    try:
        return json.loads(body)
    except ValueError as exc:
        raise KinesisReadError(f"GetRecords returned a body that is not JSON: {exc}") from exc


def _load(body: bytes | str) -> dict[str, Any]:
    """The body as a dict: text goes to the json module, bytes to orjson where installed."""
    if isinstance(body, str):
        document = _json_module_loads(body)
    elif orjson is None:
        _warn_once(
            "orjson",
            "orjson is not installed: GetRecords bodies are parsed with the json module "
            "(same records, slower); pip install orjson on the workers for speed",
        )
        document = _json_module_loads(body)
    else:
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError:
            # orjson is stricter than the json module botocore uses (lone surrogates, for
            # one); let the json module decide, as the reference decoder would.
            log.warning("orjson rejected a GetRecords body; decoding it with the json module")
            document = _json_module_loads(body)
    if not isinstance(document, dict):
        raise KinesisReadError("GetRecords returned JSON that is not an object")
    return document


def _text(body: bytes) -> str:
    """The body as text, decoded as the json module decodes UTF-8 bytes."""
    try:
        return body.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError as exc:
        raise KinesisReadError(f"GetRecords returned a body that is not UTF-8: {exc}") from exc


def decode_records(body: bytes, *, deaggregate_kpl: bool) -> RecordsPage:
    """A GetRecords response body as a ``RecordsPage``; same content as the reference."""
    # Memory: a large body goes to the json module as text, and the body is let go before
    # parsing; Data strings are let go one by one as they are decoded. A page then never
    # holds more than about two copies of itself (see ORJSON_MAX_BODY_BYTES).
    text: bytes | str = body if len(body) <= ORJSON_MAX_BODY_BYTES else _text(body)
    del body
    document = _load(text)
    del text
    records: list[dict[str, Any]] = document.get("Records") or []
    sequence_numbers = [r["SequenceNumber"] for r in records]
    blobs = [a2b_base64(r.pop("Data")) for r in records]
    keys: list[str] = [r["PartitionKey"] for r in records]
    arrival = arrival_micros([r["ApproximateArrivalTimestamp"] for r in records])
    count = len(records)
    aggregated = deaggregate_kpl and any(blob[:4] == KPL_MAGIC for blob in blobs)
    if not aggregated:
        return RecordsPage(
            sequence_numbers=sequence_numbers,
            arrival_us=arrival,
            unit_starts=list(range(count + 1)),
            data=blobs,
            partition_keys=keys,
            explicit_hash_keys=[None] * count,
            unit_records=None,
            unit_subs=None,
            millis_behind_latest=document.get("MillisBehindLatest"),
            next_shard_iterator=document.get("NextShardIterator"),
            child_shards=document.get("ChildShards"),
        )
    data: list[bytes] = []
    unit_keys: list[str] = []
    hash_keys: list[str | None] = []
    unit_records: list[int] = []
    unit_subs: list[int] = []
    unit_starts = [0]
    for index, blob in enumerate(blobs):
        added = deaggregate_into(blob, data, unit_keys, hash_keys)
        if added is None:
            data.append(blob)
            unit_keys.append(keys[index])
            hash_keys.append(None)
            added = 1
        unit_records.extend([index] * added)
        unit_subs.extend(range(added))
        unit_starts.append(len(data))
    return RecordsPage(
        sequence_numbers=sequence_numbers,
        arrival_us=arrival,
        unit_starts=unit_starts,
        data=data,
        partition_keys=unit_keys,
        explicit_hash_keys=hash_keys,
        unit_records=unit_records,
        unit_subs=unit_subs,
        millis_behind_latest=document.get("MillisBehindLatest"),
        next_shard_iterator=document.get("NextShardIterator"),
        child_shards=document.get("ChildShards"),
    )
