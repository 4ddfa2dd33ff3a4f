"""Retries of Kinesis calls: exponential backoff with full jitter.

Throttling (ProvisionedThroughputExceeded, LimitExceeded, ...), 5xx answers, connection
resets and timeouts are retried up to ``maxRetries`` times; the n-th retry waits a random
time in [0, min(retryMaxDelayMs, retryBaseDelayMs * 2**n)] ("full jitter", which spreads
the retries of many shards hitting one limit). Then the call fails with the caller's
direction's error (``KinesisReadError``, or ``KinesisWriteError`` for the sink) naming the
call, the shard and the last error. botocore's own retries
are switched off for Kinesis clients (clients.py) so that these settings are the whole
story.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

from kinesis_source.errors import KinesisReadError, KinesisSourceError
from kinesis_source.options import ConnectionOptions

log = logging.getLogger(__name__)

T = TypeVar("T")

THROTTLING_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "LimitExceededException",
        "ThrottlingException",
        "Throttling",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "KMSThrottlingException",
    }
)
TRANSIENT_CODES = frozenset(
    {
        "InternalFailure",
        "InternalFailureException",
        "InternalServerError",
        "InternalError",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "RequestTimeout",
        "RequestTimeoutException",
    }
)
# A call the credentials may not make: no retry helps; the error names the call and what.
ACCESS_DENIED_CODES = frozenset({"AccessDeniedException", "AccessDenied"})
THROTTLED = "throttled"
TRANSIENT = "transient"


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int
    base_delay_ms: int
    max_delay_ms: int

    def delay_ms_cap(self, retry: int) -> int:
        """Upper bound of the wait before retry number ``retry`` (0-based)."""
        return int(min(self.max_delay_ms, self.base_delay_ms * (2 ** min(retry, 30))))


def policy_of(opts: ConnectionOptions) -> RetryPolicy:
    return RetryPolicy(opts.max_retries, opts.retry_base_delay_ms, opts.retry_max_delay_ms)


def is_denied(exc: BaseException | None) -> bool:
    return (
        isinstance(exc, ClientError)
        and exc.response.get("Error", {}).get("Code") in ACCESS_DENIED_CODES
    )


def denied_message(action: str, resource: str) -> str:
    """What a user reads when IAM refuses ``action`` (an API name) on ``resource``."""
    return (
        f"{action} on {resource} was denied (AccessDeniedException): the credentials may "
        f"not call kinesis:{action} there; allow it in their IAM policy (docs/deploying.md "
        "lists the permissions)"
    )


def classify(exc: BaseException) -> str | None:
    """``THROTTLED``, ``TRANSIENT`` or None (not worth retrying)."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        if code in THROTTLING_CODES:
            return THROTTLED
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        if code in TRANSIENT_CODES or int(status) >= 500:
            return TRANSIENT
        return None
    if isinstance(exc, (BotoConnectionError, HTTPClientError)):
        # Connection refused or reset, read and connect timeouts.
        return TRANSIENT
    return None


def describe(exc: BaseException) -> str:
    """A short description of a botocore error (code and message), free of credentials."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', 'error')}: {error.get('Message', '')}".strip()
    return f"{type(exc).__name__}: {exc}"


def call_with_retry(
    call: Callable[[], T],
    policy: RetryPolicy,
    *,
    what: str,
    stream: str,
    shard_id: str | None = None,
    failure: type[KinesisSourceError] = KinesisReadError,
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
) -> T:
    """Run ``call``; retry throttling and transient errors as ``policy`` says.

    Out of retries, raises ``failure``: the direction's error (``KinesisReadError`` for
    reads, ``KinesisWriteError`` for the sink's calls).
    """
    draw = rng.uniform if rng is not None else random.uniform
    where = f"stream {stream!r}" + (f" shard {shard_id}" if shard_id else "")
    retry = 0
    while True:
        try:
            return call()
        except (ClientError, BotoCoreError) as exc:
            kind = classify(exc)
            if kind is None and is_denied(exc):
                raise failure(
                    denied_message(what, where), stream=stream, shard_id=shard_id
                ) from exc
            if kind is None:
                raise
            if retry >= policy.max_retries:
                raise failure(
                    f"{what} on {where} failed after {retry + 1} attempts "
                    f"(maxRetries={policy.max_retries}); last error: {describe(exc)}",
                    stream=stream,
                    shard_id=shard_id,
                ) from exc
            delay_ms = draw(0, policy.delay_ms_cap(retry))
            retry += 1
            log.warning(
                "%s on %s %s (%s); retry %d of %d in %.0f ms",
                what,
                where,
                kind,
                describe(exc),
                retry,
                policy.max_retries,
                delay_ms,
            )
            sleep(delay_ms / 1000.0)
