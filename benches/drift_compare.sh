#!/usr/bin/env bash
# Drift detection end to end (load parquet, three detectors, statistical tests, report)
# against the spec's pandas functions (../shared/bench/drift_ref.py) on the same
# interactions.parquet, alternating, in one run.
#
#   benches/drift_compare.sh HOME [RUNS]
#
# HOME must hold data/processed/interactions.parquet (e.g. the demo-home of
# `recops demo`: 1,000,000 interactions). Creates venv-ref/ (pandas, pyarrow) if missing.
set -euo pipefail
cd "$(dirname "$0")/.."
HOME_DIR=${1:?usage: benches/drift_compare.sh HOME [RUNS]}
RUNS=${2:-3}
REF=${DRIFT_REF:-../shared/bench/drift_ref.py}
if ! venv-ref/bin/python -c "import pandas, pyarrow" >/dev/null 2>&1; then
  python3 -m venv venv-ref
  venv-ref/bin/pip install -q --disable-pip-version-check pandas pyarrow scipy numpy
fi
[ -x target/release/drift-detection ] || cargo build --release -q --bin drift-detection
PARQUET="$HOME_DIR/data/processed/interactions.parquet"
for i in $(seq "$RUNS"); do
  ref=$(venv-ref/bin/python "$REF" "$PARQUET" | python3 -c 'import json,sys; print(json.load(sys.stdin)["seconds"])')
  t0=$(date +%s.%N)
  RECOPS_LOG=warn target/release/drift-detection --home "$HOME_DIR" --json > /dev/null
  t1=$(date +%s.%N)
  ours=$(echo "$t1 - $t0" | bc -l)
  printf 'run %s: pandas reference %.3f s (in-process, after imports), recops drift-detection %.3f s (whole process)\n' "$i" "$ref" "$ours"
done
