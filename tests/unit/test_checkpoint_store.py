"""The file checkpoint store: put-if-absent has exactly one winner; purge keeps recent batches."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from kinesis_source.errors import CheckpointStoreError
from kinesis_source.source.positions import Position, ShardEnd
from kinesis_source.stores import FileCheckpointStore


def end(seq: str) -> ShardEnd:
    return ShardEnd(Position.after(seq), records=1, millis_behind_latest=0, caught_up=True)


def test_racing_writers_have_exactly_one_winner(tmp_path: Path) -> None:
    store = FileCheckpointStore(str(tmp_path))
    results: list[tuple[int, bool]] = []
    barrier = threading.Barrier(8)

    def attempt(i: int) -> None:
        barrier.wait()
        results.append((i, store.put_if_absent("s", "q", 3, "shard-1", end(str(100 + i)))))

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [i for i, won in results if won]
    assert len(winners) == 1
    assert store.get("s", "q", 3, "shard-1") == end(str(100 + winners[0]))
    assert [p.name for p in (tmp_path / "s" / "q" / "000000000003").iterdir()] == ["shard-1.json"]


def test_missing_entries_mean_not_advanced(tmp_path: Path) -> None:
    store = FileCheckpointStore(f"file://{tmp_path}")
    assert store.get_batch("s", "q", 7) == {}
    assert store.get("s", "q", 7, "shard-1") is None


def test_purge_forgets_only_older_batches(tmp_path: Path) -> None:
    store = FileCheckpointStore(str(tmp_path))
    for batch in range(5):
        store.put_if_absent("s", "q", batch, "a", end(str(batch)))
    store.purge_before("s", "q", 3)
    assert [b for b in range(5) if store.get_batch("s", "q", b)] == [3, 4]


def test_queries_do_not_see_each_other(tmp_path: Path) -> None:
    store = FileCheckpointStore(str(tmp_path))
    store.put_if_absent("s", "q1", 1, "a", end("5"))
    assert store.get_batch("s", "q2", 1) == {}


def test_unwritable_store_fails_naming_the_uri(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(CheckpointStoreError, match=str(blocker)):
        FileCheckpointStore(str(blocker / "store")).check()
