"""boto3 clients, built where they are used and cached per process.

``read()`` runs in executor Python workers that may serve many tasks: building a client
costs tens of milliseconds, so clients are cached by their settings. The cache keys hold
credentials in memory only; nothing here logs or stores them.

Credentials, in order: static keys (``awsAccessKeyId``/``awsSecretKey``/
``awsSessionToken``), else the profile ``awsProfile``, else boto3's default chain
(environment, shared config, web identity for EKS/IRSA, container and instance profile).
With ``roleArn``, those are only the base credentials that assume the role; the assumed
ones are refreshed by botocore before they expire. The same credentials serve the stream
and the checkpoint store.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

import boto3
import botocore.serialize
import botocore.session
from botocore.config import Config
from botocore.credentials import DeferredRefreshableCredentials
from botocore.exceptions import BotoCoreError, ClientError

from kinesis_source import limits
from kinesis_source.errors import CredentialsError
from kinesis_source.options import ConnectionOptions

# botocore's serializer setting for request timestamps in milliseconds (botocore >= 1.40.46).
MILLISECOND_PRECISION = "millisecond"

# Least recently used last out, at most limits.CLIENT_CACHE_MAX each: a worker that serves
# many queries (or credentials that change) does not keep every client it ever built. An
# evicted client is not closed: a read may still hold it; it goes when nothing does.
_CLIENTS: dict[tuple[Any, ...], Any] = {}
_SESSIONS: dict[tuple[Any, ...], boto3.session.Session] = {}
_LOCK = threading.RLock()
V = TypeVar("V")


def _cached(cache: dict[tuple[Any, ...], V], key: tuple[Any, ...]) -> V | None:
    """``cache[key]`` moved to the end (dicts keep insertion order), or None. Hold _LOCK."""
    found = cache.pop(key, None)
    if found is not None:
        cache[key] = found
    return found


def _remember(cache: dict[tuple[Any, ...], V], key: tuple[Any, ...], value: V) -> V:
    """Put ``value`` in ``cache``, dropping the least recently used beyond the bound."""
    cache[key] = value
    while len(cache) > limits.CLIENT_CACHE_MAX:
        del cache[next(iter(cache))]
    return value


_CONFIG = Config(
    connect_timeout=limits.CONNECT_TIMEOUT_SECONDS,
    read_timeout=limits.READ_TIMEOUT_SECONDS,
    retries={"max_attempts": limits.CLIENT_MAX_ATTEMPTS, "mode": "standard"},
    max_pool_connections=limits.PROBE_THREADS,
)
STORE_CONFIG = Config(
    connect_timeout=limits.CONNECT_TIMEOUT_SECONDS,
    read_timeout=limits.READ_TIMEOUT_SECONDS,
    retries={"max_attempts": limits.STORE_MAX_ATTEMPTS, "mode": "standard"},
    max_pool_connections=limits.PROBE_THREADS,
)

# For the driver's start-up check: an unreachable store must fail fast, naming its URI.
CHECK_CONFIG = STORE_CONFIG.merge(
    Config(retries={"max_attempts": limits.STORE_CHECK_MAX_ATTEMPTS, "mode": "standard"})
)


def _credential_key(opts: ConnectionOptions) -> tuple[Any, ...]:
    return (
        opts.region,
        opts.aws_access_key_id,
        opts.aws_secret_key,
        opts.aws_session_token,
        opts.aws_profile,
        opts.role_arn,
        opts.role_session_name,
        opts.role_external_id,
        opts.sts_endpoint_url,
    )


def session(opts: ConnectionOptions) -> boto3.session.Session:
    """The boto3 session holding ``opts``' credentials; one per process and settings."""
    key = _credential_key(opts)
    with _LOCK:
        found = _cached(_SESSIONS, key)
        if found is None:
            found = _remember(_SESSIONS, key, _new_session(opts))
            found.events.register("creating-serializer.kinesis", millisecond_timestamps)
        return found


def millisecond_timestamps(serializer_kwargs: dict[str, Any], **_: Any) -> None:
    """``creating-serializer.kinesis`` handler: send AT_TIMESTAMP with its milliseconds.

    Up to botocore 1.43 the default precision is whole seconds, so AT_TIMESTAMP would start
    up to a second early; those botocores offer ``millisecond``. botocore 1.44 keeps the
    sub-second part by default and still offers ``millisecond``. The option is looked up
    rather than assumed, because a serializer given a precision it does not know refuses to
    be built: a botocore that drops it keeps its default, which then has the sub-second part.
    """
    offered = getattr(botocore.serialize, "TIMESTAMP_PRECISION_OPTIONS", ())
    if MILLISECOND_PRECISION in offered:
        serializer_kwargs["timestamp_precision"] = MILLISECOND_PRECISION


def _new_session(opts: ConnectionOptions) -> boto3.session.Session:
    try:
        base = boto3.session.Session(
            aws_access_key_id=opts.aws_access_key_id,
            aws_secret_access_key=opts.aws_secret_key,
            aws_session_token=opts.aws_session_token,
            profile_name=opts.aws_profile,
            region_name=opts.region,
        )
    except BotoCoreError as exc:
        # ProfileNotFound and friends: their text names the profile, never a secret.
        raise CredentialsError(f"option 'awsProfile': {exc}") from exc
    if opts.role_arn is None:
        return base
    credentials = DeferredRefreshableCredentials(
        refresh_using=_assume_role_refresher(base, opts), method="assume-role"
    )
    core = botocore.session.Session()
    # botocore has no public setter; this is how a session is given refreshable credentials.
    core._credentials = credentials
    return boto3.session.Session(botocore_session=core, region_name=opts.region)


def _assume_role_refresher(base: boto3.session.Session, opts: ConnectionOptions) -> Any:
    sts = base.client("sts", endpoint_url=opts.sts_endpoint_url, config=_CONFIG)

    def refresh() -> dict[str, str]:
        request: dict[str, Any] = {
            "RoleArn": opts.role_arn,
            "RoleSessionName": opts.role_session_name,
            "DurationSeconds": limits.ASSUME_ROLE_SESSION_SECONDS,
        }
        if opts.role_external_id is not None:
            request["ExternalId"] = opts.role_external_id
        try:
            creds = sts.assume_role(**request)["Credentials"]
        except (BotoCoreError, ClientError) as exc:
            code = (
                exc.response.get("Error", {}).get("Code", "")
                if isinstance(exc, ClientError)
                else type(exc).__name__
            )
            raise CredentialsError(
                f"AssumeRole of {opts.role_arn} failed ({code}): check the options roleArn "
                "and roleExternalId, stsEndpointUrl, and that the base credentials (static "
                "keys, awsProfile or the default chain) may assume the role"
            ) from exc
        return {
            "access_key": creds["AccessKeyId"],
            "secret_key": creds["SecretAccessKey"],
            "token": creds["SessionToken"],
            "expiry_time": creds["Expiration"].isoformat(),
        }

    return refresh


def client(
    service: str,
    opts: ConnectionOptions,
    region: str | None = None,
    endpoint_url: str | None = None,
    config: Config | None = None,
) -> Any:
    """A cached client of ``service`` with ``opts``' credentials (default: the stream's region)."""
    config = config or _CONFIG
    key = (service, region or opts.region, endpoint_url, id(config), *_credential_key(opts))
    with _LOCK:
        found = _cached(_CLIENTS, key)
        if found is None:
            found = session(opts).client(
                service, region_name=region or opts.region, endpoint_url=endpoint_url, config=config
            )
            _remember(_CLIENTS, key, found)
        return found


def kinesis_client(opts: ConnectionOptions, *, prepare: Callable[[Any], None] | None = None) -> Any:
    """A Kinesis client for the stream's region, endpoint and credentials.

    botocore's retries are off: retry.py retries Kinesis calls with the user's backoff
    settings. ``prepare`` adapts a client of its own once, when it is built (the executor's
    fast decoder makes ``get_records`` hand back the raw body); clients with another
    ``prepare`` are cached apart, so every other caller gets a plain one.
    """
    key = (
        "kinesis",
        prepare,
        opts.endpoint_url,
        opts.connect_timeout_ms,
        opts.read_timeout_ms,
        *_credential_key(opts),
    )
    with _LOCK:
        found = _cached(_CLIENTS, key)
        if found is None:
            config = Config(
                connect_timeout=opts.connect_timeout_ms / 1000.0,
                read_timeout=opts.read_timeout_ms / 1000.0,
                retries={"total_max_attempts": 1, "mode": "standard"},
                max_pool_connections=limits.PROBE_THREADS,
            )
            found = session(opts).client(
                "kinesis", region_name=opts.region, endpoint_url=opts.endpoint_url, config=config
            )
            if prepare is not None:
                prepare(found)
            _remember(_CLIENTS, key, found)
        return found


def store_client(
    service: str,
    opts: ConnectionOptions,
    *,
    region: str | None = None,
    endpoint_url: str | None = None,
    check: bool = False,
) -> Any:
    """A client for the checkpoint store or the KCL lease table: its own region and endpoint
    (default: the stream's region), the same credentials.

    ``check``: few retries, for the driver's start-up check.
    """
    return client(
        service,
        opts,
        region=region or opts.region,
        endpoint_url=endpoint_url,
        config=CHECK_CONFIG if check else STORE_CONFIG,
    )


def schema_registry_client(opts: ConnectionOptions, endpoint_url: str | None = None) -> Any:
    """A Glue client for the Schema Registry: the stream's region and credentials, and the
    endpoint ``schemaRegistryEndpointUrl`` when given (tests; private endpoints)."""
    return client("glue", opts, endpoint_url=endpoint_url)
