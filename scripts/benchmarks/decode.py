"""(a) GetRecords decode throughput per core: our fast decoder (raw JSON body to an Arrow
batch) vs botocore's parser alone (body to dicts)."""

from __future__ import annotations

import random
from typing import Any

import botocore.session
import pyarrow as pa
from botocore.parsers import create_parser

from kinesis_source.records import fast_decode
from kinesis_source.records.fast_decode import decode_records
from kinesis_source.records.records_page import page_from_response

from .common import PAGE_RECORDS, RECORD_BYTES, figure, get_records_body, report, timed

TARGET = 20  # x botocore's parser


def run(repeat: int) -> None:
    print(f"(a) GetRecords decode, {PAGE_RECORDS:,} plain {RECORD_BYTES}-byte records, per core")
    # Without msgspec the fast decoder runs its pure-Python path (json + a2b_base64).
    json_path = "msgspec" if fast_decode.msgspec is not None else "json module (no msgspec!)"
    rng = random.Random(1)
    body = get_records_body(rng, [rng.randbytes(RECORD_BYTES) for _ in range(PAGE_RECORDS)])
    model = botocore.session.get_session().get_service_model("kinesis")
    shape = model.operation_model("GetRecords").output_shape
    parser = create_parser("json")

    def botocore_parse() -> Any:
        return parser.parse({"body": body, "headers": {}, "status_code": 200}, shape)

    def reference_to_arrow() -> pa.RecordBatch:
        page = page_from_response(botocore_parse(), deaggregate_kpl=True)
        return page.to_batch(0, page.unit_count, "stream", "shardId-000000000000")

    def fast_to_arrow() -> pa.RecordBatch:
        page = decode_records(body, deaggregate_kpl=True)
        return page.to_batch(0, page.unit_count, "stream", "shardId-000000000000")

    assert fast_to_arrow().equals(reference_to_arrow())
    theirs = report("botocore parser (body -> dicts)", PAGE_RECORDS, *timed(botocore_parse, repeat))
    reference = report(
        "reference path: botocore + page + Arrow (decoder=boto3)",
        PAGE_RECORDS,
        *timed(reference_to_arrow, repeat),
    )
    ours = report(
        f"fast path: {json_path} -> Arrow batch (decoder=fast)",
        PAGE_RECORDS,
        *timed(fast_to_arrow, repeat),
    )
    print(f"  ratio fast / botocore parser: {ours / theirs:.1f}x (target >= {TARGET}x)")
    print(f"  ratio fast / reference path:  {ours / reference:.1f}x")
    figure(
        "a",
        "decode per core, fast decoder vs botocore's parser",
        f"{ours:,.0f} vs {theirs:,.0f} records/s: {ours / theirs:.1f}x ({json_path})",
        f">= {TARGET}x",
        ours / theirs >= TARGET,
    )
