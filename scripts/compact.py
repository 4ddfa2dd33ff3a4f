"""Merge the small Parquet files of closed hour partitions into files of a target size.

What the seed pipeline did with s3-dist-cp ``--groupBy --targetSize``, for the output of
examples/orders_etl.py. A partition ``ot=yyyyMMddHH`` is closed when its hour ended more
than ``--closed-after`` hours ago, or, without that option, when a newer partition exists.
Each closed partition with more files than its size needs is read, written into a temp
directory beside it, checked to hold the same number of rows, and swapped in with one
atomic rename (Linux ``renameat2(RENAME_EXCHANGE)``): a reader that lists the partition
sees either all old files or all new ones. Files that the ETL moved into the partition
while it was being merged are carried over into the new one, not lost.

Paths are on a local (or mounted) filesystem: the swap is a rename.
"""

from __future__ import annotations

import argparse
import ctypes
import errno
import json
import logging
import math
import os
import shutil
import sys
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from examples.spark_env import get_spark

log = logging.getLogger(__name__)

PARTITION_COLUMN = "ot"
PARTITION_FORMAT = "%Y%m%d%H"
DEFAULT_TARGET_SIZE_MB = 128
# Linux <linux/fcntl.h> and <linux/fs.h>.
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


class CompactionError(Exception):
    """A partition could not be compacted; it was left as it was."""


@dataclass(frozen=True)
class PartitionResult:
    partition: str
    files_before: int
    files_after: int
    rows: int
    bytes_before: int


def partition_hour(name: str, column: str = PARTITION_COLUMN) -> datetime | None:
    """The start of the hour a directory ``<column>=yyyyMMddHH`` holds (UTC), else None."""
    prefix = f"{column}="
    if not name.startswith(prefix):
        return None
    try:
        return datetime.strptime(name[len(prefix) :], PARTITION_FORMAT).replace(tzinfo=timezone.utc)
    except ValueError:
        return None


def closed_partitions(
    names: Sequence[str],
    now: datetime,
    closed_after: timedelta | None,
    column: str = PARTITION_COLUMN,
) -> list[str]:
    """Which partitions no longer receive data, oldest first.

    With ``closed_after``: those whose hour ended at least that long before ``now``.
    Without: all but the newest.
    """
    hours = sorted((h, n) for n in names if (h := partition_hour(n, column)) is not None)
    if closed_after is None:
        return [n for _, n in hours[:-1]]
    return [n for h, n in hours if h + timedelta(hours=1) + closed_after <= now]


def files_needed(total_bytes: int, target_bytes: int) -> int:
    return max(1, math.ceil(total_bytes / target_bytes))


def data_files(directory: Path) -> list[Path]:
    """The Parquet files a reader sees: names starting with _ or . are not data."""
    return sorted(
        p for p in directory.glob("*.parquet") if p.is_file() and not p.name.startswith(("_", "."))
    )


def exchange(a: Path, b: Path) -> bool:
    """Swap two directories atomically; False where the OS or filesystem cannot."""
    fn = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if fn is None:
        return False
    rc = fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if rc == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(a), None, str(b))


def swap_in(new: Path, partition: Path) -> Path:
    """Put ``new`` where ``partition`` is; return where the old files now are."""
    if exchange(new, partition):
        return new
    log.warning(
        "atomic directory exchange unsupported here; swapping %s with two renames", partition
    )
    old = partition.parent / f"_compact-old-{partition.name}-{uuid.uuid4().hex[:8]}"
    os.rename(partition, old)
    os.rename(new, partition)
    return old


def compact_partition(spark: Any, partition: Path, target_bytes: int) -> PartitionResult | None:
    """Merge ``partition``'s files into as few as ``target_bytes`` needs; None if no gain."""
    files = data_files(partition)
    size = sum(f.stat().st_size for f in files)
    wanted = files_needed(size, target_bytes)
    if len(files) <= wanted:
        return None
    df = spark.read.parquet(*(str(f) for f in files))
    rows = df.count()
    tmp = partition.parent / f"_compact-{partition.name}-{uuid.uuid4().hex[:8]}"
    try:
        df.coalesce(wanted).write.parquet(str(tmp))
        for extra in tmp.iterdir():  # _SUCCESS, .crc files: not data, not wanted
            if extra.name.startswith(("_", ".")):
                extra.unlink()
        written = spark.read.parquet(str(tmp)).count()
        if written != rows:
            raise CompactionError(f"{partition}: wrote {written} rows, read {rows}; left as is")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    new_files = len(data_files(tmp))
    old = swap_in(tmp, partition)
    # Files the ETL moved in after the listing above are not in the merge: carry them over.
    listed = {f.name for f in files}
    carried = [f for f in data_files(old) if f.name not in listed]
    for f in carried:
        os.replace(f, partition / f.name)
    shutil.rmtree(old)
    log.info("%s: %d files -> %d (%d rows)", partition.name, len(files), new_files, rows)
    return PartitionResult(
        partition.name, len(files), new_files + len(carried), rows, bytes_before=size
    )


def compact(
    spark: Any,
    root: Path,
    *,
    target_bytes: int = DEFAULT_TARGET_SIZE_MB * 1024 * 1024,
    closed_after: timedelta | None = None,
    now: datetime | None = None,
    column: str = PARTITION_COLUMN,
) -> list[PartitionResult]:
    """Compact every closed partition under ``root``; results for those that changed."""
    now = now or datetime.now(timezone.utc)
    names = [p.name for p in root.iterdir() if p.is_dir()]
    results = []
    for name in closed_partitions(names, now, closed_after, column):
        result = compact_partition(spark, root / name, target_bytes)
        if result is not None:
            results.append(result)
    return results


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("path", type=Path, help="the table root, holding ot=yyyyMMddHH/ directories")
    p.add_argument("--target-size-mb", type=float, default=DEFAULT_TARGET_SIZE_MB)
    p.add_argument(
        "--closed-after",
        type=float,
        metavar="HOURS",
        help="a partition is closed this many hours after its hour ended "
        "(default: every partition but the newest is closed)",
    )
    p.add_argument("--partition-column", default=PARTITION_COLUMN)
    p.add_argument("--master", help="Spark master (default local[2] unless spark-submit sets it)")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("py4j").setLevel(logging.WARNING)
    if not args.path.is_dir():
        raise SystemExit(f"{args.path}: not a directory")
    spark = get_spark("compact", args.master)
    results = compact(
        spark,
        args.path,
        target_bytes=max(1, int(args.target_size_mb * 1024 * 1024)),
        closed_after=None if args.closed_after is None else timedelta(hours=args.closed_after),
        column=args.partition_column,
    )
    print(json.dumps([asdict(r) for r in results], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
