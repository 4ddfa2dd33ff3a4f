"""The S3 checkpoint store: ``s3://BUCKET/PREFIX``, for clusters without DynamoDB.

One object per (batch, shard): ``PREFIX/STREAM/QUERY/BATCH/SHARD.json``. Put-if-absent is
``PutObject`` with ``IfNoneMatch="*"`` (S3 conditional writes): S3 answers 412
PreconditionFailed when the key exists, and 409 ConditionalRequestConflict while another
conditional write of the key is in flight, which is retried until one of them settles.
S3 is strongly read-after-write consistent, so a replay always sees the winner's end.
"""

from __future__ import annotations

import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlparse

from botocore.exceptions import BotoCoreError, ClientError

from kinesis_source import limits
from kinesis_source.errors import CheckpointStoreError
from kinesis_source.source.positions import ShardEnd
from kinesis_source.stores.base import (
    CheckpointStore,
    batch_key,
    describe_error,
    entry,
    error_code,
    not_exclusive,
    parse_entry,
    probe_key,
    store_error,
)

log = logging.getLogger(__name__)

_CONFLICT_RETRIES = 10
_CONFLICT_BACKOFF_SECONDS = 0.05


class S3CheckpointStore(CheckpointStore):
    def __init__(self, uri: str, client: Any, check_client: Any) -> None:
        self.uri = uri
        parsed = urlparse(uri)
        self.bucket = parsed.netloc
        self.prefix = parsed.path.strip("/")
        self.client = client
        # Few retries: the driver's start-up check must fail fast on an unreachable store.
        self.check_client = check_client

    def _base(self, stream: str, query: str) -> str:
        parts = [p for p in (self.prefix, stream, query) if p]
        return "/".join(parts) + "/"

    def _key(self, stream: str, query: str, batch: int, shard_id: str) -> str:
        return f"{self._base(stream, query)}{batch_key(batch)}/{shard_id}.json"

    def check(self) -> None:
        try:
            self.check_client.head_bucket(Bucket=self.bucket)
            self.check_client.list_objects_v2(Bucket=self.bucket, Prefix=self.prefix, MaxKeys=1)
        except (BotoCoreError, ClientError) as exc:
            raise CheckpointStoreError(
                f"checkpoint store {self.uri} is not usable: {describe_error(exc)}; check that the "
                "bucket exists, the credentials may read and write it, and the options "
                "checkpointRegion and checkpointEndpointUrl"
            ) from exc
        self._check_conditional_put()

    def _check_conditional_put(self) -> None:
        """Put-if-absent is PutObject with If-None-Match: prove that this endpoint honours
        it (AWS S3 does; some S3-compatible stores ignore the header, and then both of two
        racing attempts would "win")."""
        key = "/".join(p for p in (self.prefix, f"{probe_key()}.json") if p)
        request = {"Bucket": self.bucket, "Key": key, "Body": b"{}", "IfNoneMatch": "*"}
        try:
            self.check_client.put_object(**request)
            try:
                self.check_client.put_object(**request)
            except ClientError as exc:
                if error_code(exc) in ("PreconditionFailed", "412"):
                    return
                raise
            finally:
                self.check_client.delete_object(Bucket=self.bucket, Key=key)
        except (BotoCoreError, ClientError) as exc:
            raise store_error(self.uri, f"a conditional PutObject of {key}", exc) from exc
        raise not_exclusive(
            self.uri,
            "PutObject with If-None-Match: *",
            "The endpoint (checkpointEndpointUrl) ignores If-None-Match: use AWS S3, an "
            "S3-compatible store that supports conditional writes, or a dynamodb:// store",
        )

    def get(self, stream: str, query: str, batch: int, shard_id: str) -> ShardEnd | None:
        return self._read(self._key(stream, query, batch, shard_id), shard_id)

    def _read(self, key: str, shard_id: str | None) -> ShardEnd | None:
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except ClientError as exc:
            if error_code(exc) in ("NoSuchKey", "404"):
                return None
            raise store_error(self.uri, f"reading {key}", exc, shard_id) from exc
        except BotoCoreError as exc:
            raise store_error(self.uri, f"reading {key}", exc, shard_id) from exc
        return parse_entry(self.uri, key, lambda: ShardEnd.from_json(json.loads(body)))

    def _list(self, prefix: str, delimiter: str | None = None) -> list[dict[str, Any]]:
        pages: list[dict[str, Any]] = []
        request: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix}
        if delimiter:
            request["Delimiter"] = delimiter
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(**request):
                pages.append(page)
        except (BotoCoreError, ClientError) as exc:
            raise store_error(self.uri, f"listing {prefix}", exc) from exc
        return pages

    def get_batch(self, stream: str, query: str, batch: int) -> dict[str, ShardEnd]:
        prefix = f"{self._base(stream, query)}{batch_key(batch)}/"
        keys = [
            obj["Key"]
            for page in self._list(prefix)
            for obj in page.get("Contents", [])
            if obj["Key"].endswith(".json") and "/" not in obj["Key"][len(prefix) :]
        ]
        if not keys:
            return {}
        # One GET per shard: in parallel, or planning a batch of a wide stream crawls.
        with ThreadPoolExecutor(max_workers=min(limits.PROBE_THREADS, len(keys))) as pool:
            ends = list(pool.map(lambda key: self._read(key, None), keys))
        return {
            key[len(prefix) : -len(".json")]: end
            for key, end in zip(keys, ends, strict=True)
            if end is not None
        }

    def put_if_absent(
        self, stream: str, query: str, batch: int, shard_id: str, end: ShardEnd
    ) -> bool:
        key = self._key(stream, query, batch, shard_id)
        body = json.dumps(entry(stream, batch, shard_id, end), sort_keys=True).encode()
        for attempt in range(_CONFLICT_RETRIES):
            try:
                self.client.put_object(
                    Bucket=self.bucket,
                    Key=key,
                    Body=body,
                    IfNoneMatch="*",
                    ContentType="application/json",
                )
                return True
            except ClientError as exc:
                code = error_code(exc)
                if code in ("PreconditionFailed", "412"):
                    return False
                if code not in ("ConditionalRequestConflict", "409"):
                    raise store_error(self.uri, f"writing {key}", exc, shard_id) from exc
                log.debug("put %s: concurrent conditional write; retry %d", key, attempt + 1)
                time.sleep(_CONFLICT_BACKOFF_SECONDS * (attempt + 1))
            except BotoCoreError as exc:
                raise store_error(self.uri, f"writing {key}", exc, shard_id) from exc
        # Still conflicting: another attempt is writing; losing is the safe answer (the
        # task fails, and its retry replays whatever the other attempt recorded).
        return False

    def purge_before(self, stream: str, query: str, batch: int) -> None:
        base = self._base(stream, query)
        old: list[str] = []
        for page in self._list(base, delimiter="/"):
            for common in page.get("CommonPrefixes", []):
                name = common["Prefix"][len(base) :].rstrip("/")
                if name.isdigit() and int(name) < batch:
                    old.append(common["Prefix"])
        keys = [
            obj["Key"] for p in old for page in self._list(p) for obj in page.get("Contents", [])
        ]
        for start in range(0, len(keys), limits.S3_DELETE_MAX_KEYS):
            chunk = keys[start : start + limits.S3_DELETE_MAX_KEYS]
            try:
                self.client.delete_objects(
                    Bucket=self.bucket,
                    Delete={"Objects": [{"Key": k} for k in chunk], "Quiet": True},
                )
            except (BotoCoreError, ClientError) as exc:
                raise store_error(self.uri, "DeleteObjects (purge)", exc) from exc
