#!/usr/bin/env bash
# Run scripts/smoke_job.py with spark-submit --py-files ZIP in local mode, isolated from any
# kinesis_source the Python installation provides: no PYTHONPATH, no user site, a scratch
# working directory. The job reports where each connector module came from; this script
# fails unless every one of them was imported from the zip, on the driver and the executors.
#
# Usage: scripts/smoke_zip.sh ZIP ENDPOINT_URL STREAM [register|auto]
#   register (default)  the job calls kinesis_source.register(spark); nothing else is set
#   auto                the job calls no register: the zip is exported on PYTHONPATH for the
#                       driver JVM (spark-submit), as docs/deploying.md says client mode needs then
# PYTHON selects the interpreter (default python3); it needs pyspark, boto3 and protobuf.
set -euo pipefail

zip="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
endpoint="$2"
stream="$3"
mode="${4:-register}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="$(command -v "${PYTHON:-python3}")"
work="$(mktemp -d)"
trap "rm -rf \"$work\"" EXIT
cp "$root/scripts/smoke_job.py" "$work/job.py"

spark_home="$(cd "$work" && env -u PYTHONPATH "$python" -c \
  'import os, pyspark; print(os.path.dirname(pyspark.__file__))')"

driver_path=()
[[ "$mode" == auto ]] && driver_path=(PYTHONPATH="$zip")
cd "$work"
env -u PYTHONPATH -u SPARK_HOME PYTHONNOUSERSITE=1 "${driver_path[@]}" \
  PYSPARK_PYTHON="$python" PYSPARK_DRIVER_PYTHON="$python" \
  "$spark_home/bin/spark-submit" \
    --master "local[2]" \
    --conf spark.ui.enabled=false \
    --conf spark.sql.shuffle.partitions=2 \
    --py-files "$zip" \
    "$work/job.py" "$endpoint" "$stream" "$work/store" "$work/checkpoint" "$mode" \
    >"$work/out.txt" 2>"$work/err.txt" || {
      echo "smoke_zip.sh: spark-submit failed; its stderr and stdout end with:" >&2
      tail -40 "$work/err.txt" >&2
      tail -20 "$work/out.txt" >&2
      exit 1
    }

report="$(grep '^SMOKE ' "$work/out.txt" | cut -c7-)"
if [[ -z "$report" ]]; then
  echo "smoke_zip.sh: the job printed no report" >&2
  tail -40 "$work/err.txt" >&2
  exit 1
fi
"$python" - "$(basename "$zip")" "$report" <<'PY'
import json, sys

# spark-submit copies the zip into its own scratch directory: match on the zip's name.
zip_name, report = sys.argv[1], json.loads(sys.argv[2])
for side in ("driver", "executor"):
    for module, path in report[side].items():
        # kinesis_source -> .../kinesis_source.zip/kinesis_source/__init__.py, and
        # kinesis_source.aws.clients -> .../kinesis_source.zip/kinesis_source/aws/clients.py
        if f"{zip_name}/{module.replace('.', '/')}" not in path:
            sys.exit(f"smoke_zip.sh: {side} imported {module} from {path}, not from the zip")
PY
# The driver's log (Spark's and the Python workers' stderr), for callers that check it.
cat "$work/err.txt" >&2
echo "$report"
