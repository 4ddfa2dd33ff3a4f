"""An offset logged before the package moved into folders is read after it.

``tests/data/offset_compat`` holds a Spark checkpoint and a file checkpoint store written by
the flat-layout code (commit 21b3b58), as its README tells. Its two Trigger.Once batches
left shard 0 after user record 4/1 of an aggregate and then after record 4, and shard 1
after record 2 (``limit`` 0 in the last offset: it had nothing new). Moto numbers each
shard's records 1, 2, ... so the same puts on a new stream of the same name give the same
sequence numbers, and a restart from the kept checkpoint must read exactly what came after.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from tests.helpers import (
    BatchCollector,
    aggregate,
    assert_shard_order,
    create_stream,
    record_keys,
    source_options,
    start_query,
)

DATA = Path(__file__).resolve().parents[1] / "data" / "offset_compat"
STREAM = "offset-compat"  # the stream the kept offsets name
SHARD0, SHARD1 = "0", str(2**127)  # explicit hash keys of the first and the second shard
# What the pre-move run put, in this order (its README has the script).
KEPT = [
    ("p0", b"p0", SHARD0),
    ("p1", b"p1", SHARD0),
    ("q0", b"q0", SHARD1),
    ("p2", b"p2", SHARD0),
    ("agg", aggregate([("a0", b"a0"), ("a1", b"a1"), ("a2", b"a2")]), SHARD0),
    ("q1", b"q1", SHARD1),
    ("p3", b"p3", SHARD0),
]
NEW = [("p4", b"p4", SHARD0), ("q2", b"q2", SHARD1)]


def test_a_pre_move_checkpoint_resumes_right_after_its_logged_positions(
    spark: Any, kinesis: Any, moto_endpoint: str, tmp_path: Path
) -> None:
    shutil.copytree(DATA, tmp_path, dirs_exist_ok=True)
    create_stream(kinesis, STREAM, 2)
    try:
        for key, data, hash_key in KEPT + NEW:
            kinesis.put_record(
                StreamName=STREAM, PartitionKey=key, Data=data, ExplicitHashKey=hash_key
            )
        options = source_options(
            moto_endpoint,
            STREAM,
            str(tmp_path / "store"),
            # The kept store entries were written in 2026; once they are older than the
            # stream's 24 h retention, the data-loss check would (rightly) stop the query.
            # The exact rows asserted below still show any misread position.
            failOnDataLoss="false",
        )
        sink = BatchCollector()
        query = start_query(
            spark, options, str(tmp_path / "checkpoint"), sink, trigger="availableNow"
        )
        assert query.awaitTermination(120), "the availableNow query did not finish"
        assert query.exception() is None
    finally:
        kinesis.delete_stream(StreamName=STREAM)
    rows = sink.rows()
    assert record_keys(rows) == [
        ("shardId-000000000000", "5", 0, b"p3"),
        ("shardId-000000000000", "6", 0, b"p4"),
        ("shardId-000000000001", "3", 0, b"q2"),
    ]
    assert_shard_order(rows)
    # Spark numbered the kept batches 0 and 1: the query went on from there.
    assert min(sink.batches) == 2
