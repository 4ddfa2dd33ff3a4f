"""What a long-running process keeps stays bounded: boto3 clients per worker and the driver's
confirmed positions per stream (tests/source/test_probe_iterators.py: probe iterators)."""

from __future__ import annotations

from kinesis_source import limits
from kinesis_source.aws import clients
from kinesis_source.options import ConnectionOptions
from kinesis_source.source.driver.loss_check import DataLossCheck
from kinesis_source.source.positions import Position


def test_the_client_cache_keeps_the_most_recently_used_up_to_its_bound() -> None:
    opts = ConnectionOptions(
        stream_name="s", region="us-east-1", aws_access_key_id="a", aws_secret_key="b"
    )

    def kinesis_at(i: int) -> object:
        return clients.client("kinesis", opts, endpoint_url=f"http://127.0.0.1:{1000 + i}")

    first = kinesis_at(0)
    for i in range(1, limits.CLIENT_CACHE_MAX + 10):
        kinesis_at(i)
        assert kinesis_at(0) is first  # used again and again: kept
    assert len(clients._CLIENTS) <= limits.CLIENT_CACHE_MAX
    assert kinesis_at(1) is not kinesis_at(2)
    newest = kinesis_at(limits.CLIENT_CACHE_MAX + 8)
    assert kinesis_at(limits.CLIENT_CACHE_MAX + 8) is newest


def test_confirmed_positions_of_shards_no_longer_tracked_are_forgotten() -> None:
    check = DataLossCheck("s", retention_ms=24 * 3600 * 1000, fail_on_data_loss=True)
    for sid in ("parent", "child-a", "child-b"):
        check.confirm(sid, 1_000)
    # The parent finished and its children are tracked: the planner no longer holds it.
    tracked = {"child-a": Position.after("5"), "child-b": Position.trim_horizon()}
    check.check(tracked, None, now_ms=2_000)
    assert set(check.confirmed_ms) == {"child-a", "child-b"}
