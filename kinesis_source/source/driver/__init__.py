"""Driver side: runs in the driver's streaming source runner, planning each micro-batch, and
in the Python worker that plans a batch read (``spark.read``).

The I/O:

- ``stream_planner``: one stream's part of the next batch, around the pure steps.
- ``discovery``: ListShards when due, the stream's retention.
- ``probing``: a GetRecords Limit=1 on idle shards: is there anything new?
- ``stream_check``: at ``load()``, does each stream exist (and each shard a JSON start names)?
- ``consumers``: enhanced fan-out consumers, registered and awaited before the first batch.
- ``kcl_leases``: read a KCL lease table into start positions.
- ``schema_registry``: ``schemaRegistry=glue``: the reader schema, asked of Glue once at
  ``load()``, and the rows' schema it gives.
- ``batch_plan``: a batch read's shards, starts and ends (pure).
- ``stop_signal``: Spark's SIGTERM of the runner reaches the reader's ``stop()``.

The decisions, pure (no boto3, no Spark):

- ``planning``: what the next batch reads.
- ``lineage``: which shards are readable (parents before children).
- ``admission``: how a batch's row budget is split over shards.
- ``pacing``: when a shard may be called again; what a trigger probes.
- ``start_positions``: per-shard JSON start positions.
- ``stream_start``: where a stream starts, at the first batch or when added.
- ``loss_check``: shards that vanished or aged out before they were read.
- ``trim_probe``: the oldest record a stale shard still holds (one GetRecords Limit=1).
- ``lag``: how far behind the tip each stream and shard is, for progress.
"""
