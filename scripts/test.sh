#!/usr/bin/env bash
# Runs the tests in virtual environments of their own, in the checkout, so that nothing
# installed on the machine beforehand is seen:
#   .venv         the newest versions pyproject.toml allows: the whole suite
#   .venv-lowest  each direct dependency at its lower bound (what uv calls
#                 --resolution lowest-direct), the rest as new as fits: the tests marked
#                 `lowest` (the source end to end on moto, KPL, every checkpoint store, the
#                 word count, AT_TIMESTAMP milliseconds)
# It also installs the kinesis-local emulator. Everything is downloaded here, before any
# test runs; pip's cache makes a second run quick.
#
# Usage: scripts/test.sh [pytest arguments]
#   with arguments, only the newest environment runs, with those arguments
# PYTHON: the interpreter both environments are made from (default python3, 3.10 or later).
set -euo pipefail
cd "$(dirname "$0")/.."
python="${PYTHON:-python3}"
start=$SECONDS

# --no-compile: bytecode is written on first import instead; pyspark alone has thousands
# of modules. --upgrade: an existing .venv follows new releases too (botocore releases
# every few days).
pip_install=(-m pip install --quiet --disable-pip-version-check --no-compile)
[[ -x .venv/bin/python ]] || "$python" -m venv .venv
.venv/bin/python "${pip_install[@]}" --upgrade --upgrade-strategy eager \
    -e '.[test]' hatchling packaging

run_lowest=$(( $# == 0 ))
if (( run_lowest )); then
    [[ -x .venv-lowest/bin/python ]] || "$python" -m venv .venv-lowest
    .venv/bin/python - > .venv-lowest/requirements.txt <<'PY'
"""The package's requirements and its test extra's, each pinned to its lower bound."""
import sys
from importlib.metadata import requires

from packaging.requirements import Requirement

for text in requires("kinesis-source") or []:
    req = Requirement(text)
    if req.marker is not None and not req.marker.evaluate({"extra": "test"}):
        continue
    lowest = [spec.version for spec in req.specifier if spec.operator in (">=", "==")]
    if not lowest:
        sys.exit(f"scripts/test.sh: {req.name} has no lower bound in pyproject.toml")
    # pyspark[connect] (the Connect test's client) wants pyarrow >= 18, which would hide
    # pyarrow's own lower bound; no test of the lowest run uses Spark Connect.
    kept = sorted(req.extras - {"connect"}) if req.name == "pyspark" else sorted(req.extras)
    extras = f"[{','.join(kept)}]" if kept else ""
    print(f"{req.name}{extras}=={lowest[0]}")
PY
    .venv-lowest/bin/python "${pip_install[@]}" -r .venv-lowest/requirements.txt
    .venv-lowest/bin/python "${pip_install[@]}" --no-deps -e .
fi

# kinesis-mock: AWS-like resharding, ListShards paging and iterator expiry (moto has none).
if [[ ! -f .emulators/node_modules/kinesis-local/main.js ]]; then
    mkdir -p .emulators
    (cd .emulators && npm install --no-save --no-audit --no-fund --loglevel=error kinesis-local@0.6.2)
fi
# npm aws-kinesis-agg: the Node reader of the sink's KPL aggregates (tests/node).
if [[ ! -d tests/node/node_modules/aws-kinesis-agg ]]; then
    (cd tests/node && npm install --no-save --no-audit --no-fund --loglevel=error)
fi
installed=$SECONDS

versions() {
    "$1" - <<'PY'
from importlib.metadata import version
names = ["pyspark", "boto3", "botocore", "pyarrow", "msgspec", "aws-kinesis-agg", "protobuf",
         "fastavro"]
print(", ".join(f"{name} {version(name)}" for name in names))
PY
}

# The whole suite waits more than it computes (emulators, triggers, Spark's scheduling), so
# it runs on WORKERS processes (pytest-xdist), a test file per worker at a time so that a
# file's fixtures stay in one process; each worker has its own SparkSession and emulators
# (session fixtures, ports chosen free). Tests marked `solo` are timing-sensitive (a
# trigger against a service rule, an executor killed under a waiting task) and run
# afterwards, alone.
workers="${WORKERS:-3}"
suite() {  # suite PYTHON [MARK]: the tests (of MARK) in parallel, then their solo ones alone
    local python=$1 only=${2:+"$2 and "} rc=0
    "$python" -m pytest -q -n "$workers" --dist loadfile -m "${only}not solo" || status=$?
    "$python" -m pytest -q -m "${only}solo" || rc=$?
    # 5: no test of MARK is solo, which is no failure.
    (( rc == 0 || rc == 5 )) || status=$rc
}

echo "== newest: $(versions .venv/bin/python)"
status=0
if (( $# )); then
    .venv/bin/python -m pytest -q "$@" || status=$?
else
    suite .venv/bin/python
fi
newest=$SECONDS

if (( run_lowest )); then
    echo "== lowest: $(versions .venv-lowest/bin/python)"
    suite .venv-lowest/bin/python lowest
fi
echo "== time: install $(( installed - start ))s, newest run $(( newest - installed ))s," \
    "lowest run $(( SECONDS - newest ))s"
exit "$status"
