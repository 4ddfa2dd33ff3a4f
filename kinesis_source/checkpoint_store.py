"""Checkpoint stores: where each (batch, shard) read records its end (DESIGN.md section 3).

``open_store`` is the one factory; the S3 and DynamoDB stores live in their own modules.
A store maps ``(query, batch, shardId)`` to a small JSON value and offers one atomic
operation, put-if-absent, so that of two task attempts racing on the same key exactly one
wins. Stores never hold credentials.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from botocore.exceptions import ClientError

from kinesis_source.clients import store_client
from kinesis_source.errors import CheckpointStoreError
from kinesis_source.options import KinesisOptions
from kinesis_source.positions import ShardEnd

log = logging.getLogger(__name__)

_BATCH_DIGITS = 12


class CheckpointStore(ABC):
    """Records what each (batch, shard) read, keyed per stream and query."""

    uri: str

    @abstractmethod
    def get_batch(self, stream: str, query: str, batch: int) -> dict[str, ShardEnd]:
        """Every shard end recorded for ``batch``; empty when the batch never ran."""

    @abstractmethod
    def get(self, stream: str, query: str, batch: int, shard_id: str) -> ShardEnd | None:
        """The end recorded for one shard of ``batch``, or None."""

    @abstractmethod
    def put_if_absent(
        self, stream: str, query: str, batch: int, shard_id: str, end: ShardEnd
    ) -> bool:
        """Record ``end`` unless an end is already recorded; True if this call wrote it."""

    @abstractmethod
    def purge_before(self, stream: str, query: str, batch: int) -> None:
        """Forget every batch numbered below ``batch``."""

    @abstractmethod
    def check(self) -> None:
        """Fail with ``CheckpointStoreError`` naming the URI if the store is unusable."""


def entry(stream: str, batch: int, shard_id: str, end: ShardEnd) -> dict[str, Any]:
    """The JSON value a store records for one (batch, shard): no credentials, ever."""
    return {
        "stream": stream,
        "batch": batch,
        "shardId": shard_id,
        **end.to_json(),
        "writtenAtMs": int(time.time() * 1000),
    }


class FileCheckpointStore(CheckpointStore):
    """A directory tree: ``ROOT/STREAM/QUERY/BATCH/SHARD.json``.

    Put-if-absent writes a temp file, then hard-links it to the final name: ``link`` fails
    if the name exists, and a reader never sees a half-written file. Only for local mode or
    a file system every executor shares.
    """

    def __init__(self, uri: str) -> None:
        self.uri = uri
        parsed = urlparse(uri)
        if parsed.scheme == "file":
            self.root = Path(unquote(parsed.path))
        else:
            self.root = Path(uri)

    def _batch_dir(self, stream: str, query: str, batch: int) -> Path:
        return self.root / stream / query / batch_key(batch)

    def check(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            probe = tempfile.NamedTemporaryFile(dir=self.root, prefix=".probe-", delete=True)
            probe.close()
        except OSError as exc:
            raise CheckpointStoreError(
                f"checkpoint store {self.uri} is not a writable directory: {exc}"
            ) from exc

    def get_batch(self, stream: str, query: str, batch: int) -> dict[str, ShardEnd]:
        directory = self._batch_dir(stream, query, batch)
        out: dict[str, ShardEnd] = {}
        try:
            names = os.listdir(directory)
        except FileNotFoundError:
            return out
        for name in names:
            if name.endswith(".json") and not name.startswith("."):
                end = self._read(directory / name)
                if end is not None:
                    out[name[: -len(".json")]] = end
        return out

    def get(self, stream: str, query: str, batch: int, shard_id: str) -> ShardEnd | None:
        return self._read(self._batch_dir(stream, query, batch) / f"{shard_id}.json")

    def _read(self, path: Path) -> ShardEnd | None:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise CheckpointStoreError(
                f"checkpoint store {self.uri}: cannot read {path.name}: {exc}"
            ) from exc
        return ShardEnd.from_json(data)

    def put_if_absent(
        self, stream: str, query: str, batch: int, shard_id: str, end: ShardEnd
    ) -> bool:
        directory = self._batch_dir(stream, query, batch)
        final = directory / f"{shard_id}.json"
        body = json.dumps(entry(stream, batch, shard_id, end), sort_keys=True)
        try:
            directory.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{shard_id}.", suffix=".tmp")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    handle.write(body)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.link(tmp, final)
            finally:
                os.unlink(tmp)
        except FileExistsError:
            return False
        except OSError as exc:
            raise CheckpointStoreError(
                f"checkpoint store {self.uri}: cannot write batch {batch} shard {shard_id}: {exc}",
                shard_id=shard_id,
            ) from exc
        return True

    def purge_before(self, stream: str, query: str, batch: int) -> None:
        parent = self.root / stream / query
        try:
            names = os.listdir(parent)
        except FileNotFoundError:
            return
        for name in names:
            if name.isdigit() and int(name) < batch:
                shutil.rmtree(parent / name, ignore_errors=True)


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def describe_error(exc: Exception) -> str:
    """A botocore error in a few words: its code, never the request (which may carry keys)."""
    if isinstance(exc, ClientError):
        return error_code(exc) or "ClientError"
    return str(exc)


def store_error(uri: str, action: str, exc: Exception, shard_id: str | None = None) -> Exception:
    """A ``CheckpointStoreError`` naming the store and what failed, for a botocore error."""
    return CheckpointStoreError(
        f"checkpoint store {uri}: {action} failed: {describe_error(exc)}", shard_id=shard_id
    )


def batch_key(batch: int) -> str:
    """A batch number as a fixed-width string, so that text order is number order."""
    return f"{batch:0{_BATCH_DIGITS}d}"


def open_store(opts: KinesisOptions) -> CheckpointStore:
    """The store ``opts.checkpoint_store`` names; everything it needs comes from ``opts``,
    which is picklable, so executors open the same store as the driver."""
    uri = opts.checkpoint_store
    scheme = urlparse(uri).scheme.lower()
    if scheme == "s3":
        from kinesis_source.checkpoint_store_s3 import S3CheckpointStore

        return S3CheckpointStore(
            uri, store_client("s3", opts), store_client("s3", opts, check=True)
        )
    if scheme == "dynamodb":
        from kinesis_source.checkpoint_store_dynamodb import DynamoDBCheckpointStore

        return DynamoDBCheckpointStore(
            uri,
            store_client("dynamodb", opts),
            store_client("dynamodb", opts, check=True),
            create_table=opts.create_checkpoint_table,
        )
    if scheme in ("", "file") or len(scheme) == 1:
        return FileCheckpointStore(uri)
    raise CheckpointStoreError(
        f"option 'checkpointStore': unsupported URI scheme {scheme!r} in {uri!r}; "
        "use a local directory, file:///PATH, s3://BUCKET/PREFIX or dynamodb://TABLE"
    )
