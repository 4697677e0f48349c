#!/usr/bin/env bash
# The embedding step before and after issue 21's model work, on a product catalog in its
# file order (what `bert-embeddings` embeds: name + description, sorted by length
# inside the encoder), alternating the runs so other load hits all alike:
#
#   before    fp32 model, 2,048 tokens per forward pass (the old default)
#   fp32-512  fp32 model, 512 tokens per pass (generation.max_batch_tokens default)
#   after     int8 model, 512 tokens per pass (the default: model.variant int8)
#
# Prints seconds, texts/s and CPU seconds of each run with the load average before it,
# then the cosine between the int8 and fp32 vectors of every product (the int8 model
# is only acceptable at >= 0.99) and whether fp32 vectors changed with the pass size.
#
#   benches/embeddings_variants.sh CATALOG.csv [ROUNDS] [THREADS]
#       CATALOG.csv: e.g. <demo-home>/data/published_data/data_product.csv
#       defaults: 2 rounds, 2 threads
#
# Needs scripts/fetch_models.sh (both variants, and the venv for numpy); the models
# folder is $RECOPS_MODELS_DIR or models/.
set -euo pipefail
cd "$(dirname "$0")/.."
CATALOG=${1:?usage: benches/embeddings_variants.sh CATALOG.csv [ROUNDS] [THREADS]}
ROUNDS=${2:-2}
THREADS=${3:-2}
MODELS=${RECOPS_MODELS_DIR:-models}
PY="$MODELS/.venv/bin/python"
[ -x "$PY" ] && [ -f "$MODELS/multilingual-e5-small-int8/model.onnx" ] \
    || { echo "run scripts/fetch_models.sh first (both variants are needed)" >&2; exit 1; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
cargo build --release -q -p recops-embeddings --example embed_throughput
BIN=target/release/examples/embed_throughput
# The product text of recops-embeddings' product_text: "name. description".
"$PY" - "$CATALOG" "$TMP/texts.txt" <<'PY'
import csv, sys
with open(sys.argv[1], encoding="utf-8", newline="") as f, open(sys.argv[2], "w", encoding="utf-8") as out:
    for row in csv.DictReader(f):
        name, desc = row["name"].strip(), row["description"].strip()
        if not desc:
            text = name
        elif not name:
            text = desc
        elif name.endswith((".", "!", "?", ":", ";")):
            text = f"{name} {desc}"
        else:
            text = f"{name}. {desc}"
        if text:
            out.write(" ".join(text.split("\n")) + "\n")
PY
echo "$(wc -l <"$TMP/texts.txt") texts from $CATALOG, $THREADS threads, $ROUNDS rounds, $(nproc) cores"
for round in $(seq "$ROUNDS"); do
    for cfg in "before fp32 2048" "fp32-512 fp32 512" "after int8 512"; do
        set -- $cfg
        load=$(cut -d' ' -f1-3 /proc/loadavg)
        out=$("$BIN" --variant "$2" --max-batch-tokens "$3" --threads "$THREADS" \
            --texts "$TMP/texts.txt" --sort --repeat 1 --vectors-out "$TMP/$1.f32")
        "$PY" -c "import json,sys; r=json.loads(sys.argv[1]); print(f\"round $round {sys.argv[2]:9s} {r['seconds']:7.2f} s {r['texts_per_second']:6.1f} texts/s  CPU {r['cpu_seconds']:6.2f} s  (load before: {sys.argv[3]})\")" "$out" "$1" "$load"
    done
done
"$PY" - "$TMP" <<'PY'
import sys
import numpy as np
d = sys.argv[1]
v = {k: np.fromfile(f"{d}/{k}.f32", "<f4").reshape(-1, 384) for k in ("before", "fp32-512", "after")}
cos = (v["before"] * v["after"]).sum(axis=1)
print(f"int8 vs fp32 cosine over {len(cos)} products: min {cos.min():.4f}, 1st percentile "
      f"{np.percentile(cos, 1):.4f}, mean {cos.mean():.4f}, below 0.99: {(cos < 0.99).sum()}")
print(f"fp32 vectors, 512 vs 2048 tokens per pass: largest difference {np.abs(v['before'] - v['fp32-512']).max():.1e}")
PY
