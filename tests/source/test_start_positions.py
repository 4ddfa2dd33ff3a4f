"""Starting at given positions: per-shard JSON (on moto), and where a KCL application
stopped, from its lease table in DynamoDB on moto over a kinesis-mock stream that holds KPL
aggregates, was resharded, and whose checkpoint falls inside an aggregate."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3

from kinesis_source.source.options import parse_options
from kinesis_source.source.stream_reader import KinesisStreamReader
from tests.conftest import REGION
from tests.emulators.kinesis_server import KinesisServer
from tests.helpers import (
    BatchCollector,
    aggregate,
    assert_shard_order,
    create_stream,
    expected_keys,
    put,
    record_keys,
    run_until_idle,
    source_options,
    start_query,
)
from tests.source.test_reshard import open_shards, split_in_half
from tests.stores.test_kcl_lease_table import kcl_table, lease_item


def test_json_starts_one_shard_after_a_sequence_number_and_the_other_at_the_default(
    spark: Any,
    kinesis_server_client: Any,
    kinesis_server: KinesisServer,
    stream_name: str,
    tmp_path: Path,
) -> None:
    # On the Kinesis test server (56-digit sequence numbers; moto runs a JSON start below).
    kinesis = kinesis_server_client
    first, second = create_stream(kinesis, stream_name, 2)
    sent = {first: [], second: []}  # type: dict[str, list[dict[str, str]]]
    for i in range(6):
        for sid, hash_key in ((first, "1"), (second, str(2**128 - 2))):
            resp = kinesis.put_record(
                StreamName=stream_name,
                PartitionKey="k",
                ExplicitHashKey=hash_key,
                Data=f"{sid}-{i}".encode(),
            )
            assert resp["ShardId"] == sid
            sent[sid].append({"seq": resp["SequenceNumber"], "data": f"{sid}-{i}"})
    start = {
        stream_name: {
            first: {
                "iteratorType": "AFTER_SEQUENCE_NUMBER",
                "sequenceNumber": sent[first][2]["seq"],
            }
        }
    }
    options = source_options(
        kinesis_server.endpoint,
        stream_name,
        str(tmp_path / "store"),
        initialPosition=json.dumps(start),
        initialPositionDefault="trim_horizon",
    )
    sink = BatchCollector()
    run_until_idle(start_query(spark, options, str(tmp_path / "ckpt"), sink))
    got = sorted((r["shardId"], int(r["sequenceNumber"])) for r in sink.rows())
    expected = [(first, int(s["seq"])) for s in sent[first][3:]]
    expected += [(second, int(s["seq"])) for s in sent[second]]
    assert got == sorted(expected)


def test_a_checkpointed_query_restarts_although_a_shard_its_json_names_is_gone(
    spark: Any, kinesis: Any, moto_endpoint: str, stream_name: str, tmp_path: Path
) -> None:
    """initialPosition is read for a new query only: a restart goes on from its offsets even
    when the stream no longer has a shard the JSON names (it aged out)."""
    (shard,) = create_stream(kinesis, stream_name, 1)
    first = put(kinesis, stream_name, [("k", f"a{i}".encode()) for i in range(3)])

    def run(named: str, seq: str) -> BatchCollector:
        start = {
            stream_name: {named: {"iteratorType": "AT_SEQUENCE_NUMBER", "sequenceNumber": seq}}
        }
        options = source_options(
            moto_endpoint, stream_name, str(tmp_path / "store"), initialPosition=json.dumps(start)
        )
        sink = BatchCollector()
        run_until_idle(start_query(spark, options, str(tmp_path / "ckpt"), sink))
        return sink

    assert record_keys(run(shard, first[1]["sequenceNumber"]).rows()) == expected_keys(first[1:])
    second = put(kinesis, stream_name, [("k", f"b{i}".encode()) for i in range(3)])
    # The same checkpoint, its JSON naming a shard the stream does not have (any more).
    rows = run("shardId-000000000009", first[1]["sequenceNumber"]).rows()
    assert record_keys(rows) == expected_keys(second)


def test_a_kcl_lease_table_starts_each_shard_right_after_its_checkpoint(
    spark: Any,
    kinesis_local: Any,
    kinesis_local_endpoint: str,
    moto_endpoint: str,
    stream_name: str,
    tmp_path: Path,
) -> None:
    client = kinesis_local
    low, high = create_stream(client, stream_name, 2)

    def send(hash_key: int, data: bytes, key: str = "k") -> str:
        resp = client.put_record(
            StreamName=stream_name, PartitionKey=key, ExplicitHashKey=str(hash_key), Data=data
        )
        return str(resp["SequenceNumber"])

    # The low shard: two KPL aggregates; the application stopped inside the first.
    agg1 = send(1, aggregate([("a", b"a0"), ("a", b"a1"), ("a", b"a2")]))
    send(1, aggregate([("b", b"b0"), ("b", b"b1")]))
    # The high shard: read to its end, then split; one child checkpointed, one unknown.
    send(2**128 - 3, b"h0")
    split_in_half(client, stream_name, open_shards(client, stream_name)[1])
    kids = sorted(s["ShardId"] for s in open_shards(client, stream_name) if s["ShardId"] != low)
    kid_low, kid_high = kids
    kid_first = send(2**127 + 9, b"c0")
    send(2**127 + 9, b"c1")
    send(2**128 - 3, b"d0")
    send(2**128 - 3, b"d1")

    dynamodb = boto3.client("dynamodb", region_name=REGION, endpoint_url=moto_endpoint)
    table = kcl_table(
        dynamodb,
        [
            lease_item(low, agg1, 1),
            lease_item(high, "SHARD_END", 0),
            lease_item(kid_low, kid_first, 0, parentShardId={"SS": [high]}),
        ],
    )
    before = dynamodb.scan(TableName=table)["Items"]
    options = source_options(
        kinesis_local_endpoint,
        stream_name,
        str(tmp_path / "store"),
        initialPosition="kcl",
        kclLeaseTable=table,
        checkpointEndpointUrl=moto_endpoint,
    )
    sink = BatchCollector()
    run_until_idle(start_query(spark, options, str(tmp_path / "ckpt"), sink))

    got = sorted((r["shardId"], bytes(r["data"])) for r in sink.rows())
    # The next user record after (agg1, 1) is a2; the unknown child of a finished shard is
    # read from its start although initialPositionDefault is latest.
    assert got == sorted(
        [
            (low, b"a2"),
            (low, b"b0"),
            (low, b"b1"),
            (kid_low, b"c1"),
            (kid_high, b"d0"),
            (kid_high, b"d1"),
        ]
    )
    assert dynamodb.scan(TableName=table)["Items"] == before, "the lease table was written"


def test_kcl_placeholder_leases_of_children_let_the_parent_finish_its_tail_first(
    spark: Any,
    kinesis_local: Any,
    kinesis_local_endpoint: str,
    moto_endpoint: str,
    stream_name: str,
    tmp_path: Path,
) -> None:
    """The KCL, still reading parent P, has synced leases for P's children at TRIM_HORIZON
    (items in the KCL's own shape, parentShardId a string set): P resumes after its
    checkpoint, the children follow it, every record once."""
    client = kinesis_local
    (parent,) = create_stream(client, stream_name, 1)
    sent = put(client, stream_name, [(f"k{i}", f"p{i}".encode()) for i in range(6)])
    split_in_half(client, stream_name, open_shards(client, stream_name)[0])
    kids = sorted(s["ShardId"] for s in open_shards(client, stream_name))
    later = put(client, stream_name, [(f"k{i}", f"c{i}".encode()) for i in range(6)])
    assert {p["shardId"] for p in later} == set(kids)

    dynamodb = boto3.client("dynamodb", region_name=REGION, endpoint_url=moto_endpoint)
    table = kcl_table(
        dynamodb,
        [lease_item(parent, sent[2]["sequenceNumber"], 0)]
        + [lease_item(kid, "TRIM_HORIZON", 0, parentShardId={"SS": [parent]}) for kid in kids],
    )
    options = source_options(
        kinesis_local_endpoint,
        stream_name,
        str(tmp_path / "store"),
        initialPosition="kcl",
        kclLeaseTable=table,
        checkpointEndpointUrl=moto_endpoint,
    )
    sink = BatchCollector()
    run_until_idle(start_query(spark, options, str(tmp_path / "ckpt"), sink))

    assert record_keys(sink.rows()) == expected_keys(sent[3:] + later)
    assert_shard_order(sink.rows())


def test_an_offset_of_the_single_stream_reader_goes_on_where_it_was(
    kinesis: Any, moto_endpoint: str, stream_name: str, tmp_path: Path
) -> None:
    """A checkpoint taken before several streams: Spark hands its last offset (version 1)
    to the new reader, which plans and reads the next batch from it, in version 2."""
    (shard,) = create_stream(kinesis, stream_name, 1)
    sent = put(kinesis, stream_name, [("k", f"r{i}".encode()) for i in range(5)])
    v1 = {
        "v": 1,
        "batch": 4,
        "stream": stream_name,
        "query": "0123abcd",
        "sinceMs": None,
        "shards": {shard: {"at": f"AFTER_SEQUENCE_NUMBER({sent[1]['sequenceNumber']})"}},
    }
    options = source_options(moto_endpoint, stream_name, str(tmp_path / "store"))
    reader = KinesisStreamReader(parse_options({k.lower(): v for k, v in options.items()}))
    end = reader.latestOffset(v1, reader.getDefaultReadLimit())
    assert (end["v"], end["batch"], end["query"]) == (2, 5, "0123abcd")
    assert end["streams"][stream_name]["shards"][shard]["at"] == v1["shards"][shard]["at"]
    rows = [
        row
        for partition in reader.partitions(v1, end)
        for batch in reader.read(partition)
        for row in batch.to_pylist()
    ]
    assert [bytes(r["data"]) for r in rows] == [b"r2", b"r3", b"r4"]
    assert {r["streamName"] for r in rows} == {stream_name}
