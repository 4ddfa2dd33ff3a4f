"""Checkpoint stores (docs/design.md section 3). Run in both: executors record each
(batch, shard) read's end with a put-if-absent, the driver reads the ends and purges.

- ``base``: the interface every store keeps.
- ``file``: a local directory (local mode, tests, a shared file system).
- ``s3``: ``s3://BUCKET/PREFIX``, put-if-absent by ``If-None-Match``.
- ``dynamodb``: ``dynamodb://TABLE``, put-if-absent by a condition expression.

``open_store`` is the one factory. It lives here, above the stores, so that no store imports
it back.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from kinesis_source.aws.clients import store_client
from kinesis_source.errors import CheckpointStoreError
from kinesis_source.stores.base import CheckpointStore
from kinesis_source.stores.file import FileCheckpointStore

if TYPE_CHECKING:
    # The source owns the store options; a store needs no more of the source than them.
    from kinesis_source.source.options import KinesisOptions

__all__ = ["CheckpointStore", "FileCheckpointStore", "open_store"]


def open_store(opts: KinesisOptions) -> CheckpointStore:
    """The store ``opts.checkpoint_store`` names; everything it needs comes from ``opts``,
    which is picklable, so executors open the same store as the driver."""
    uri = opts.checkpoint_store
    scheme = urlparse(uri).scheme.lower()
    if scheme == "s3":
        from kinesis_source.stores.s3 import S3CheckpointStore

        return S3CheckpointStore(uri, _client("s3", opts), _client("s3", opts, check=True))
    if scheme == "dynamodb":
        from kinesis_source.stores.dynamodb import DynamoDBCheckpointStore

        return DynamoDBCheckpointStore(
            uri,
            _client("dynamodb", opts),
            _client("dynamodb", opts, check=True),
            create_table=opts.create_checkpoint_table,
        )
    if scheme in ("", "file") or len(scheme) == 1:
        return FileCheckpointStore(uri)
    raise CheckpointStoreError(
        f"option 'checkpointStore': unsupported URI scheme {scheme!r} in {uri!r}; "
        "use a local directory, file:///PATH, s3://BUCKET/PREFIX or dynamodb://TABLE"
    )


def _client(service: str, opts: KinesisOptions, *, check: bool = False) -> Any:
    return store_client(
        service,
        opts,
        region=opts.checkpoint_region,
        endpoint_url=opts.checkpoint_endpoint_url,
        check=check,
    )
