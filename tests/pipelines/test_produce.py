"""scripts/produce.py: batching, aggregation, partial-failure retry, the CLI (no Spark)."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from helpers import REGION, create_stream

from kinesis_source import limits
from kinesis_source.records.deaggregation import deaggregate
from scripts import produce as producer
from scripts.produce import Entry, ProducerError, ProduceStats, Written

THROTTLED = "ProvisionedThroughputExceededException"


def new_client(endpoint: str) -> Any:
    """A client of its own, so event hooks do not leak into the session's client."""
    return boto3.client("kinesis", region_name=REGION, endpoint_url=endpoint)


def count_calls(client: Any, operation: str) -> Counter[str]:
    calls: Counter[str] = Counter()

    def count(**_: Any) -> None:
        calls[operation] += 1

    client.meta.events.register(f"before-call.kinesis.{operation}", count)
    return calls


def fail_entries(client: Any, *, calls: int, every: int) -> Counter[str]:
    """Make PutRecords fail every ``every``-th entry of its first ``calls`` calls.

    The failed entries are taken out of the request before it is sent, so the emulator
    never stores them, and put back into the response with an ErrorCode, as Kinesis does
    on a partial failure: only a retry can make those records land.
    """
    state: Counter[str] = Counter()

    def drop(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        state["calls"] += 1
        if state["calls"] > calls:
            return
        records = params["Records"]
        dropped = [i for i in range(len(records)) if i % every == 0]
        context["dropped"] = (dropped, len(records))
        params["Records"] = [r for i, r in enumerate(records) if i not in set(dropped)]
        state["dropped"] += len(dropped)

    def restore(parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        if "dropped" not in context:
            return
        dropped, total = context.pop("dropped")
        sent = iter(parsed["Records"])
        failure = {"ErrorCode": THROTTLED, "ErrorMessage": "Rate exceeded for shard"}
        parsed["Records"] = [dict(failure) if i in dropped else next(sent) for i in range(total)]
        parsed["FailedRecordCount"] = len(dropped)

    client.meta.events.register("provide-client-params.kinesis.PutRecords", drop)
    client.meta.events.register("after-call.kinesis.PutRecords", restore)
    return state


def throttle_every_entry(client: Any) -> None:
    """Answer every PutRecords, without sending it, with all entries failed."""

    def answer(params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        count = len(json.loads(params["body"])["Records"])
        failure = {"ErrorCode": THROTTLED, "ErrorMessage": "Rate exceeded for shard"}
        parsed = {"FailedRecordCount": count, "Records": [dict(failure)] * count}
        return AWSResponse(params["url"], 200, {}, None), parsed

    client.meta.events.register("before-call.kinesis.PutRecords", answer)


def read_all(client: Any, stream: str) -> list[dict[str, Any]]:
    """Every Kinesis record of every shard, via GetRecords from TRIM_HORIZON."""
    out = []
    for shard in client.list_shards(StreamName=stream)["Shards"]:
        it = client.get_shard_iterator(
            StreamName=stream, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while it:
            resp = client.get_records(ShardIterator=it, Limit=1000)
            out.extend({**r, "ShardId": shard["ShardId"]} for r in resp["Records"])
            if not resp["Records"] and resp.get("MillisBehindLatest", 0) == 0:
                break
            it = resp.get("NextShardIterator")
    return out


def entry(size: int, key: str = "k") -> Entry:
    return Entry(key, b"x" * size, (0,))


def test_batches_hold_at_most_500_records() -> None:
    sizes = [len(b) for b in producer.batches([entry(10) for _ in range(1201)])]
    assert sizes == [500, 500, 201]
    assert limits.PUT_RECORDS_MAX_RECORDS == 500


def test_batches_hold_at_most_5_mib() -> None:
    big = limits.RECORD_MAX_BYTES - 1  # with the 1-character key: exactly 1 MiB
    batches = list(producer.batches([entry(big) for _ in range(11)]))
    assert [len(b) for b in batches] == [5, 5, 1]
    assert all(sum(e.size_bytes for e in b) <= limits.PUT_RECORDS_MAX_BYTES for b in batches)


def test_batches_keep_entry_order() -> None:
    entries = [entry(random.Random(i).randint(1, 50_000), key=str(i)) for i in range(700)]
    flat = [e.partition_key for b in producer.batches(entries) for e in b]
    assert flat == [str(i) for i in range(700)]


def test_record_over_1_mib_is_rejected() -> None:
    with pytest.raises(ProducerError, match="1048576"):
        producer.check_record("k", b"x" * limits.RECORD_MAX_BYTES)
    with pytest.raises(ProducerError, match="1048576"):
        list(producer.batches([entry(limits.RECORD_MAX_BYTES)]))


def test_partition_key_over_256_characters_is_rejected() -> None:
    producer.check_record("k" * limits.PARTITION_KEY_MAX_CHARS, b"x")
    with pytest.raises(ProducerError, match=r"1\.\.256"):
        producer.check_record("k" * (limits.PARTITION_KEY_MAX_CHARS + 1), b"x")
    with pytest.raises(ProducerError, match=r"1\.\.256"):
        producer.check_record("", b"x")


def test_aggregates_fit_a_record_and_deaggregate_to_the_user_records() -> None:
    records = [Written(f"key-{i}", bytes([65 + i % 26]) * 2000) for i in range(1200)]
    entries = producer.aggregate_entries(records, first=0)
    assert len(entries) > 1  # 2.4 MB of user records cannot fit one aggregate
    assert all(e.size_bytes <= limits.RECORD_MAX_BYTES for e in entries)
    unpacked = []
    for e in entries:
        users = deaggregate(e.data)
        assert users is not None
        assert [records[i].data for i in e.members] == [u.data for u in users]
        unpacked.extend((u.partition_key, u.data) for u in users)
    assert unpacked == [(r.partition_key, r.data) for r in records]


def test_backoff_is_capped_and_jittered() -> None:
    rng = random.Random(1)
    delays = [producer.backoff_seconds(n, rng) for n in range(1, 30)]
    assert all(0 <= d <= producer.BACKOFF_MAX_SECONDS for d in delays)
    assert len(set(delays)) == len(delays)


def test_produce_sends_500_records_per_put_records_call(moto_endpoint: str) -> None:
    client = new_client(moto_endpoint)
    stream = "produce-calls"
    create_stream(client, stream, 2)
    calls = count_calls(client, "PutRecords")
    stats = producer.produce(client, stream, records_per_sec=1200, duration_s=1, seed=3)
    assert calls["PutRecords"] == stats.put_calls == 3
    assert stats.user_records == stats.kinesis_records == 1200
    assert len(read_all(client, stream)) == 1200


def test_partial_failure_retries_only_failed_entries_and_each_lands_once(
    moto_endpoint: str,
) -> None:
    client = new_client(moto_endpoint)
    stream = "produce-partial"
    create_stream(client, stream, 2)
    faults = fail_entries(client, calls=2, every=4)
    delays: list[float] = []
    stats = producer.produce(
        client, stream, records_per_sec=300, duration_s=1, seed=5, sleep=delays.append
    )
    assert faults["dropped"] > 0
    assert stats.retried_entries == faults["dropped"]
    assert stats.error_codes[THROTTLED] == faults["dropped"]
    assert len(delays) == 2  # one backoff per failed call
    landed = read_all(client, stream)
    assert Counter((r["PartitionKey"], r["Data"]) for r in landed) == Counter(
        (w.partition_key, w.data) for w in stats.records
    )
    assert {(r["ShardId"], r["SequenceNumber"]) for r in landed} == {
        (w.shard_id, w.sequence_number) for w in stats.records
    }


def test_retries_that_run_out_raise_with_the_error_code(moto_endpoint: str) -> None:
    client = new_client(moto_endpoint)
    stream = "produce-exhausted"
    create_stream(client, stream, 1)
    throttle_every_entry(client)
    with pytest.raises(ProducerError, match=f"after 3 attempts.*{THROTTLED}"):
        producer.put_batch(
            client,
            stream,
            [entry(10)],
            ProduceStats(),
            max_attempts=3,
            sleep=lambda _: None,
        )


def test_cli_writes_to_an_embedded_stream_and_logs_what_it_wrote(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log_path = tmp_path / "written.jsonl"
    argv = ["--records-per-sec", "40", "--duration", "1", "--aggregate", "--seed", "7"]
    assert producer.main([*argv, "--log-records", str(log_path), "--no-progress"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["userRecords"] == 40
    assert summary["kinesisRecords"] < 40  # aggregated
    logged = [json.loads(line) for line in log_path.read_text().splitlines()]
    assert len(logged) == 40
    assert all(r["sequenceNumber"] and r["shardId"] for r in logged)
    assert sorted(r["subSequenceNumber"] for r in logged)[-1] > 0


def test_produce_keeps_the_rate_one_tick_of_records_per_second(moto_endpoint: str) -> None:
    client = new_client(moto_endpoint)
    stream = "produce-rate"
    create_stream(client, stream, 1)
    waits: list[float] = []
    stats = producer.produce(
        client, stream, records_per_sec=20, duration_s=2.5, seed=1, sleep=waits.append
    )
    assert stats.user_records == 50
    assert stats.put_calls == 3  # 20 + 20 + 10: one call per tick
    # Waits run to the next tick from the start; this sleep returns at once, so they grow.
    assert len(waits) == 2
    assert all(0 < w <= (i + 1) * producer.TICK_SECONDS for i, w in enumerate(waits))
