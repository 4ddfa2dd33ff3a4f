"""KPL aggregates as the sink builds them: readable by aws_kinesis_agg and our deaggregator,
never over their size cap, one shard's records per aggregate. No server."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from aws_kinesis_agg.deaggregator import deaggregate_records

from kinesis_source.records.aggregation import AggregateBuilder
from kinesis_source.records.deaggregation import KPL_MAGIC
from kinesis_source.sink.batching import Entry
from kinesis_source.sink.shard_map import ShardMap, hash_key_of
from kinesis_source.sink.task import aggregate_entries

USERS = [
    ("k1", None, b"one"),
    ("k2", "12345", b""),
    ("k1", None, b"\xff\x00three"),
    ("€", "7", b"x" * 300),
]


def _lambda_record(data: bytes) -> dict[str, object]:
    return {
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "sequenceNumber": "1",
            "partitionKey": "outer",
            "approximateArrivalTimestamp": 0,
            "data": base64.b64encode(data),
        }
    }


def _users(entry: Entry) -> list[tuple[str, str | None, bytes]]:
    """(key, hash key, data) of each user record in ``entry``, read by aws_kinesis_agg."""
    out = []
    for user in deaggregate_records([_lambda_record(entry.data)]):
        k = user["kinesis"]
        data = base64.b64decode(k["data"])
        if k.get("aggregated"):
            out.append((k["partitionKey"], k["explicitHashKey"], data))
        else:
            out.append((entry.partition_key, entry.explicit_hash_key, data))
    return out


def test_an_aggregate_reads_back_with_aws_kinesis_agg() -> None:
    builder = AggregateBuilder(1024 * 1024)
    for key, hash_key, data in [u for u in USERS if u[1] is not None]:
        assert builder.add(key, hash_key, data)
    blob = builder.build()
    assert blob.startswith(KPL_MAGIC)
    assert blob[-16:] == hashlib.md5(blob[4:-16]).digest()
    users = deaggregate_records([_lambda_record(blob)])
    got = [
        (
            u["kinesis"]["partitionKey"],
            u["kinesis"]["explicitHashKey"],
            base64.b64decode(u["kinesis"]["data"]),
        )
        for u in users
    ]
    assert got == [u for u in USERS if u[1] is not None]
    assert [u["kinesis"]["subSequenceNumber"] for u in users] == [0, 1]


def test_the_size_count_is_exact_and_the_cap_holds() -> None:
    for cap in (60, 100, 333, 1000):
        builder = AggregateBuilder(cap)
        added = 0
        while builder.add(
            f"key-{added % 7}", str(added) if added % 2 else None, b"d" * (added % 13)
        ):
            added += 1
            assert builder.size() == len(builder.build()) + len(builder.partition_key.encode())
        assert 0 < builder.size() <= cap or added == 0
        assert builder.user_records() == [
            (f"key-{i % 7}", str(i) if i % 2 else None, b"d" * (i % 13)) for i in range(added)
        ]


def test_no_aggregate_mixes_records_of_two_shards() -> None:
    half = 2**127
    shard_map = ShardMap(
        [
            {
                "ShardId": "s0",
                "HashKeyRange": {"StartingHashKey": "0", "EndingHashKey": str(half - 1)},
                "SequenceNumberRange": {},
            },
            {
                "ShardId": "s1",
                "HashKeyRange": {"StartingHashKey": str(half), "EndingHashKey": str(2 * half - 1)},
                "SequenceNumberRange": {},
            },
            # closed parent: never a target
            {
                "ShardId": "old",
                "HashKeyRange": {"StartingHashKey": "0", "EndingHashKey": str(2 * half - 1)},
                "SequenceNumberRange": {"EndingSequenceNumber": "9"},
            },
        ]
    )
    records = [(b"%d" % i, f"key-{i}", None) for i in range(200)]
    records += [(b"low", "k", "5"), (b"high", "k", str(half + 5))]
    entries = aggregate_entries(records, shard_map, 2_000)
    seen = []
    for entry in entries:
        users = _users(entry)
        assert {shard_map.shard_for(hash_key_of(k, h)) for k, h, _ in users} == {entry.target_shard}
        assert entry.size <= 2_000
        assert entry.user_records == len(users)
        seen.extend((data, k, h) for k, h, data in users)
    assert sorted(seen, key=repr) == sorted(records, key=repr)
    assert max(e.user_records for e in entries) > 10
    assert {e.target_shard for e in entries} == {"s0", "s1"}


def test_records_with_and_without_hash_keys_read_back_as_written() -> None:
    everything = ShardMap(
        [
            {
                "ShardId": "s0",
                "HashKeyRange": {"StartingHashKey": "0", "EndingHashKey": str(2**128 - 1)},
            }
        ]
    )
    records = [(data, key, hash_key) for key, hash_key, data in USERS * 3]
    entries = aggregate_entries(records, everything, 1024 * 1024)
    got = [(data, k, h) for entry in entries for k, h, data in _users(entry)]
    assert got == records


NODE_DIR = Path(__file__).resolve().parent.parent / "node"


def test_aggregates_read_back_with_npm_aws_kinesis_agg() -> None:
    node = shutil.which("node")
    if node is None or not (NODE_DIR / "node_modules" / "aws-kinesis-agg").exists():
        pytest.skip("npm aws-kinesis-agg is not installed: run `bash scripts/test.sh`")
    everything = ShardMap(
        [
            {
                "ShardId": "s0",
                "HashKeyRange": {"StartingHashKey": "0", "EndingHashKey": str(2**128 - 1)},
            }
        ]
    )
    # Records with hash keys first, then those without: an aggregate never mixes the two.
    users = sorted(USERS * 40, key=lambda u: u[1] is None)
    records = [(data, key, hash_key) for key, hash_key, data in users]
    entries = aggregate_entries(records, everything, 4_000)
    assert len(entries) > 2
    payload = [
        {"partitionKey": e.partition_key, "data": base64.b64encode(e.data).decode()}
        for e in entries
    ]
    done = subprocess.run(
        [node, str(NODE_DIR / "deaggregate.js")],
        input=json.dumps(payload).encode(),
        capture_output=True,
        check=True,
        timeout=60,
    )
    found = json.loads(done.stdout)
    got = [(base64.b64decode(u["data"]), u["partitionKey"], u["explicitHashKey"]) for u in found]
    # Every entry here is an aggregate, so each user record carries its own keys.
    assert all(e.user_records > 1 for e in entries)
    assert got == records
