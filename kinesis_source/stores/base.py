"""The checkpoint store interface: where each (batch, shard) read records its end
(docs/design.md section 3).

A store maps ``(query, batch, shardId)`` to a small JSON value and offers one atomic
operation, put-if-absent, so that of two task attempts racing on the same key exactly one
wins. Stores never hold credentials.
"""

from __future__ import annotations

import logging
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, TypeVar

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
        """Forget every batch numbered below ``batch`` (``PURGE_ALL``: every batch).

        Raises ``CheckpointStoreError`` when it cannot: the reader logs it and purges again
        at the next commit (docs/design.md section 3), never failing the query for it."""

    @abstractmethod
    def check(self) -> None:
        """Fail with ``CheckpointStoreError`` naming the URI if the store is unusable,
        including when its put-if-absent does not hold (a second put of a key must lose)."""


# purge_before(..., PURGE_ALL) forgets a stream's whole query (a stream removed from it).
PURGE_ALL = 10**12 - 1

T = TypeVar("T")


def parse_entry(uri: str, key: str, parse: Callable[[], T]) -> T:
    """``parse()`` of the entry stored at ``key``; a corrupt one is a
    ``CheckpointStoreError`` naming the store, the key and what is wrong."""
    try:
        return parse()
    except (KeyError, ValueError, TypeError) as exc:
        what = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
        raise CheckpointStoreError(
            f"checkpoint store {uri}: the entry {key} is corrupt ({what}); it was not written "
            "by this connector or was changed since. Delete it to read that batch afresh "
            "(its records may then be read twice), or restore it"
        ) from exc


def probe_key() -> str:
    """The name of the throw-away entry ``check()`` proves put-if-absent with."""
    return f"_check-{uuid.uuid4().hex}"


def not_exclusive(uri: str, how: str, fix: str) -> CheckpointStoreError:
    """The error when a store's second put of one key also succeeded."""
    return CheckpointStoreError(
        f"checkpoint store {uri}: put-if-absent does not hold: a second {how} of the same "
        "key succeeded. Two attempts of one task could then both record a batch's end, and "
        f"a replay would no longer read exactly that batch. {fix}"
    )


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
    """A ``CheckpointStoreError`` naming the store and what failed, for a botocore error;
    a denied call names the action and the resource."""
    if isinstance(exc, ClientError) and error_code(exc) in ACCESS_DENIED_CODES:
        operation = getattr(exc, "operation_name", "") or action
        return CheckpointStoreError(
            f"checkpoint store {uri}: {action} was denied ({error_code(exc)}): the "
            f"credentials may not call {operation} on {uri}; grant it in their IAM policy "
            "(docs/deploying.md lists the store's permissions)",
            shard_id=shard_id,
        )
    return CheckpointStoreError(
        f"checkpoint store {uri}: {action} failed: {describe_error(exc)}", shard_id=shard_id
    )


ACCESS_DENIED_CODES = frozenset({"AccessDenied", "AccessDeniedException", "403", "Forbidden"})


def batch_key(batch: int) -> str:
    """A batch number as a fixed-width string, so that text order is number order."""
    return f"{batch:0{_BATCH_DIGITS}d}"
