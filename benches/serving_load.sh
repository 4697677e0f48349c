#!/usr/bin/env bash
# Load test of the recommender with wrk: POST /recommend for random known users (and 10 %
# unknown ones), first steady, then while the model is hot-reloaded in a loop.
#
#   benches/serving_load.sh HOME [SECONDS] [CONNECTIONS]
#
# HOME must hold trained models (e.g. the demo-home of `recops demo`: 26,000 users x
# 2,200 items x 64 factors). Needs wrk (Debian package `wrk`) and a release build.
set -euo pipefail
cd "$(dirname "$0")/.."
HOME_DIR=${1:?usage: benches/serving_load.sh HOME [SECONDS] [CONNECTIONS]}
SECS=${2:-20}
CONN=${3:-32}
BIN=target/release
command -v wrk >/dev/null || { echo "wrk not found: apt-get install wrk" >&2; exit 1; }
[ -x $BIN/recommender ] || cargo build --release -q --bin recommender
TMP=$(mktemp -d)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
URL=http://127.0.0.1:$PORT
RECOPS_LOG=warn $BIN/recommender --home "$HOME_DIR" --port "$PORT" 2>"$TMP/service.log" &
PID=$!
trap 'kill $PID 2>/dev/null; rm -rf "$TMP"' EXIT
for _ in $(seq 100); do curl -fs "$URL/readyz" >/dev/null 2>&1 && break; sleep 0.2; done
curl -fs "$URL/health"; echo

python3 - "$HOME_DIR" > "$TMP/recommend.lua" <<'PY'
import json, random, sys
m = json.load(open(f"{sys.argv[1]}/data/processed/user_item_mappings.json"))
users = list(m["user_to_idx"].keys())
random.seed(7)
ids = random.sample(users, min(5000, len(users))) + [str(-i) for i in range(1, 500)]
print("local ids = {" + ",".join(ids) + "}")
print('''
request = function()
  local u = ids[math.random(#ids)]
  return wrk.format("POST", "/recommend", {["Content-Type"] = "application/json"},
                    '{"user_id":' .. u .. ',"topk":10}')
end''')
PY

echo "== steady: ${SECS}s, $CONN connections, 2 threads"
wrk -t2 -c"$CONN" -d"${SECS}s" --latency -s "$TMP/recommend.lua" "$URL" | tee "$TMP/steady.txt"

MODELS=$(python3 -c "import json,sys; r=json.load(open('$HOME_DIR/artifacts/cf/registry.json')); print(' '.join(k for k,v in r['models'].items() if v['status']=='active'))")
echo "== during hot reloads between: $MODELS"
(
  end=$((SECONDS + SECS)); n=0
  while [ $SECONDS -lt $end ]; do
    for m in $MODELS; do
      code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$URL/reload_model" \
        -H 'content-type: application/json' -d "{\"model_id\": \"$m\"}")
      n=$((n + 1)); [ "$code" = 200 ] || echo "reload of $m answered $code"
      sleep 0.5
    done
  done
  echo "reloads: $n"
) > "$TMP/reloads.txt" &
RL=$!
wrk -t2 -c"$CONN" -d"${SECS}s" --latency -s "$TMP/recommend.lua" "$URL" | tee "$TMP/reload.txt"
wait $RL
cat "$TMP/reloads.txt"
grep -q "Non-2xx" "$TMP/reload.txt" && echo "NON-2XX RESPONSES DURING RELOADS" || echo "zero non-2xx responses during reloads"
