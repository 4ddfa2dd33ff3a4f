"""Odd records end to end: empty, 1 MiB, not UTF-8, longest keys, corrupt KPL aggregates.

On kinesis-mock, which checks record sizes and key lengths as AWS does (it counts a key's
length in UTF-16 code units: 128 emoji are 256 of them, the most it accepts).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from kinesis_source.limits import PARTITION_KEY_MAX_CHARS, RECORD_MAX_BYTES
from kinesis_source.records.deaggregation import KPL_MAGIC
from tests.helpers import (
    BatchCollector,
    aggregate,
    create_stream,
    framed,
    put,
    run_until_idle,
    source_options,
    start_query,
    wait_for,
)

GOOD = aggregate([("€" * PARTITION_KEY_MAX_CHARS, b""), ("u2", b"\xff\xfe\x00")])
PROTOBUF = GOOD[len(KPL_MAGIC) : -16]
BIG_KEY = "big"

# (partition key, data) of plain records: each must come out exactly as written.
PLAIN: dict[str, tuple[str, bytes]] = {
    "empty data": ("empty", b""),
    # AWS counts the partition key toward the 1 MiB.
    "1 MiB with its key": (BIG_KEY, (bytes(range(256)) * 4096)[: RECORD_MAX_BYTES - len(BIG_KEY)]),
    "not UTF-8": ("bytes", b"\x80\xff\xfe\x00\xc3\x28 \xed\xa0\x80"),
    "256 euro signs as key": ("€" * PARTITION_KEY_MAX_CHARS, b"euro key"),
    "128 emoji as key": ("\U0001f600" * (PARTITION_KEY_MAX_CHARS // 2), b"emoji key"),
    "magic and garbage": ("kpl-1", KPL_MAGIC + b"\x00garbage that is no protobuf" * 3),
    "magic only": ("kpl-2", KPL_MAGIC),
    "valid protobuf, bad MD5": ("kpl-3", framed(PROTOBUF, b"\x00" * 16)),
    "garbage with its MD5": ("kpl-4", framed(b"\xff\xff\xff\xff\x0f garbage")),
    "truncated protobuf with its MD5": ("kpl-5", framed(PROTOBUF[:-3])),
}


@pytest.mark.parametrize("decoder", ["fast", "boto3"])
def test_odd_records_and_corrupt_aggregates_come_out_as_written(
    spark: Any,
    kinesis_local: Any,
    kinesis_local_endpoint: str,
    stream_name: str,
    tmp_path: Path,
    decoder: str,
) -> None:
    create_stream(kinesis_local, stream_name, 1)
    written = put(kinesis_local, stream_name, [*PLAIN.values(), ("outer", GOOD)])
    sink = BatchCollector()
    options = source_options(
        kinesis_local_endpoint, stream_name, str(tmp_path / "store"), decoder=decoder
    )
    run_until_idle(start_query(spark, options, str(tmp_path / "ckpt"), sink))
    got = sorted(
        (
            int(r["sequenceNumber"]),
            r["subSequenceNumber"],
            r["partitionKey"],
            bytes(r["data"]),
            r["explicitHashKey"],
        )
        for r in sink.rows()
    )
    seq = [int(w["sequenceNumber"]) for w in written]
    expected = [(seq[i], 0, key, data, None) for i, (key, data) in enumerate(PLAIN.values())]
    expected += [
        (seq[-1], 0, "€" * PARTITION_KEY_MAX_CHARS, b"", None),
        (seq[-1], 1, "u2", b"\xff\xfe\x00", None),
    ]
    assert len(got) == len(expected)
    for name, got_one, want in zip([*PLAIN, "aggregate", "aggregate"], got, expected, strict=True):
        assert got_one == want, name


def test_an_aggregate_of_no_user_records_is_read_past_once(
    spark: Any,
    kinesis_local: Any,
    kinesis_local_endpoint: str,
    stream_name: str,
    tmp_path: Path,
) -> None:
    # Valid magic, MD5 and protobuf (a key table), but no records: it yields no rows. The
    # read must still move past it, or every later probe finds it again and plans a batch.
    empty_aggregate = framed(b"\x0a\x01k")
    create_stream(kinesis_local, stream_name, 1)
    put(kinesis_local, stream_name, [("before", b"1"), ("outer", empty_aggregate)])
    sink = BatchCollector()
    options = source_options(kinesis_local_endpoint, stream_name, str(tmp_path / "store"))
    query = start_query(spark, options, str(tmp_path / "ckpt"), sink, trigger="100 milliseconds")
    try:
        wait_for(lambda: len(sink.rows()) == 1, 120, "the plain record")
        batches = len(sink.batches)
        time.sleep(2)  # about 20 triggers: none may plan a batch
        assert len(sink.batches) == batches
        put(kinesis_local, stream_name, [("after", b"2")])
        query.processAllAvailable()
    finally:
        query.stop()
    assert [bytes(r["data"]) for r in sink.rows()] == [b"1", b"2"]
