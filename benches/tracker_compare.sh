#!/usr/bin/env bash
# Pipeline tracker throughput: the Python reference (shared/bench/tracker_ref.py, the
# spec's sqlite3 style) and recops, side by side in one run, on fresh databases.
#
#   benches/tracker_compare.sh [N]        (default N = 5000 pairs per process)
#
# Needs python3 (standard library only) and a release build of the example.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-5000}
REF=${TRACKER_REF:-../shared/bench/tracker_ref.py}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
cargo build --release -q -p recops-tracking --example tracker_load
BIN=target/release/examples/tracker_load
echo "python reference, 1 process:  $(python3 "$REF" "$TMP/ref.db" "$N")"
echo "recops, 1 process:            $($BIN "$TMP/one.db" "$N")"
echo "recops, 4 processes:          $($BIN "$TMP/four.db" "$N" 4)"
