"""Executor side: read several shards of one batch concurrently inside one task.

With ``shardsPerTask`` > 1 an input partition carries several shards. Each is read by its
own thread through ``read_shard``, unchanged, so every per-shard rule holds as with one
shard per task (replay vs fresh read, caps, put-if-absent of the end).

One rule needs care across threads: a shard's end is recorded only after its last row
was handed to Spark. ``read_shard`` records the end when its generator is resumed after
its last batch, so each thread resumes its generator only once the task has yielded the
previous batch of that shard (a semaphore per shard). A shard thus has at most one batch
in flight, exactly as a single-shard task has, while the shards proceed in parallel.
If the task stops early or fails, the threads close their generators without resuming
them, which records nothing; an exception in any thread fails the task.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Iterator, Sequence

import pyarrow as pa

from kinesis_source.source.executor.shard_reader import read_shard
from kinesis_source.source.options import KinesisOptions
from kinesis_source.source.tasks import ShardTask
from kinesis_source.stores import CheckpointStore

log = logging.getLogger(__name__)

# What a shard thread hands the task: a batch, its exception, or None when it is done.
_Item = tuple[int, "pa.RecordBatch | BaseException | None"]


def read_shards(
    opts: KinesisOptions, store: CheckpointStore | None, tasks: Sequence[ShardTask]
) -> Iterator[pa.RecordBatch]:
    """Rows of every shard of ``tasks`` (one batch), read concurrently; ``store`` is None
    for a batch read, which records nothing."""
    if len(tasks) == 1:
        yield from read_shard(opts, store, tasks[0])
        return
    items: queue.Queue[_Item] = queue.Queue()
    yielded = [threading.Semaphore(0) for _ in tasks]
    stopping = threading.Event()

    def work(index: int, task: ShardTask) -> None:
        try:
            rows = read_shard(opts, store, task)
            try:
                for batch in rows:
                    items.put((index, batch))
                    yielded[index].acquire()
                    if stopping.is_set():
                        return
            finally:
                # Closing a generator that did not finish records no end.
                rows.close()
            items.put((index, None))
        except BaseException as exc:
            items.put((index, exc))

    threads = [
        threading.Thread(target=work, args=(i, task), name=f"kinesis-{task.shard_id}", daemon=True)
        for i, task in enumerate(tasks)
    ]
    for thread in threads:
        thread.start()
    remaining = len(tasks)
    try:
        while remaining:
            index, item = items.get()
            if item is None:
                remaining -= 1
            elif isinstance(item, BaseException):
                log.error(
                    "batch %d shard %s failed; failing the task",
                    tasks[index].batch,
                    tasks[index].shard_id,
                )
                raise item
            else:
                yield item
                yielded[index].release()
    finally:
        stopping.set()
        for semaphore in yielded:
            semaphore.release()
