#!/usr/bin/env bash
# Runs the tests in virtual environments of their own, in the checkout, so that nothing
# installed on the machine beforehand is seen:
#   .venv         the newest versions pyproject.toml allows (pip): the whole suite
#   .venv-lowest  the lowest versions of the direct dependencies it allows (uv's
#                 --resolution lowest-direct): the tests marked `lowest` (the source end to
#                 end on moto, KPL, every checkpoint store, the word count, AT_TIMESTAMP)
# It also installs the kinesis-local emulator. Everything is downloaded here, before any
# test runs; pip's and uv's caches make a second run quick.
#
# Usage: scripts/test.sh [pytest arguments]
#   with arguments, only the newest environment runs, with those arguments
# PYTHON: the interpreter both environments are made from (default python3, 3.10 or later).
set -euo pipefail
cd "$(dirname "$0")/.."
python="${PYTHON:-python3}"
start=$SECONDS

# --upgrade: an existing .venv follows new releases too (botocore releases every few days).
[[ -x .venv/bin/python ]] || "$python" -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check \
    --upgrade --upgrade-strategy eager -e '.[test]' uv hatchling

run_lowest=$(( $# == 0 ))
if (( run_lowest )); then
    uv=.venv/bin/uv
    "$uv" venv --quiet --allow-existing --python .venv/bin/python .venv-lowest
    "$uv" pip compile --quiet --resolution lowest-direct --python .venv-lowest/bin/python \
        --extra test pyproject.toml -o .venv-lowest/requirements.txt
    # sync: exactly those versions, even in an environment left by an earlier run.
    "$uv" pip sync --quiet --python .venv-lowest/bin/python .venv-lowest/requirements.txt
    "$uv" pip install --quiet --python .venv-lowest/bin/python --no-deps -e .
fi

# kinesis-mock: AWS-like resharding, ListShards paging and iterator expiry (moto has none).
if [[ ! -f .emulators/node_modules/kinesis-local/main.js ]]; then
    mkdir -p .emulators
    (cd .emulators && npm install --no-save --no-audit --no-fund --loglevel=error kinesis-local@0.6.2)
fi
installed=$SECONDS

versions() {
    "$1" - <<'PY'
from importlib.metadata import version
names = ["pyspark", "boto3", "botocore", "pyarrow", "orjson", "aws-kinesis-agg", "protobuf"]
print(", ".join(f"{name} {version(name)}" for name in names))
PY
}

echo "== newest: $(versions .venv/bin/python)"
status=0
.venv/bin/python -m pytest -q "$@" || status=$?
newest=$SECONDS

if (( run_lowest )); then
    echo "== lowest: $(versions .venv-lowest/bin/python)"
    .venv-lowest/bin/python -m pytest -q -m lowest || status=$?
fi
echo "== time: install $(( installed - start ))s, newest run $(( newest - installed ))s," \
    "lowest run $(( SECONDS - newest ))s"
exit "$status"
