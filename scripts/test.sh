#!/usr/bin/env bash
# Installs what the tests need (the package with its test extra, the kinesis-local emulator)
# and runs the whole suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m pip install --quiet --disable-pip-version-check \
    --config-settings editable_mode=compat -e '.[test]'
# kinesis-mock: AWS-like resharding, ListShards paging and iterator expiry (moto has none).
if [ ! -f .emulators/node_modules/kinesis-local/main.js ]; then
    mkdir -p .emulators
    (cd .emulators && npm install --no-save --no-audit --no-fund --loglevel=error kinesis-local@0.6.2)
fi
# npm aws-kinesis-agg: the Node reader of the sink's KPL aggregates (tests/node).
if [ ! -d tests/node/node_modules/aws-kinesis-agg ]; then
    (cd tests/node && npm install --no-save --no-audit --no-fund --loglevel=error)
fi
exec python3 -m pytest -q "$@"
