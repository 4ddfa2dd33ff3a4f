"""A replay reads what the first attempt read, or says why not (docs/design.md section 11).

A batch that started at TRIM_HORIZON or a timestamp starts wherever Kinesis resolves it,
and that moves when the trim horizon passes records: a replay would then emit fewer rows
than the first attempt, without an error. So the first attempt records the sequence number
of the first record it met (``ShardEnd.first_sequence``) and the replay compares its own
first record with it: a later one means the records in between were trimmed, which is
data loss under ``failOnDataLoss``. A replay of a sequence-number start needs no check:
Kinesis refuses a trimmed sequence number (``data_loss.read_loss``).

Also here: whether a read's end is an enhanced fan-out continuation rather than a record
(``ShardEnd.end_at_continuation``), which a replay by GetRecords cannot reach as a record.
No I/O, no Spark.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kinesis_source.source.data_loss import lost
from kinesis_source.source.positions import Position, ShardEnd

if TYPE_CHECKING:
    from kinesis_source.records.records_page import RecordsPage


def first_to_record(start: Position, page: RecordsPage) -> str | None:
    """The sequence number to record as the read's first: the page's first record, for a
    read from a start Kinesis resolves (TRIM_HORIZON, a timestamp); else None."""
    if start.sequence is not None or not len(page):
        return None
    return page.sequence_numbers[0]


def records_trimmed(recorded_first: str | None, replay_first: str | None) -> bool:
    """True if the replay cannot read what the first attempt read from its first record:
    it met a later first record, or (``replay_first`` None) none at all before the tip."""
    if recorded_first is None:
        return False
    return replay_first is None or int(replay_first) > int(recorded_first)


def check_replay_start(
    recorded: ShardEnd,
    replay_first: str | None,
    *,
    stream: str,
    shard_id: str,
    batch: int,
    start: Position,
    fail_on_data_loss: bool,
) -> bool:
    """Raise ``DataLossError`` (or, failOnDataLoss=false, log and return True) if the
    replay of ``batch`` from ``start`` met ``replay_first`` where the first attempt met an
    earlier record."""
    if not records_trimmed(recorded.first_sequence, replay_first):
        return False
    now = "holds no record" if replay_first is None else f"starts at {replay_first}"
    lost(
        stream,
        shard_id,
        f"Data loss on stream {stream!r} shard {shard_id}: the replay of batch {batch} from "
        f"{start.text()} to {recorded.position.text()} {now}, but the batch's first attempt "
        f"read from {recorded.first_sequence}: the trim horizon moved past the records in "
        "between before the replay read them again.",
        fail_on_data_loss=fail_on_data_loss,
        sequence_number=recorded.first_sequence,
    )
    return True


def moved_to_continuation(page: RecordsPage, position: Position) -> bool:
    """Whether ``position``, where the read stands after consuming ``page``, is the page's
    continuation sequence number rather than one of its records' (an idle shard's event)."""
    continuation = page.continuation
    if continuation is None or position != Position.after(continuation):
        return False
    return not len(page) or page.sequence_numbers[-1] != continuation
