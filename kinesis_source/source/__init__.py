"""The source.

Driver planning: ``stream_reader`` (the Spark face) and ``stream_planner`` (one stream's
planning) around the I/O of ``discovery`` (ListShards) and ``probing`` (idle shards), and
the pure decisions ``planning``, ``lineage``, ``admission``, ``positions`` (the offset),
``data_loss``; ``lag`` for progress.

Executor reading: ``multi_shard`` (several shards per task) and ``shard_reader`` (one
shard: replay or fresh read, recording the end), joining the ``get_records`` transport
and the pure ``stop_rules``.

``tests/unit/test_layout.py`` enforces which of these may import boto3 or Spark.
"""
