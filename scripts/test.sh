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
exec python3 -m pytest -q "$@"
