#!/usr/bin/env bash
# Build the artefacts a cluster needs:
#   dist/kinesis_source.zip   for spark-submit --py-files: kinesis_source, pyspark_kinesis and
#                             aws_kinesis_agg (pure Python); boto3 and protobuf come from the
#                             cluster (EMR has boto3; for protobuf see docs/deploying.md)
#   dist/kinesis_source-*.whl for pip install on the cluster's Python
#
# Usage: scripts/package.sh [--dist DIR] [--with-protobuf] [--no-wheel]
#   --with-protobuf  also put protobuf's pure-Python modules in the zip, for clusters
#                    with no protobuf installed at all
# PYTHON selects the interpreter whose site-packages provides aws_kinesis_agg (default python3).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dist="$root/dist"
with_protobuf=0
wheel=1
while [[ $# -gt 0 ]]; do
  case "$1" in
    --dist) dist="$2"; shift 2 ;;
    --with-protobuf) with_protobuf=1; shift ;;
    --no-wheel) wheel=0; shift ;;
    *) echo "package.sh: unknown argument $1 (see the usage at the top of this script)" >&2; exit 2 ;;
  esac
done
python="${PYTHON:-python3}"
mkdir -p "$dist"
dist="$(cd "$dist" && pwd)"

"$python" - "$root" "$dist/kinesis_source.zip" "$with_protobuf" <<'PY'
"""Write the --py-files zip: sources only (no caches), sorted, with fixed timestamps."""
import importlib.util
import os
import sys
import zipfile

root, target, with_protobuf = sys.argv[1], sys.argv[2], sys.argv[3] == "1"


def package_dir(name):
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        sys.exit(f"package.sh: {name} is not installed for {sys.executable}; pip install it")
    return list(spec.submodule_search_locations)[0]


# (directory on disk, its name inside the zip)
trees = [
    (os.path.join(root, "kinesis_source"), "kinesis_source"),
    (os.path.join(root, "pyspark_kinesis"), "pyspark_kinesis"),
    (package_dir("aws_kinesis_agg"), "aws_kinesis_agg"),
]
if with_protobuf:
    trees.append((package_dir("google.protobuf"), "google/protobuf"))

entries = []
for base, arcbase in trees:
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames[:] = sorted(d for d in dirnames if d not in ("__pycache__", "testdata"))
        for name in sorted(filenames):
            if name.endswith((".py", ".typed")):
                path = os.path.join(dirpath, name)
                arc = os.path.join(arcbase, os.path.relpath(path, base)).replace(os.sep, "/")
                entries.append((arc, path))

# zipimport cannot import an implicit namespace package, and "google" is one: a
# pkgutil-style __init__ makes it importable from the zip and still merges it with any
# other google.* package on the path.
extra = {}
if with_protobuf:
    extra["google/__init__.py"] = (
        b"__path__ = __import__('pkgutil').extend_path(__path__, __name__)\n"
    )


def add(zf, arc, data):
    info = zipfile.ZipInfo(arc, date_time=(2020, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    zf.writestr(info, data)


tmp = target + ".tmp"
with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
    for arc, data in sorted(extra.items()):
        add(zf, arc, data)
    for arc, path in sorted(entries):
        with open(path, "rb") as handle:
            add(zf, arc, handle.read())
os.replace(tmp, target)
print(f"wrote {target} ({len(entries) + len(extra)} files)")
PY

if [[ "$wheel" == 1 ]]; then
  # Build from a copy, so that build/ and *.egg-info never land in the work tree.
  src="$(mktemp -d)"
  trap 'rm -rf "$src"' EXIT
  cp "$root/pyproject.toml" "$src/"
  [[ -f "$root/README.md" ]] && cp "$root/README.md" "$src/"
  # Sources only, subpackages included; caches stay behind.
  (cd "$root" && find kinesis_source pyspark_kinesis -name '*.py' -not -path '*/__pycache__/*' \
    -exec cp --parents {} "$src/" \;)
  # Without build isolation when hatchling is at hand (offline-friendly), else isolated.
  "$python" -m pip wheel --quiet --no-deps --no-build-isolation -w "$dist" "$src" 2>/dev/null \
    || "$python" -m pip wheel --quiet --no-deps -w "$dist" "$src"
  ls "$dist"/kinesis_source-*.whl
fi
