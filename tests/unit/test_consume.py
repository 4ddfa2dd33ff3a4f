"""The shard reader's page slicing (skip mark, stop mark, record cap) against the loop it
replaced, which decided unit by unit. Pure: no emulator, no Spark."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import pytest

from kinesis_source.records.records_page import RecordsPage
from kinesis_source.source.executor.shard_reader import _ShardRead
from kinesis_source.source.executor.stop_rules import passed
from kinesis_source.source.options import KinesisOptions
from kinesis_source.source.positions import Position
from kinesis_source.source.tasks import ShardTask
from tests.pages import BASE_SEQUENCE, make_page


@dataclass
class Outcome:
    rows: list[tuple[str, int]]
    position: Position
    records: int
    done: bool
    # Compared where a byte cap is set: only then does a read count its bytes.
    bytes: int = field(default=0, compare=False)
    last_taken: Position | None = field(default=None, compare=False)


def reference_consume(
    page: RecordsPage,
    outcome: Outcome,
    skip: tuple[int, int | None] | None,
    stop: Position | None,
    max_records: int | None,
    max_bytes: int | None = None,
) -> None:
    """The unit-by-unit loop ``_consume`` had before pages, on the same units; with a byte
    cap, a unit that would pass it ends the read before it, unless it is the read's first."""
    stop_mark = None if stop is None or stop.sequence is None else (int(stop.sequence), stop.sub)
    for index, seq in enumerate(page.sequence_numbers):
        seq_int = int(seq)
        if stop_mark is not None and seq_int > stop_mark[0]:
            outcome.done = True
            return
        first, last = page.unit_starts[index], page.unit_starts[index + 1]
        for unit in range(first, last):
            sub = unit - first
            if skip is not None and passed(seq_int, sub, skip):
                continue
            if stop_mark is not None and not passed(seq_int, sub, stop_mark):
                outcome.done = True
                return
            size = len(page.data[unit])
            if max_bytes is not None and outcome.records and outcome.bytes + size > max_bytes:
                # The read stands after the last unit it handed out (or the last page read
                # whole), not past the records of no units met since on this page: the
                # next batch reads past them.
                outcome.position = outcome.last_taken
                outcome.done = True
                return
            outcome.rows.append((seq, sub))
            outcome.records += 1
            outcome.bytes += size
            if max_bytes is not None and outcome.bytes >= max_bytes:
                outcome.position = Position.after(seq, None if unit == last - 1 else sub)
                outcome.done = True
                return
            outcome.position = Position.after(seq, None if unit == last - 1 else sub)
            outcome.last_taken = outcome.position
            if stop is not None and outcome.position == stop:
                outcome.done = True
                return
            if max_records is not None and outcome.records >= max_records:
                outcome.done = True
                return
        # The whole record is consumed, also one of no units or of units all skipped.
        outcome.position = Position.after(seq)
        if stop is not None and outcome.position == stop:
            outcome.done = True
            return
    # A page read whole: a later page's byte cap leaves the read no earlier than here.
    outcome.last_taken = outcome.position


def sliced_consume(read: _ShardRead, pages: list[RecordsPage]) -> Outcome:
    rows: list[tuple[str, int]] = []
    for page in pages:
        lo, hi = read._consume(page)
        if hi > lo:
            batch = page.to_batch(lo, hi, "s", "shardId-0")
            rows.extend(
                zip(
                    batch.column("sequenceNumber").to_pylist(),
                    batch.column("subSequenceNumber").to_pylist(),
                    strict=True,
                )
            )
        if read.progress.done:
            break
    p = read.progress
    return Outcome(rows, p.position, p.records, p.done, p.data_bytes)


def new_read(
    start: Position, stop: Position | None, cap: int | None, max_bytes: int | None = None
) -> _ShardRead:
    opts = KinesisOptions(
        stream_name="s",
        region="us-east-1",
        checkpoint_store="unused",
        endpoint_url="http://127.0.0.1:9",
        max_records_per_shard=cap,
    )
    task = ShardTask(
        batch=1, stream="s", query="q", shard_id="shardId-0", start=start, max_bytes=max_bytes
    )
    return _ShardRead(opts, task, stop)


def _order(position: Position) -> tuple[int, int]:
    """Where a position lies among user records: (sequence, sub), whole record last."""
    if position.sequence is None:
        return (-1, -1)
    return (int(position.sequence), (1 << 30) if position.sub is None else position.sub)


def random_case(rng: random.Random) -> tuple[list[RecordsPage], Position, Position | None, int]:
    pages = []
    seq = BASE_SEQUENCE
    for _ in range(rng.randint(1, 3)):
        counts = [rng.choice([None, None, 0, 1, 2, 3, 5]) for _ in range(rng.randint(0, 6))]
        pages.append(make_page(counts, seq))
        seq += 7 * len(counts) + 3
    units = [
        (page.sequence_numbers[page.record_of(u)], u - page.unit_starts[page.record_of(u)])
        for page in pages
        for u in range(page.unit_count)
    ]
    positions = [Position.trim_horizon()]
    for seq_text, sub in units:
        positions += [Position.after(seq_text, sub), Position.after(seq_text)]
    start = rng.choice(positions)
    stop = None
    if rng.random() < 0.5:
        # A recorded end never lies before the start it was read from.
        stop = rng.choice([p for p in positions[1:] if _order(p) >= _order(start)] or [None])
    cap = rng.randint(1, 12)
    return pages, start, stop, cap


@pytest.mark.parametrize("seed", range(400))
def test_sliced_consume_matches_the_unit_by_unit_loop(seed: int) -> None:
    rng = random.Random(seed)
    pages, start, stop, cap = random_case(rng)
    if stop == start:
        stop = None  # run() returns before reading anything: nothing to compare
    read = new_read(start, stop, cap)
    got = sliced_consume(read, pages)
    want = Outcome([], start, 0, False)
    for page in pages:
        reference_consume(page, want, start.skip_through(), stop, None if stop is not None else cap)
        if want.done:
            break
    assert got == want


@pytest.mark.parametrize("seed", range(300))
def test_a_byte_cap_with_or_without_a_record_cap_matches_the_unit_by_unit_loop(seed: int) -> None:
    rng = random.Random(seed)
    pages, start, _, cap = random_case(rng)
    # Units hold 3 to 5 bytes here ("record/sub"): caps from below one unit to most pages.
    max_bytes = rng.randint(1, 40)
    records_cap = cap if rng.random() < 0.5 else None
    read = new_read(start, None, records_cap, max_bytes)
    got = sliced_consume(read, pages)
    want = Outcome([], start, 0, False)
    for page in pages:
        reference_consume(page, want, start.skip_through(), None, records_cap, max_bytes)
        if want.done:
            break
    assert got == want
    assert got.bytes == want.bytes
    # Within the cap, but for a read's first unit, which goes whatever its size.
    assert got.bytes <= max_bytes or got.records == 1


def test_cap_splits_an_aggregate_and_records_the_sub() -> None:
    page = make_page([None, 4, None], BASE_SEQUENCE)
    read = new_read(Position.trim_horizon(), None, cap=3)
    assert read._consume(page) == (0, 3)
    assert read.progress.position == Position.after(page.sequence_numbers[1], 1)
    assert read.progress.done


def test_resume_inside_an_aggregate_skips_the_consumed_user_records() -> None:
    page = make_page([4, None], BASE_SEQUENCE)
    start = Position.after(page.sequence_numbers[0], 1)
    read = new_read(start, None, cap=100)
    assert read._consume(page) == (2, 5)
    assert read.progress.position == Position.after(page.sequence_numbers[1])


def test_replay_stops_at_the_recorded_sub_of_a_split_aggregate() -> None:
    page = make_page([None, 4, None], BASE_SEQUENCE)
    stop = Position.after(page.sequence_numbers[1], 2)
    read = new_read(Position.trim_horizon(), stop, cap=1)
    assert read._consume(page) == (0, 4)
    assert read.progress.position == stop
    assert read.progress.done


def test_a_trailing_aggregate_of_no_user_records_is_read_past() -> None:
    page = make_page([None, 0], BASE_SEQUENCE)
    read = new_read(Position.trim_horizon(), None, cap=100)
    assert read._consume(page) == (0, 1)
    assert read.progress.position == Position.after(page.sequence_numbers[1])
    assert not read.progress.done


def test_replay_ends_at_a_recorded_aggregate_of_no_user_records() -> None:
    page = make_page([None, 0], BASE_SEQUENCE)
    stop = Position.after(page.sequence_numbers[1])
    read = new_read(Position.trim_horizon(), stop, cap=1)
    assert read._consume(page) == (0, 1)
    assert read.progress.position == stop
    assert read.progress.done
