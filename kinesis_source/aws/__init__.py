"""The boto3/botocore seam. Runs in both: the driver and the executors' Python workers.

- ``clients``: sessions, credentials (keys, profile, AssumeRole) and clients cached per
  process.
- ``retry``: backoff with full jitter for throttling and transient errors; out of retries,
  the caller's direction's error.
- ``kinesis``: the Kinesis control calls (DescribeStreamSummary, ListShards paging) for the
  driver's planning, the stream check and the sink.
- ``glue``: the AWS Glue Schema Registry: the driver's reader schema (latest or pinned), and
  each process's cache of schema versions by id (executors, the sink's driver check).

It imports nothing from ``source/``, ``sink/``, ``records/`` or ``stores/``: they call it.
"""
