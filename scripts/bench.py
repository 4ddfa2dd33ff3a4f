"""Benchmarks of the source, printed in one run on one machine (issue 4, part 7).

    python scripts/bench.py            # every section
    python scripts/bench.py --only a,b # some sections
    python scripts/bench.py --repeat 9

Sections:
  (a) decode throughput per core, plain 100-byte records: our fast decoder (raw JSON body
      to an Arrow batch) vs botocore's parser alone (body to dicts). Target >= 6x.
  (b) KPL user records per core: ``deaggregation.deaggregate_into`` (aggregate bytes to
      Arrow columns) vs aws_kinesis_agg's deaggregator. Target >= 2x.
  (c) (d) (e) end-to-end sections: not written yet; see ``SECTIONS`` below.

Everything runs in this one process on one core; each figure is the best of ``--repeat``
runs over the same data, timed in process CPU seconds (the median is printed too), after
one warm-up run.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import statistics
import sys
import time
from binascii import a2b_base64
from collections.abc import Callable
from typing import Any

import botocore.session
import pyarrow as pa
from aws_kinesis_agg.aggregator import RecordAggregator
from aws_kinesis_agg.deaggregator import deaggregate_records, iter_deaggregate_records
from botocore.parsers import create_parser

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from kinesis_source.deaggregation import PROTOBUF_BACKEND, deaggregate_into
from kinesis_source.fast_decode import decode_records
from kinesis_source.records_page import page_from_response

# GetRecords returns at most 10,000 records per call (limits.GET_RECORDS_MAX_RECORDS).
PAGE_RECORDS = 10_000
RECORD_BYTES = 100
# The KPL's default AggregationMaxSize is 51,200 bytes.
KPL_AGGREGATE_BYTES = 51_200
KPL_USER_RECORDS = 40_000
FIRST_SEQUENCE = 49_590_338_271_490_256_608_559_692_538_361_571_095_921_575_989_136_588_898
FIRST_ARRIVAL_S = 1_795_000_000.0


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, float]:
    """(best, median) CPU seconds of ``fn`` over ``repeat`` runs after one warm-up.

    CPU time of this process, not wall time: "per core" is what a core can do, and other
    load on the machine then stretches the wall clock without skewing the ratios.
    """
    fn()
    times = []
    for _ in range(repeat):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return min(times), statistics.median(times)


def report(label: str, items: int, best: float, median: float) -> float:
    rate = items / best
    print(f"  {label:<58} {rate:>12,.0f} /s  (median {items / median:,.0f} /s)")
    return rate


def get_records_body(rng: random.Random, blobs: list[bytes]) -> bytes:
    """A GetRecords response body shaped like Kinesis' own (ms-precision timestamps)."""
    records = [
        {
            "SequenceNumber": str(FIRST_SEQUENCE + 2**40 * i),
            "ApproximateArrivalTimestamp": round(FIRST_ARRIVAL_S + i * 0.0007, 3),
            "Data": base64.b64encode(blob).decode(),
            "PartitionKey": f"device-{rng.randrange(10_000):05d}",
        }
        for i, blob in enumerate(blobs)
    ]
    return json.dumps(
        {"Records": records, "NextShardIterator": "AAAA" * 64, "MillisBehindLatest": 0}
    ).encode()


def section_a(repeat: int) -> None:
    print(f"(a) GetRecords decode, {PAGE_RECORDS:,} plain {RECORD_BYTES}-byte records, per core")
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
        "fast path: orjson + base64 -> Arrow batch (decoder=fast)",
        PAGE_RECORDS,
        *timed(fast_to_arrow, repeat),
    )
    print(f"  ratio fast / botocore parser: {ours / theirs:.1f}x (target >= 6x)")
    print(f"  ratio fast / reference path:  {ours / reference:.1f}x")


def kpl_aggregates(rng: random.Random) -> list[bytes]:
    """KPL aggregates of 100-byte user records with random keys, as the KPL packs them."""
    aggregator = RecordAggregator(max_size=KPL_AGGREGATE_BYTES)
    out = []
    for _ in range(KPL_USER_RECORDS):
        full = aggregator.add_user_record(
            f"user-{rng.getrandbits(48):012x}", rng.randbytes(RECORD_BYTES)
        )
        if full is not None:
            out.append(bytes(full.get_contents()[2]))
    last = aggregator.clear_and_get()
    if last is not None:
        out.append(bytes(last.get_contents()[2]))
    return out


def section_b(repeat: int) -> None:
    print(
        f"(b) KPL deaggregation, {KPL_USER_RECORDS:,} user records of {RECORD_BYTES} bytes "
        f"in {KPL_AGGREGATE_BYTES:,}-byte aggregates, per core (protobuf: {PROTOBUF_BACKEND})"
    )
    aggregates = kpl_aggregates(random.Random(2))
    boto3_shaped = [
        {
            "SequenceNumber": str(FIRST_SEQUENCE + i),
            "ApproximateArrivalTimestamp": FIRST_ARRIVAL_S,
            "Data": blob,
            "PartitionKey": "aggregate",
        }
        for i, blob in enumerate(aggregates)
    ]
    lambda_shaped = [
        {
            "kinesis": {
                "kinesisSchemaVersion": "1.0",
                "sequenceNumber": r["SequenceNumber"],
                "partitionKey": r["PartitionKey"],
                "approximateArrivalTimestamp": r["ApproximateArrivalTimestamp"],
                "data": base64.b64encode(r["Data"]).decode(),
            }
        }
        for r in boto3_shaped
    ]
    encoded = [r["kinesis"]["data"] for r in lambda_shaped]

    def aws_iterator() -> list[Any]:
        return list(iter_deaggregate_records(boto3_shaped, data_format="Boto3"))

    def aws_lambda() -> list[Any]:
        return deaggregate_records(lambda_shaped)

    def ours(blobs: list[bytes]) -> list[pa.Array]:
        data: list[bytes] = []
        keys: list[str] = []
        hash_keys: list[str | None] = []
        for blob in blobs:
            deaggregate_into(blob, data, keys, hash_keys)
        return [pa.array(data, pa.binary()), pa.array(keys), pa.array(hash_keys, pa.string())]

    def ours_bytes() -> list[pa.Array]:
        return ours(aggregates)

    def ours_base64() -> list[pa.Array]:
        return ours([a2b_base64(text) for text in encoded])

    assert len(aws_iterator()) == len(ours_bytes()[0]) == KPL_USER_RECORDS
    n = KPL_USER_RECORDS
    it_rate = report(
        "aws_kinesis_agg iter_deaggregate_records (bytes)", n, *timed(aws_iterator, repeat)
    )
    lam_rate = report("aws_kinesis_agg deaggregate_records (base64)", n, *timed(aws_lambda, repeat))
    our_rate = report("ours: deaggregate_into -> Arrow (bytes)", n, *timed(ours_bytes, repeat))
    our_b64 = report("ours: base64 + deaggregate_into -> Arrow", n, *timed(ours_base64, repeat))
    print(f"  ratio ours / aws iterator (bytes in):  {our_rate / it_rate:.1f}x (target >= 2x)")
    print(f"  ratio ours / aws deaggregate_records (base64 in): {our_b64 / lam_rate:.1f}x")


def section_not_yet(name: str) -> Callable[[int], None]:
    def run(repeat: int) -> None:
        print(f"({name}) not implemented yet")

    return run


# Sections by letter, in print order. (c), (d) and (e) are the end-to-end figures of
# issue 4 part 7: replace their placeholders with functions taking ``repeat`` (the number
# of timed runs) that print their figures like ``section_a``; ``--only`` picks them up.
SECTIONS: dict[str, Callable[[int], None]] = {
    "a": section_a,
    "b": section_b,
    "c": section_not_yet("c"),
    "d": section_not_yet("d"),
    "e": section_not_yet("e"),
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(SECTIONS), help="sections, e.g. a,b")
    parser.add_argument("--repeat", type=int, default=7, help="timed runs per figure")
    args = parser.parse_args(argv)
    chosen = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = [s for s in chosen if s not in SECTIONS]
    if unknown:
        parser.error(f"unknown sections {unknown}; valid: {', '.join(SECTIONS)}")
    print(f"python {sys.version.split()[0]}, pid {os.getpid()}, one core per figure")
    for name in chosen:
        SECTIONS[name](args.repeat)


if __name__ == "__main__":
    main()
