"""The Kinesis sink: ``df.write.format("kinesis")`` and ``df.writeStream.format("kinesis")``.

On the driver: ``writer`` (the Spark writers; checks options and columns before any task
runs, logs each batch), ``options`` (``SinkOptions``), ``columns`` (which input columns
are accepted), ``registry`` (schemaRegistry=glue: the schema version that encodes the
``value`` column, checked against its type). In the executors' tasks: ``task`` (rows into
PutRecords entries, routed to the lanes), ``lanes`` (a thread per shard's lane, each fed by
its own bounded queue for the whole task), ``put_records`` (sending and retrying rejected
entries), ``batching`` (the calls' limits, pure), ``shard_map`` (which shard a hash key
goes to, pure).
"""
