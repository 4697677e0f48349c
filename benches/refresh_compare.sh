#!/usr/bin/env bash
# Data refresh, side by side in one run: the pandas reference
# (shared/bench/refresh_ref.py: read, validate ratings, dedup, keyword scoring, parquet,
# confidence CSR + save_npz, mappings) and recops' data-refresh on the same generated CSV:
#   1. full refresh of N interactions (CSV -> all processed outputs) in an empty home;
#   2. incremental refresh of 100 new rows onto that.
#
#   benches/refresh_compare.sh [N] [RUNS]      (default 1000000 interactions, 3 runs)
#
# Needs a venv with pandas pyarrow scipy numpy in ./venv-ref (created if missing:
# python3 -m venv venv-ref && venv-ref/bin/pip install pandas pyarrow scipy numpy).
# Reports the median over RUNS, wall time of each whole process for recops (start-up,
# lock, tracking and output validation included) and the script's own timer for the
# reference (without Python start-up and imports).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-1000000}
RUNS=${2:-3}
REF=${REFRESH_REF:-../shared/bench/refresh_ref.py}
PY=${REFRESH_PYTHON:-venv-ref/bin/python}
if [ ! -x "$PY" ]; then
  python3 -m venv venv-ref && venv-ref/bin/pip install -q pandas pyarrow scipy numpy
fi
cargo build --release -q --bin recops --bin data-refresh
RECOPS=target/release/recops
REFRESH=target/release/data-refresh
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
export RECOPS_LOG=warn

# The input: the spec's shop size (26,000 users x 2,200 products), N rows, one CSV.
$RECOPS --home "$TMP/gen" gen-data --users 26000 --products 2200 --interactions "$N" --seed 42 >/dev/null
CSV=$(ls "$TMP"/gen/data/staging/*.csv)
$RECOPS --home "$TMP/inc" gen-data --users 26000 --products 2200 --interactions 100 --seed 7 \
  --start-date 2025-01-01 --days 30 >/dev/null
INC=$(ls "$TMP"/inc/data/staging/*.csv)
echo "input: $N rows, $(du -m "$CSV" | cut -f1) MB CSV; incremental: 100 rows; $(nproc) cores; median of $RUNS runs"

now() { date +%s.%N; }
calc() { "$PY" -c "print($1)"; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

ref_times=(); full_times=(); inc_times=()
for i in $(seq "$RUNS"); do
  rm -rf "$TMP/ref"
  ref_times+=("$("$PY" "$REF" "$CSV" "$TMP/ref" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["seconds"])')")

  H="$TMP/home$i"
  mkdir -p "$H/data/staging"
  cp "$CSV" "$H/data/staging/"
  t0=$(now); $REFRESH --home "$H" --json >"$TMP/full$i.json"; t1=$(now)
  full_times+=("$(calc "$t1 - $t0")")
  cp "$INC" "$H/data/staging/"
  t0=$(now); $REFRESH --home "$H" --json >"$TMP/inc$i.json"; t1=$(now)
  inc_times+=("$(calc "$t1 - $t0")")
  grep -q '"type": "incremental"' "$TMP/inc$i.json" || { echo "expected an incremental refresh"; cat "$TMP/inc$i.json"; exit 1; }
done

ref=$(printf '%s\n' "${ref_times[@]}" | median)
full=$(printf '%s\n' "${full_times[@]}" | median)
inc=$(printf '%s\n' "${inc_times[@]}" | median)
printf '%-44s %8.3f s   (runs: %s)\n' "pandas reference, full refresh:" "$ref" "${ref_times[*]}"
printf '%-44s %8.3f s   (runs: %s)\n' "recops data-refresh, full refresh:" "$full" "${full_times[*]}"
printf '%-44s %8.3f s   (runs: %s)\n' "recops data-refresh, incremental (100 rows):" "$inc" "${inc_times[*]}"
printf 'speed-up, full refresh: %.2fx\n' "$(calc "$ref / $full")"
echo "recops phases (last full run):"
"$PY" -c 'import json,sys; r=json.load(open(sys.argv[1])); print("  ", {k: round(v, 3) for k, v in r["timings_seconds"].items()}, "rows", r["total_records"], "rejected", r["rejected_records"])' "$TMP/full$RUNS.json"
echo "recops phases (last incremental run):"
"$PY" -c 'import json,sys; r=json.load(open(sys.argv[1])); print("  ", {k: round(v, 3) for k, v in r["timings_seconds"].items()}, "rows", r["total_records"])' "$TMP/inc$RUNS.json"
