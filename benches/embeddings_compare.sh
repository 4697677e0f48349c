#!/usr/bin/env bash
# Text-embedding throughput: recops-embeddings (Rust, ort) and the Python reference
# (benches/embeddings_python.py: tokenizers + onnxruntime + numpy) side by side in one
# run, same model, same texts, same settings (batch, threads, max length, prefix), both
# in batches in file order and sorted by length (what bert-embeddings does). The runs
# alternate, so load from other processes hits both alike. Also checks the two give
# the same vectors. ROUNDS=N (default 2) runs per implementation and mode. Besides
# wall-clock texts/s it reports texts per CPU-second of the process (all threads),
# which other processes' load disturbs much less on a shared machine.
#
#   benches/embeddings_compare.sh [N] [BATCH] [THREADS] [MAX_LENGTH]
#       defaults: 1000 texts, batch 32, 2 threads, 256 tokens
#
# Needs scripts/fetch_models.sh to have run (the model, ONNX Runtime and the Python
# venv with numpy, onnxruntime and tokenizers).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-1000}
BATCH=${2:-32}
THREADS=${3:-2}
MAXLEN=${4:-256}
MODELS=${RECOPS_MODELS_DIR:-models}
PY="$MODELS/.venv/bin/python"
MODEL="$MODELS/multilingual-e5-small"
[ -x "$PY" ] && [ -f "$MODEL/model.onnx" ] || { echo "run scripts/fetch_models.sh first" >&2; exit 1; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
cargo build --release -q -p recops-embeddings --example embed_throughput
BIN=target/release/examples/embed_throughput
"$PY" benches/embeddings_python.py make-texts "$N" "$TMP/texts.txt"
ROUNDS=${ROUNDS:-2}
COMMON=(--model-dir "$MODEL" --texts "$TMP/texts.txt" --batch-size "$BATCH" --threads "$THREADS" --max-length "$MAXLEN" --repeat 1)
field() { "$PY" -c "import json,sys; print(json.loads(sys.argv[1])['$1'])" "$2"; }
echo "$N texts (avg $(awk '{w+=NF} END {printf "%.0f", w/NR}' "$TMP/texts.txt") words), batch $BATCH, $THREADS threads, max $MAXLEN tokens, prefix 'passage: '"
echo "each implementation runs $ROUNDS times per mode, alternating with the other (best run counts)"
for sort in "" "--sort"; do
    order=${sort:+sorted by length}; order=${order:-file order}
    best_r=0; best_p=0; cpu_r=0; cpu_p=0; runs_r=""; runs_p=""
    for round in $(seq "$ROUNDS"); do
        jr=$("$BIN" "${COMMON[@]}" $sort --vectors-out "$TMP/rust.f32")
        jp=$("$PY" benches/embeddings_python.py run "${COMMON[@]}" $sort --vectors-out "$TMP/py.f32")
        r=$(field texts_per_second "$jr"); p=$(field texts_per_second "$jp")
        runs_r="$runs_r $r"; runs_p="$runs_p $p"
        best_r=$("$PY" -c "print(max($best_r, $r))"); best_p=$("$PY" -c "print(max($best_p, $p))")
        cpu_r=$("$PY" -c "print(max($cpu_r, $(field texts_per_cpu_second "$jr")))")
        cpu_p=$("$PY" -c "print(max($cpu_p, $(field texts_per_cpu_second "$jp")))")
    done
    diff=$("$PY" -c "import numpy as np; a=np.fromfile('$TMP/rust.f32','<f4'); b=np.fromfile('$TMP/py.f32','<f4'); print(f'{np.abs(a-b).max():.1e}')")
    printf '%-17s rust %6.1f texts/s (runs:%s)  python %6.1f texts/s (runs:%s)  ratio %.2fx\n' \
        "$order:" "$best_r" "$runs_r" "$best_p" "$runs_p" "$("$PY" -c "print($best_r/$best_p)")"
    printf '%-17s rust %6.2f texts/CPU-s            python %6.2f texts/CPU-s            ratio %.2fx   max |rust-python| %s\n' \
        "" "$cpu_r" "$cpu_p" "$("$PY" -c "print($cpu_r/$cpu_p)")" "$diff"
done
