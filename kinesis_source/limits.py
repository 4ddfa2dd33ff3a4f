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
# The longest one GetRecords page holds a shard's next call back: 10 MiB at 2 MiB/s ("if a
# call returns 10 MiB, subsequent calls made within the next 5 seconds throw
# ProvisionedThroughputExceededException").
READ_QUOTA_WAIT_MAX_MS = 5_000

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
# SubscribeToShard for the same consumer and shard within 5 s of a successful call gets
# ResourceInUseException; after that it takes the subscription over.
EFO_TAKEOVER_SECONDS = 5

# --- connector defaults (documented in docs/options.md) ---

# RegisterStreamConsumer: CREATING usually turns ACTIVE within a minute on AWS; wait
# up to two before failing the query's start.
DEFAULT_CONSUMER_REGISTRATION_TIMEOUT_MS = 120_000

# No default cap on the records of one shard's read: a batch is bounded by this time, as
# Kinesis' quotas are (2 MiB/s and 5 calls/s per shard), not by a count of rows. A count
# cuts a KPL backlog, hundreds of user records per Kinesis record, into many batches that
# each pay Spark's fixed cost.
DEFAULT_MAX_FETCH_TIME_MS = 10_000
# 200 ms between GetRecords calls keeps one reader at the 5 calls/s per shard quota.
DEFAULT_FETCH_INTERVAL_MS = 1000 // GET_RECORDS_CALLS_PER_SECOND_PER_SHARD
DEFAULT_SHARD_DISCOVERY_INTERVAL_MS = 10_000

# botocore timeouts: a server that never answers must not hang a task. A GetRecords of
# 10 MiB takes well under 30 s on any working link.
DEFAULT_CONNECT_TIMEOUT_MS = 10_000
DEFAULT_READ_TIMEOUT_MS = 30_000
CONNECT_TIMEOUT_SECONDS = DEFAULT_CONNECT_TIMEOUT_MS // 1000
READ_TIMEOUT_SECONDS = DEFAULT_READ_TIMEOUT_MS // 1000
# botocore "standard" retry mode attempts (first call included), for non-Kinesis clients;
# Kinesis calls are retried by retry.py instead.
CLIENT_MAX_ATTEMPTS = 5

# Retries of throttled and transient Kinesis calls (retry.py): exponential backoff with
# full jitter. 10 retries from 200 ms doubling up to 5 s wait about 15 s in all on average
# (31 s at most): long enough to ride out a throttling burst or a brief outage, short
# enough that a dead endpoint fails the task within a minute. Between Flink's 300..1000 ms
# x 50 (which waits up to ~50 s at a 1 s cap) and awslabs' 1..10 s x 5.
DEFAULT_MAX_RETRIES = 10
DEFAULT_RETRY_BASE_DELAY_MS = 200
DEFAULT_RETRY_MAX_DELAY_MS = 5_000

# Driver-side probe for new data: how many shards are probed at once.
PROBE_THREADS = 16
# Idle shards one trigger probes, at most, per stream (the oldest-probed first). A probe
# costs the driver about 1-2 ms of CPU in botocore, under the GIL, whatever the threads:
# 200 fit in well under a second even with 20 ms round trips (200 / 16 threads x 20 ms),
# and a stream of up to 200 idle shards has each of them probed on every trigger.
DEFAULT_MAX_PROBES_PER_TRIGGER = 200

# Checkpoint store calls: botocore "standard" retries cover throttling
# (ProvisionedThroughputExceeded, ThrottlingException, SlowDown) with exponential backoff.
STORE_MAX_ATTEMPTS = 8
# The driver's start-up check of the store: fail in seconds, not after a minute of retries.
STORE_CHECK_MAX_ATTEMPTS = 2
# DynamoDB BatchWriteItem takes at most 25 requests per call.
DYNAMODB_BATCH_WRITE_MAX_ITEMS = 25
# S3 DeleteObjects takes at most 1,000 keys per call.
S3_DELETE_MAX_KEYS = 1000
# Waiting for a new checkpoint table to become ACTIVE: poll every second, up to 2 minutes.
TABLE_WAIT_DELAY_SECONDS = 1
TABLE_WAIT_MAX_ATTEMPTS = 120

# AssumeRole: ask for one-hour sessions (the STS default); botocore refreshes the
# credentials 15 minutes before they expire, so a query outlives any single session.
ASSUME_ROLE_SESSION_SECONDS = 3600

# A probe reuses an idle shard's iterator for this long: well inside the iterator's
# 5 minute life, so that a slow trigger never hands Kinesis an expired one.
PROBE_ITERATOR_REUSE_SECONDS = SHARD_ITERATOR_TTL_SECONDS - 60

# A read's last NextShardIterator, kept in the Python worker for the shard's next batch
# (executor/kept_iterators.py): used for as long as a probe's, and at most this many kept
# per worker (one per shard it reads; more only when Spark moves shards between workers).
KEPT_ITERATOR_SECONDS = PROBE_ITERATOR_REUSE_SECONDS
KEPT_ITERATORS_MAX = 10_000

# A read that walks only empty pages (an empty stretch of a shard's storage, GetRecords
# API reference) records how far it got as a timestamp: the executor's clock at the
# response, minus MillisBehindLatest, minus this margin. The margin covers the skew
# between the executor's clock and Kinesis' (which stamps arrivals) and the approximation
# of ApproximateArrivalTimestamp, so that no record arriving after the walk's end is dated
# before the recorded timestamp; too large a margin only re-walks a few seconds.
WALK_CLOCK_MARGIN_MS = 5_000

# A trigger that found nothing to read waits at most this long for shards held back by
# pacing (called less than fetchIntervalMs ago) to become due, and probes them, before it
# says "no new data" (which ends a Trigger.AvailableNow run and returns
# processAllAvailable()). One default fetch interval: a longer interval is not waited out.
HELD_BACK_PROBE_WAIT_MS = DEFAULT_FETCH_INTERVAL_MS

# A read hands Spark a page's rows in Arrow batches of at most this much record data (a
# larger record alone): the worker keeps the batch it sent last while the read fetches and
# decodes the next page, so a small batch bounds what a task holds beyond that page.
# 10,000 records of 100 bytes still make one batch.
ARROW_BATCH_MAX_BYTES = 1024 * 1024

# A shard read fetches its next GetRecords page while it hands on the rows of a page
# holding at most this much data: the call's round trip and the decoding then overlap
# Spark's taking of the rows. After a larger page it waits, so that a task never holds a
# large page and the next one at once (10 MiB pages: see the bench's section (m)).
READ_AHEAD_MAX_PAGE_BYTES = 2 * 1024 * 1024

# --- sink ---

# A stream can be configured for records up to 10 MiB (maxRecordBytes); 1 MiB by default.
RECORD_MAX_BYTES_CONFIGURABLE = 10 * 1024 * 1024
# PutRecords calls one task keeps in flight: four overlap the round trips of a task
# writing to several shards without one task taking a shard's whole 1,000 records/s.
DEFAULT_MAX_IN_FLIGHT_REQUESTS = 4
MAX_IN_FLIGHT_REQUESTS = 64
# A partition key of the sink when the input has none: 32 hex digits (128 random bits,
# the MD5 width), which spreads records evenly over the hash-key space.
RANDOM_PARTITION_KEY_HEX_DIGITS = 32
# Kinesis hash keys are 128-bit: an explicit hash key is a decimal in 0..2**128-1.
HASH_KEY_MAX = 2**128 - 1
# A sink task reads its input in windows of this many records per lane (or of
# SINK_WINDOW_BYTES_PER_LANE) and puts their entries on its lanes' queues, each of which
# holds at most as much (sink/lanes.py): memory stays bounded (about two windows).
SINK_WINDOW_RECORDS_PER_LANE = 4 * PUT_RECORDS_MAX_RECORDS
# With aggregation a lane sends aggregates, not user records: a window holds enough small
# records to fill a few aggregates per shard (10,000 of 100 bytes: four of
# SINK_AGGREGATE_MAX_BYTES), so that they are full, not cut short by the window's end.
SINK_AGGREGATE_WINDOW_RECORDS_PER_LANE = 10_000
# An aggregate is at most a quarter of a shard's write quota: four fill a second of it
# (task.aggregate_max_bytes).
SINK_AGGREGATE_MAX_BYTES = WRITE_BYTES_PER_SECOND_PER_SHARD // 4
SINK_WINDOW_BYTES_PER_LANE = 2 * PUT_RECORDS_MAX_BYTES
# Aggregates that landed on the wrong shard (a reshard) are re-sent after the shard map is
# read again; a stream resharding again and again gives up after this many rounds.
SINK_RESHARD_ROUNDS = 5

# --- bounds on what a long-running query keeps (docs/design.md section 13, section 3) ---

# An enhanced fan-out subscription kept open in a Python worker between batches and not
# continued within this long is closed (its thread, buffered events and connection go):
# longer than a trigger interval most queries use, and well past the 5-second rule, so the
# next batch's SubscribeToShard is not refused because of it.
EFO_KEEP_OPEN_SECONDS = 30
# boto3 clients cached per process (aws/clients.py), least recently used dropped first: a
# query uses a few (Kinesis, the store, STS); many queries in one worker share the rest.
CLIENT_CACHE_MAX = 32
# Checkpoint store entries in DynamoDB carry an expiry (its TTL attribute): past the
# longest retention Kinesis allows, a recorded end can no longer be read from anyway.
STORE_ENTRY_TTL_SECONDS = (RETENTION_MAX_HOURS + 24) * 3600
