#!/usr/bin/env bash
# bpr_seeds_recops.sh CF_BENCH_BIN DATA THREADS SEED,SEED,... [ITERS]
# ndcg@10 and seconds per epoch of recops BPR (cf_bench, the cf_vs_implicit.py split), one run per seed.
bin=$1; data=$2; t=$3; seeds=$4; it=${5:-}
for s in ${seeds//,/ }; do
  CF_BENCH_SEED=$s $bin $data bpr $t $it | python3 -c "import json,sys; r=json.load(sys.stdin)['results']['bpr']; print($s, round(r['ndcg_at_10'],4), round(r['seconds_per_iteration'],4))"
done
