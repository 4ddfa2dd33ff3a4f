"""The source: ``readStream.format("kinesis")``, and ``read.format("kinesis")`` over a
bounded range.

Spark runs it in two kinds of process, and the folders say which:

- ``driver/``: the driver's streaming source runner (``initialOffset``, ``latestOffset``,
  ``partitions``, ``commit``): which shards the next batch reads and from where.
- ``executor/``: ``read()`` in the executors' Python workers: read a shard from its start
  position, stop by the rules, record the end in the checkpoint store (a batch read
  records nothing: its end is fixed in the task).

At this level only what crosses between them or both apply:

- ``stream_reader``: ``KinesisStreamReader``, the class Spark calls; its planning methods
  run on the driver, its ``read()`` on executors.
- ``batch_reader``: ``KinesisBatchReader``, the class Spark calls for ``spark.read``; its
  ``partitions()`` plans on the driver, its ``read()`` runs on executors.
- ``options``: the source's options, parsed on the driver, pickled to every task.
- ``batch_options``: a batch read's start defaults and its end (``endingPosition``).
- ``positions``: shard positions and the offsets Spark logs (offsets v1 and v2).
- ``tasks``: ``ShardTask`` and ``ShardPartition``, what a task receives.
- ``data_loss``: the data-loss policy both sides apply.
- ``shard_range``: a shard's sequence-number and hash-key ranges from ListShards, which
  the driver checks start positions against and a task filters KPL user records by.

``driver/`` and ``executor/`` never import each other (``tests/unit/test_layout.py``).
"""
