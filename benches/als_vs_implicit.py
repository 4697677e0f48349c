"""ALS of implicit and of recops binaries on the cf_vs_implicit.py split, alternating in
one loop so every side sees the same machine load.

python benches/als_vs_implicit.py DATA.csv ROUNDS THREADS CF_BENCH [CF_BENCH...]
(CF_VS_IMPLICIT_DIR: the folder holding cf_vs_implicit.py, default ../shared/bench)

Each round fits implicit's ALS (the harness's hyperparameters: 64 factors, λ 0.05, 15
iterations, confidence 1 + 10 r, CG), then for each cf_bench binary runs
`cf_bench DATA als THREADS` (training seconds per iteration and ndcg@10, as the harness
reads them) and `cf_bench time DATA als THREADS 15` (process CPU per iteration). Prints
one line per run, then the medians, the ratios to implicit and the load average.
"""
import json, os, statistics, subprocess, sys, time
sys.path.insert(0, os.environ.get("CF_VS_IMPLICIT_DIR", "../shared/bench"))
import numpy as np, pandas as pd
from threadpoolctl import threadpool_limits
import cf_vs_implicit as h
from implicit.cpu.als import AlternatingLeastSquares

data, rounds, threads, bins = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:]
df, is_test, nu, ni = h.split(pd.read_csv(data))
tr, te = df[~is_test], df[is_test]
conf = h.csr(tr, 1.0 + 10.0 * tr.rating.to_numpy(), nu, ni)
binm = h.csr(tr, np.ones(len(tr)), nu, ni)
test = h.csr(te, np.ones(len(te)), nu, ni)
tu = np.flatnonzero(np.diff(test.indptr) > 0).astype(np.int32)
rows = {"implicit": []} | {b: [] for b in bins}
for r in range(rounds):
    with threadpool_limits(limits=1, user_api="blas"):
        m = AlternatingLeastSquares(factors=64, regularization=0.05, iterations=15, alpha=1.0,
                                    use_cg=True, random_state=42, num_threads=threads)
        t0, c0 = time.perf_counter(), time.process_time()
        m.fit(conf, show_progress=False)
        wall, cpu = (time.perf_counter() - t0) / 15, (time.process_time() - c0) / 15
    ids, _ = m.recommend(tu, binm[tu], N=10, filter_already_liked_items=True)
    nd = h.evaluate(ids, test, tu, ni)["ndcg_at_10"]
    rows["implicit"].append((wall, cpu, nd))
    print(f"round {r} implicit wall {wall*1e3:.1f} ms/it cpu {cpu*1e3:.1f} ms/it ndcg {nd:.5f}", flush=True)
    for b in bins:
        out = json.loads(subprocess.run([b, data, "als", str(threads)], capture_output=True,
                                        text=True, check=True).stdout)["results"]["als"]
        t = json.loads(subprocess.run([b, "time", data, "als", str(threads), "15"],
                                      capture_output=True, text=True, check=True).stdout)
        rows[b].append((out["seconds_per_iteration"], t["cpu_ms"] / 1e3, out["ndcg_at_10"]))
        print(f"round {r} {b} wall {out['seconds_per_iteration']*1e3:.1f} ms/it cpu {t['cpu_ms']:.1f} ms/it "
              f"ndcg {out['ndcg_at_10']:.5f}", flush=True)
imp = [statistics.median(x[i] for x in rows["implicit"]) for i in range(3)]
print(f"data {data}; threads {threads}; rounds {rounds}; load average {os.getloadavg()}")
print(f"{'side':<40}{'wall ms/it':>11}{'cpu ms/it':>11}{'ndcg@10':>10}{'wall x':>8}{'cpu x':>8}{'ndcg/imp':>10}")
for k, v in rows.items():
    med = [statistics.median(x[i] for x in v) for i in range(3)]
    print(f"{k:<40}{med[0]*1e3:>11.1f}{med[1]*1e3:>11.1f}{med[2]:>10.5f}"
          f"{imp[0]/med[0]:>8.2f}{imp[1]/med[1]:>8.2f}{med[2]/imp[2]:>10.3f}")
