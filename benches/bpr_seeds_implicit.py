"""ndcg@10 of implicit's BPR on the cf_vs_implicit.py split, one run per seed.

python benches/bpr_seeds_implicit.py DATA.csv SEED,SEED,... [THREADS]
(CF_VS_IMPLICIT_DIR: the folder holding cf_vs_implicit.py, default ../shared/bench)
"""
import os, sys, statistics
sys.path.insert(0, os.environ.get("CF_VS_IMPLICIT_DIR", "../shared/bench"))
import numpy as np, pandas as pd
import cf_vs_implicit as h
from implicit.cpu.bpr import BayesianPersonalizedRanking
data = sys.argv[1]; seeds = [int(s) for s in sys.argv[2].split(',')]
threads = int(sys.argv[3]) if len(sys.argv) > 3 else 2
df, is_test, nu, ni = h.split(pd.read_csv(data))
tr, te = df[~is_test], df[is_test]
binm = h.csr(tr, np.ones(len(tr)), nu, ni)
test = h.csr(te, np.ones(len(te)), nu, ni)
tu = np.flatnonzero(np.diff(test.indptr) > 0).astype(np.int32)
imp = []
for s in seeds:
    m = BayesianPersonalizedRanking(factors=64, learning_rate=0.01, regularization=0.01, iterations=100, random_state=s, num_threads=threads)
    m.fit(binm, show_progress=False)
    ids, _ = m.recommend(tu, binm[tu], N=10, filter_already_liked_items=True)
    imp.append(h.evaluate(ids, test, tu, ni)['ndcg_at_10'])
    print(s, round(imp[-1], 4), flush=True)
print("implicit bpr ndcg", [round(x,4) for x in imp], "mean", round(statistics.mean(imp),4), "sd", round(statistics.stdev(imp),4) if len(imp)>1 else 0)
