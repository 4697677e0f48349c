//! One ALS sweep and one BPR epoch on a MovieLens-100K-sized synthetic matrix
//! (943 users x 1,682 items, ~80,000 cells, 64 factors), 1 and 2 threads.
//!
//! `cargo bench -p recops-cf-training --bench epoch`
#![allow(missing_docs, clippy::unwrap_used)]

use criterion::{Criterion, criterion_group, criterion_main};
use recops_cf_training::{Als, AlsParams, Bpr, BprParams, Interactions, Solver};
use recops_data::Entry;

fn synthetic() -> (usize, usize, Vec<Entry>) {
    let (nu, ni) = (943usize, 1682usize);
    let mut s = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    let mut cells = std::collections::BTreeSet::new();
    while cells.len() < 80_000 {
        let u = (next() % nu as u64) as u32;
        // Popularity skew: the min of two draws favours low item ids.
        let i = (next() % ni as u64).min(next() % ni as u64) as u32;
        cells.insert((u, i));
    }
    let entries = cells
        .into_iter()
        .map(|(user, item)| Entry {
            user,
            item,
            rating: 1.0 + (user + item) as f32 % 5.0,
            timestamp: 0,
        })
        .collect();
    (nu, ni, entries)
}

fn bench(c: &mut Criterion) {
    let (nu, ni, entries) = synthetic();
    let conf = Interactions::from_entries(nu, ni, &entries, |e| 1.0 + 10.0 * e.rating).unwrap();
    let binary = Interactions::from_entries(nu, ni, &entries, |_| 1.0).unwrap();
    for threads in [1usize, 2] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let params = AlsParams {
            factors: 64,
            regularization: 0.05,
            solver: Solver::Cg,
            cg_steps: 3,
        };
        let mut als = Als::new(params, &conf, 42);
        c.bench_function(&format!("als_cg_sweep_64f_{threads}t"), |b| {
            b.iter(|| pool.install(|| als.iterate()))
        });
        let bp = BprParams {
            factors: 64,
            learning_rate: 0.01,
            regularization: 0.01,
            verify_negatives: true,
        };
        let mut bpr = Bpr::new(bp, &binary, 42, threads);
        let mut epoch = 0u64;
        c.bench_function(&format!("bpr_epoch_64f_{threads}t"), |b| {
            b.iter(|| {
                epoch += 1;
                pool.install(|| bpr.epoch(epoch))
            })
        });
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    let params = AlsParams {
        factors: 64,
        regularization: 0.05,
        solver: Solver::Cholesky,
        cg_steps: 3,
    };
    let mut als = Als::new(params, &conf, 42);
    c.bench_function("als_cholesky_sweep_64f_2t", |b| {
        b.iter(|| pool.install(|| als.iterate()))
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = bench
}
criterion_main!(benches);
