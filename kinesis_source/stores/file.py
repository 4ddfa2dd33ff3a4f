"""The local-directory checkpoint store: local mode, tests, or a file system every executor
shares."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from urllib.parse import unquote, urlparse

from kinesis_source.errors import CheckpointStoreError
from kinesis_source.source.positions import ShardEnd
from kinesis_source.stores.base import (
    PURGE_ALL,
    CheckpointStore,
    batch_key,
    entry,
    not_exclusive,
    parse_entry,
    probe_key,
)


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
        self._check_link()

    def _check_link(self) -> None:
        """Put-if-absent is os.link: prove that it works here and refuses an existing name
        (some network and FUSE file systems have no hard links)."""
        final = self.root / f".{probe_key()}.json"
        made: list[str] = []
        try:
            for _ in range(2):
                fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".probe-", suffix=".tmp")
                os.close(fd)
                made.append(tmp)
            os.link(made[0], final)
            try:
                os.link(made[1], final)
            except FileExistsError:
                return
            raise not_exclusive(
                self.uri,
                "hard link",
                "Use a local file system or one with POSIX hard links, or an s3:// or "
                "dynamodb:// store",
            )
        except OSError as exc:
            raise CheckpointStoreError(
                f"checkpoint store {self.uri}: put-if-absent needs hard links (os.link), "
                f"which this file system refused: {exc}. Use a local file system or one with "
                "POSIX hard links, or an s3:// or dynamodb:// store"
            ) from exc
        finally:
            for path in [*made, str(final)]:
                with contextlib.suppress(OSError):
                    os.unlink(path)

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
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise CheckpointStoreError(
                f"checkpoint store {self.uri}: cannot read {path}: {exc}"
            ) from exc
        return parse_entry(self.uri, str(path), lambda: ShardEnd.from_json(json.loads(text)))

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
            for name in names:
                if name.isdigit() and int(name) < batch:
                    shutil.rmtree(parent / name)
            if batch == PURGE_ALL:
                # A stream removed from the query: no read writes here any more.
                parent.rmdir()
        except FileNotFoundError:
            return
        except OSError as exc:
            raise CheckpointStoreError(
                f"checkpoint store {self.uri}: purging {parent} failed: {exc}"
            ) from exc
