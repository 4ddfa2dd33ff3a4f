"""Kinesis service limits and connector defaults, in one place.

Service numbers come from the Kinesis Data Streams developer guide ("Quotas and limits",
GetRecords / GetShardIterator / PutRecords API references). Each name says its unit.
"""

from __future__ import annotations

# GetRecords: at most 10,000 records or 10 MiB per call; 5 calls/s and 2 MiB/s per shard.
GET_RECORDS_MAX_RECORDS = 10_000
GET_RECORDS_MAX_BYTES = 10 * 1024 * 1024
GET_RECORDS_CALLS_PER_SECOND_PER_SHARD = 5
READ_BYTES_PER_SECOND_PER_SHARD = 2 * 1024 * 1024

# GetShardIterator: 5 calls/s per shard; an iterator expires 5 minutes after it is issued.
GET_SHARD_ITERATOR_CALLS_PER_SECOND_PER_SHARD = 5
SHARD_ITERATOR_TTL_SECONDS = 300

# PutRecords: 500 records and 5 MiB per call (newer streams allow 10 MiB; 5 MiB is safe
# everywhere); 1 MiB/s or 1,000 records/s per shard for writes.
PUT_RECORDS_MAX_RECORDS = 500
PUT_RECORDS_MAX_BYTES = 5 * 1024 * 1024
WRITE_BYTES_PER_SECOND_PER_SHARD = 1024 * 1024
WRITE_RECORDS_PER_SECOND_PER_SHARD = 1_000

# A record's data blob is at most 1 MiB; a partition key at most 256 Unicode characters.
RECORD_MAX_BYTES = 1024 * 1024
PARTITION_KEY_MAX_CHARS = 256

# Retention: 24 h by default, up to 365 days.
RETENTION_DEFAULT_HOURS = 24
RETENTION_MAX_HOURS = 365 * 24

# Enhanced fan-out: 2 MiB/s per consumer per shard, 20 consumers, 5 minute subscriptions.
EFO_BYTES_PER_SECOND_PER_SHARD = 2 * 1024 * 1024
EFO_MAX_CONSUMERS = 20
EFO_SUBSCRIPTION_SECONDS = 300

# --- connector defaults (documented in the README options table) ---

DEFAULT_MAX_RECORDS_PER_SHARD = 100_000
DEFAULT_MAX_FETCH_TIME_MS = 10_000
# 200 ms between GetRecords calls keeps one reader at the 5 calls/s per shard quota.
DEFAULT_FETCH_INTERVAL_MS = 1000 // GET_RECORDS_CALLS_PER_SECOND_PER_SHARD
DEFAULT_SHARD_DISCOVERY_INTERVAL_MS = 10_000

# botocore timeouts: a server that never answers must not hang a task.
CONNECT_TIMEOUT_SECONDS = 10
READ_TIMEOUT_SECONDS = 30
# botocore "standard" retry mode attempts (first call included).
CLIENT_MAX_ATTEMPTS = 5

# Driver-side probe for new data: how many shards are probed at once.
PROBE_THREADS = 16
# A probe reuses an idle shard's iterator for this long: well inside the iterator's
# 5 minute life, so that a slow trigger never hands Kinesis an expired one.
PROBE_ITERATOR_REUSE_SECONDS = SHARD_ITERATOR_TTL_SECONDS - 60
