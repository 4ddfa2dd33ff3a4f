#!/usr/bin/env bash
# EMR bootstrap action: runs on every node before applications start.
# The --py-files zip carries kinesis_source, pyspark_kinesis and aws_kinesis_agg; EMR's
# Python has boto3. What it may lack is protobuf, which aws_kinesis_agg's generated
# messages need for KPL deaggregation. Installing it here is the only step needed.
# (Alternative: build the zip with scripts/package.sh --with-protobuf and skip this.)
set -euo pipefail
if ! python3 -c 'import google.protobuf' 2>/dev/null; then
  sudo python3 -m pip install --quiet 'protobuf>=4.21'
fi
