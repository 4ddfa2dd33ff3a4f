"""Admission control: how a batch's row budget is split over shards, decided without I/O.

``maxRecordsPerTrigger`` reaches ``latestOffset`` as ``ReadMaxRows(n)``, which the stream
reader turns into a row budget (``stream_reader.budgets``): no Spark here. The budget is
split over the shards that have something to read (a known backlog, or a probe that found
a record); shards without data are not planned at all. The split goes into the offset
(``Offset.limits``), so a replay plans the same shards with the same limits, and the
executors never see more than their share.

Why an even split: Kinesis has no cheap per-shard record count (``MillisBehindLatest``
is a time, not a number of records, and a probe reads one record), so there is no
backlog size to weight by. An even share is deterministic and fair; a shard with less
data than its share just makes the batch smaller, never bigger. The remainder, and the
single records when the budget is smaller than the number of shards, rotate with the
batch number so that no shard waits for ever behind its neighbours.

``maxBytesPerTrigger`` (``ReadMaxBytes``) is a second budget, of bytes of record data, split
the same way into ``Offset.byte_limits``; a read stops at whichever of its two shares it
meets first. The Python API hands ``latestOffset`` one limit, so with both options set the
row budget comes as ``ReadMaxRows`` and the byte budget from the options
(``stream_reader.budgets``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def split_budget(budget: int, shards: Sequence[str], rotate: int) -> dict[str, int]:
    """``budget`` rows over ``shards`` (in the given order): even shares, the remainder to
    ``len(shards)`` consecutive shards starting at index ``rotate``, wrapping around."""
    count = len(shards)
    if count == 0:
        return {}
    share, extra = divmod(budget, count)
    first = rotate % count
    return {
        sid: share + (1 if (index - first) % count < extra else 0)
        for index, sid in enumerate(shards)
    }


def plan_limits(
    readable: Iterable[str],
    with_data: Iterable[str],
    budget: int | None,
    per_shard_cap: int | None,
    rotate: int,
) -> dict[str, int]:
    """Per-shard limits of the next batch, as ``Offset.limits`` holds them.

    Shards without data get 0 (not planned). With a budget, each shard with data gets its
    share, at most ``per_shard_cap`` (None: no cap); a share of 0 means that shard waits
    for a later batch. Without a budget, shards with data get no entry: they read up to the
    cap, if any.
    """
    has_data = set(with_data)
    limits = {sid: 0 for sid in readable if sid not in has_data}
    if budget is not None:
        for sid, share in split_budget(budget, sorted(has_data), rotate).items():
            limits[sid] = share if per_shard_cap is None else min(share, per_shard_cap)
    return limits


def plan_byte_limits(with_data: Iterable[str], budget: int | None, rotate: int) -> dict[str, int]:
    """Per-shard byte limits of the next batch, as ``Offset.byte_limits`` holds them: each
    shard with data gets its share of ``budget`` (0: it waits for a later batch); none
    without a budget."""
    if budget is None:
        return {}
    return split_budget(budget, sorted(set(with_data)), rotate)
