#!/usr/bin/env bash
# EMR bootstrap action: runs on every node before applications start.
# The --py-files zip carries kinesis_source, pyspark_kinesis and aws_kinesis_agg; EMR's
# Python has boto3. What it may lack is protobuf, which aws_kinesis_agg's generated
# messages need for KPL deaggregation: the one step needed. msgspec is optional: without
# it the executors decode GetRecords pages with the json module, about a third as fast
# (compiled, so it cannot travel in the zip).
# (Alternative for protobuf: build the zip with scripts/package.sh --with-protobuf.)
set -euo pipefail
if ! python3 -c 'import google.protobuf' 2>/dev/null; then
  sudo python3 -m pip install --quiet 'protobuf>=4.21'
fi
if ! python3 -c 'import msgspec' 2>/dev/null; then
  sudo python3 -m pip install --quiet 'msgspec>=0.18' || echo "msgspec not installed: pages are decoded by the json module"
fi
