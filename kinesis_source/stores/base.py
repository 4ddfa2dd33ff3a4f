"""The checkpoint store interface: where each (batch, shard) read records its end
(docs/design.md section 3).

A store maps ``(query, batch, shardId)`` to a small JSON value and offers one atomic
operation, put-if-absent, so that of two task attempts racing on the same key exactly one
wins. Stores never hold credentials.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from typing import Any

from botocore.exceptions import ClientError

from kinesis_source.errors import CheckpointStoreError
from kinesis_source.source.positions import ShardEnd

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
