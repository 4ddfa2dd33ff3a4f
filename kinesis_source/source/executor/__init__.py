"""Executor side: runs in ``read()`` in the executors' Python workers, one task at a time.

- ``multi_shard``: several shards of one batch inside one task (``shardsPerTask``).
- ``shard_reader``: one shard for one batch: a replay up to the recorded end, or a fresh
  read whose end is recorded with put-if-absent.
- ``stop_rules``: when a read stops and which rows of a page it hands out (pure).
- ``walk``: how far a read of empty pages got, recorded as a timestamp (pure).
- ``replay_check``: a replay's first record against the first attempt's (trimmed records
  are data loss), and whether an end is an enhanced fan-out continuation (pure).
- ``get_records``: the GetRecords transport (iterators, paging, pacing, retries).
- ``kept_iterators``: a read's last shard iterator, kept in the Python worker for the
  shard's next batch when it reads on exactly where the read ended (no GetShardIterator).
- ``read_ahead``: the next GetRecords page, fetched on a thread of its own.
- ``efo``: the enhanced fan-out transport (SubscribeToShard events as pages).
- ``efo_subscribe``: opening a subscription, and its refusals.
- ``efo_subscription``: one open event stream, read by a background thread.
- ``registry_decode``: ``schemaRegistry=glue``: a task's batches gain the decoded
  ``value``, ``schemaVersionId`` and ``decodeError`` columns.
- ``efo_kept``: subscriptions kept open between batches, and closing those not continued.
"""
