"""The sink's waits before it sends rejected entries again, and when a lane gives up
(``put_records.RejectionBackoff``): pure, no Kinesis."""

from __future__ import annotations

from kinesis_source.aws.retry import RetryPolicy
from kinesis_source.sink.put_records import RejectionBackoff, WriteLog

POLICY = RetryPolicy(max_retries=10, base_delay_ms=200, max_delay_ms=5_000)


def most(low: float, high: float) -> float:
    """The longest wait full jitter may draw."""
    return high


def test_throttled_waits_stay_short_and_the_lane_gives_up_after_the_retries_time() -> None:
    backoff = RejectionBackoff(POLICY)
    # 200 + 400 + 800 + 1,600 + 3,200 + 5 x 5,000 ms: what 10 retries may wait at most.
    assert backoff.budget_ms == 31_200
    waits = []
    while True:
        backoff.record(wrote=False, throttled_only=True)
        if backoff.gave_up() is not None:
            break
        waits.append(backoff.wait_ms(most))
    assert set(waits) == {200}  # not growing: the quota frees within a second
    assert sum(waits) == 31_200
    assert backoff.gave_up() == (
        "over the write quota after 31.2 s without a record written, as long as 10 retries "
        "may wait (maxRetries=10)"
    )


def test_a_call_that_wrote_ends_the_stall() -> None:
    backoff = RejectionBackoff(POLICY)
    for _ in range(150):
        backoff.record(wrote=False, throttled_only=True)
        backoff.wait_ms(most)
    backoff.record(wrote=True, throttled_only=True)
    assert backoff.gave_up() is None
    assert backoff.wait_ms(most) == 200
    for _ in range(20):
        backoff.record(wrote=False, throttled_only=False)
        backoff.wait_ms(most)
        backoff.record(wrote=True, throttled_only=False)
    assert backoff.gave_up() is None


def test_other_refusals_back_off_like_a_failing_call_and_give_up_after_max_retries() -> None:
    backoff = RejectionBackoff(POLICY)
    waits = []
    for _ in range(10):
        backoff.record(wrote=False, throttled_only=False)
        assert backoff.gave_up() is None
        waits.append(backoff.wait_ms(most))
    assert waits == [200, 400, 800, 1_600, 3_200, 5_000, 5_000, 5_000, 5_000, 5_000]
    backoff.record(wrote=False, throttled_only=False)
    assert backoff.gave_up() == "after 10 retries (maxRetries=10)"


def test_max_retries_zero_gives_up_at_the_first_refusal() -> None:
    backoff = RejectionBackoff(RetryPolicy(max_retries=0, base_delay_ms=200, max_delay_ms=5_000))
    backoff.record(wrote=True, throttled_only=True)
    assert backoff.gave_up() == "after 0 retries (maxRetries=0)"


def test_a_throttled_lane_waits_no_longer_than_its_own_write_takes_to_turn_a_second_old() -> None:
    writes = WriteLog()
    writes.record("shard-0", 1_000)
    writes.record("shard-0", 1_300)
    writes.record("shard-1", 1_100)
    # refused on shard 0 at 1,850 ms: the write at 1,000 frees its room at 2,000
    assert writes.frees_in_ms(["shard-0", "shard-0"], 1_850) == 150
    # refused on both: room frees first on shard 1 (2,100), once shard 0's first has gone
    assert writes.frees_in_ms(["shard-0", "shard-1"], 2_050) == 50
    # a shard not written to in the last second, or a plain record's (no shard): unknown
    assert writes.frees_in_ms(["shard-0"], 2_400) is None
    assert writes.frees_in_ms(["shard-2"], 1_850) is None
    assert writes.frees_in_ms(["shard-0", None], 1_850) is None

    backoff = RejectionBackoff(POLICY)
    backoff.record(wrote=False, throttled_only=True)
    assert backoff.wait_ms(most, frees_in_ms=150) == 150
    assert backoff.wait_ms(most, frees_in_ms=900) == 200  # never longer than the draw
    assert backoff.wait_ms(most, frees_in_ms=-5) == 0
    assert backoff.wait_ms(most, frees_in_ms=None) == 200
    # other refusals back off as before, whatever the quota frees
    backoff.record(wrote=False, throttled_only=False)
    assert backoff.wait_ms(most, frees_in_ms=10) == 200
