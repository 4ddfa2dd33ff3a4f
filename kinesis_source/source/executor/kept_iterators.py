"""Shard iterators kept in this Python worker between batches (GetRecords reads only).

A read that ends where its last page's ``NextShardIterator`` reads on leaves that iterator
here, by (stream, query, shard), with the position it reads on from. The shard's next read
in this worker that starts at exactly that position takes it instead of calling
GetShardIterator: one round trip less per shard and batch (20 ms or more from EC2, on
every batch's critical path at a short trigger; and one call less of GetShardIterator's
own 5 calls/s per shard).

An iterator is only ever used from the position it was kept at, so the rows are those a
fresh iterator would give. It expires 5 minutes after Kinesis issued it
(``limits.SHARD_ITERATOR_TTL_SECONDS``): one older than ``limits.KEPT_ITERATOR_SECONDS``
is not used, and one Kinesis refuses anyway (``ExpiredIteratorException``, any other
error) costs the read a GetShardIterator at the same position (``get_records``). Spark
may run the shard's next batch in another worker: the iterator kept here is then never
taken; the cache is bounded (``limits.KEPT_ITERATORS_MAX``, the least recently kept go
first) and drops what is too old to use whenever it keeps one.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from kinesis_source import limits
from kinesis_source.source.positions import AFTER_SEQUENCE_NUMBER, Position

Key = tuple[str, str, str]  # stream, query id, shard id


@dataclass(frozen=True)
class KeptIterator:
    """An iterator that reads on from ``position`` (its text), received at ``received_ms``
    (epoch ms, this worker's clock: Kinesis issued it a round trip before)."""

    position: str
    iterator: str
    received_ms: int


_KEPT: dict[Key, KeptIterator] = {}
_LOCK = threading.Lock()


def reads_on_from(
    end: Position,
    last_page_sequence: str | None,
    before_last_page: Position,
    millis_behind_latest: int | None,
) -> bool:
    """True if the last page's ``NextShardIterator`` reads on from exactly ``end``, where
    the read stopped.

    Only a whole record's end (``AFTER_SEQUENCE_NUMBER`` without a sub-sequence: a KPL
    aggregate read to its last user record) qualifies, and only if the page's last record
    is that record (a read stopped by a cap within the page ends before it), or the page
    was empty at the shard's tip and the read stayed where it was. A walk of an empty
    stretch (a timestamp position), a split aggregate and a shard's end never do.
    """
    if end.kind != AFTER_SEQUENCE_NUMBER or end.sub is not None or end.sequence is None:
        return False
    if last_page_sequence is not None:
        return int(last_page_sequence) == int(end.sequence)
    return end == before_last_page and millis_behind_latest == 0


def usable(kept: KeptIterator, position: Position, now_ms: int) -> bool:
    """``kept`` reads on from ``position`` and is young enough to hand to Kinesis."""
    age_ms = now_ms - kept.received_ms
    return kept.position == position.text() and age_ms < limits.KEPT_ITERATOR_SECONDS * 1000


def take(key: Key, position: Position, now_ms: int) -> str | None:
    """The iterator kept for ``key`` if it reads on from ``position`` and is young enough;
    it is no longer kept either way (an iterator serves one read)."""
    with _LOCK:
        kept = _KEPT.pop(key, None)
    if kept is None or not usable(kept, position, now_ms):
        return None
    return kept.iterator


def keep(key: Key, kept: KeptIterator, now_ms: int) -> None:
    """Keep ``kept`` for ``key`` (replacing one kept there), dropping iterators too old to
    use and, beyond ``limits.KEPT_ITERATORS_MAX``, the least recently kept."""
    too_old = now_ms - limits.KEPT_ITERATOR_SECONDS * 1000
    with _LOCK:
        _KEPT.pop(key, None)
        _KEPT[key] = kept
        for stale in [k for k, v in _KEPT.items() if v.received_ms <= too_old]:
            del _KEPT[stale]
        while len(_KEPT) > limits.KEPT_ITERATORS_MAX:
            del _KEPT[next(iter(_KEPT))]


def kept_count() -> int:
    with _LOCK:
        return len(_KEPT)


def clear() -> None:
    with _LOCK:
        _KEPT.clear()
