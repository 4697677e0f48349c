//! Bayesian personalised ranking (Rendle et al. 2009) with SGD and sampled negatives.
//!
//! Like `implicit`: every epoch draws as many (user, positive, negative) samples as the
//! matrix has cells; the positive is a uniformly drawn cell, the negative the item of
//! another uniformly drawn cell (so negatives follow item popularity), skipped when
//! the user has that item. Items carry a bias in their last column (users have a
//! constant 1 there), so `score = x_u · y_i` includes it and a model is served by a
//! plain dot product.
//!
//! Parallel and reproducible: with `T` threads, users are split into `T` contiguous
//! groups (balanced by cells) and, every epoch, items into `T` random groups (balanced by
//! cells, redrawn each epoch). An epoch runs `T` rounds; in round `s` thread `t` trains
//! the cells of user group `t` and item group `(t + s) mod T`, drawing negatives from
//! that item group too. No two threads ever touch the same row (no Hogwild races), each
//! (epoch, round, thread) has its own random stream, so a seed, the data and the thread
//! count fix the result bit for bit. With one thread it is plain sequential BPR.

use rayon::prelude::*;

use crate::kernels::{Prefetch, fmadd, wide};
use crate::matrix::{Factors, Interactions};
use crate::rng::Rng;

/// BPR hyperparameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BprParams {
    /// Latent factors `k` (the matrices have `k + 1` columns: the item bias).
    pub factors: usize,
    /// SGD step size.
    pub learning_rate: f32,
    /// L2 regularisation.
    pub regularization: f32,
    /// Skip a negative the user actually has (recommended; `implicit`'s default).
    pub verify_negatives: bool,
}

/// What one epoch saw.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct EpochStats {
    /// Mean `-ln σ(x_uij)` over the trained samples.
    pub loss: f64,
    /// Samples trained (drawn minus skipped).
    pub trained: u64,
    /// Samples skipped because the negative was a positive.
    pub skipped: u64,
    /// Trained samples already ranked correctly (`x_uij > 0`): the training AUC.
    pub correct: u64,
}

/// BPR state.
#[derive(Debug, Clone)]
pub struct Bpr<'a> {
    params: BprParams,
    data: &'a Interactions,
    users: Factors,
    items: Factors,
    seed: u64,
    threads: usize,
    item_counts: Vec<u32>,
    /// Boundaries of the user groups (`threads + 1` values).
    user_bounds: Vec<usize>,
}

impl<'a> Bpr<'a> {
    /// BPR over the binary matrix `data` with `implicit`'s initialisation (uniform in
    /// `(-0.5/k, 0.5/k)`, zero rows for users and items without cells, user bias column
    /// 1), drawn from `seed`, trained with `threads` parallel groups.
    pub fn new(params: BprParams, data: &'a Interactions, seed: u64, threads: usize) -> Self {
        let k = params.factors;
        let d = k + 1;
        let item_counts = data.item_counts();
        let mut rng = Rng::stream(seed, &[0xB92, 1]);
        let mut users = Factors::zeros(data.n_users(), d);
        for u in 0..data.n_users() {
            let has = !data.user_row(u).0.is_empty();
            let row = users.row_mut(u);
            for v in row[..k].iter_mut() {
                let r = rng.unit_f32();
                *v = if has { (r - 0.5) / k as f32 } else { 0.0 };
            }
            row[k] = 1.0;
        }
        let mut rng = Rng::stream(seed, &[0xB92, 2]);
        let mut items = Factors::zeros(data.n_items(), d);
        for (i, &count) in item_counts.iter().enumerate() {
            let has = count > 0;
            for v in items.row_mut(i).iter_mut() {
                let r = rng.unit_f32();
                *v = if has { (r - 0.5) / k as f32 } else { 0.0 };
            }
        }
        Self::with_factors(params, data, users, items, seed, threads)
    }

    /// BPR starting from given factors (`k + 1` columns; the user bias column is reset
    /// to 1).
    pub fn with_factors(
        params: BprParams,
        data: &'a Interactions,
        mut users: Factors,
        items: Factors,
        seed: u64,
        threads: usize,
    ) -> Self {
        let k = params.factors;
        for u in 0..users.rows() {
            if let Some(b) = users.row_mut(u).get_mut(k) {
                *b = 1.0;
            }
        }
        let threads = threads.clamp(1, data.n_users().max(1));
        let user_bounds = balanced_bounds(data, threads);
        Bpr {
            params,
            data,
            users,
            items,
            seed,
            threads,
            item_counts: data.item_counts(),
            user_bounds,
        }
    }

    /// The user factors (`k + 1` columns, the last is 1).
    pub fn users(&self) -> &Factors {
        &self.users
    }

    /// The item factors (`k + 1` columns, the last is the bias).
    pub fn items(&self) -> &Factors {
        &self.items
    }

    /// The factors, consuming the model.
    pub fn into_factors(self) -> (Factors, Factors) {
        (self.users, self.items)
    }

    /// Epoch number `epoch` (0-based; it selects the random streams, so a resumed run
    /// replays exactly), in the current rayon pool.
    pub fn epoch(&mut self, epoch: u64) -> EpochStats {
        let t_groups = self.threads;
        let d = self.params.factors + 1;
        let n_items = self.data.n_items();
        let csr = self.data.user_csr();

        // Item groups, redrawn every epoch, balanced by cells.
        let mut group_of = vec![0u32; n_items];
        if t_groups > 1 {
            let mut perm: Vec<u32> = (0..n_items as u32).collect();
            let mut rng = Rng::stream(self.seed, &[0xB92, 3, epoch]);
            for i in (1..perm.len()).rev() {
                let j = rng.below(i as u32 + 1) as usize;
                perm.swap(i, j);
            }
            let total = self.data.nnz().max(1) as u64;
            let mut cum = 0u64;
            for &i in &perm {
                let g = (cum * t_groups as u64 / total).min(t_groups as u64 - 1);
                group_of[i as usize] = g as u32;
                cum += u64::from(self.item_counts[i as usize]);
            }
        }
        // Local index of each item inside its group, and each group's items.
        let mut local = vec![0u32; n_items];
        let mut group_items: Vec<Vec<u32>> = vec![Vec::new(); t_groups];
        for i in 0..n_items {
            let g = group_of[i] as usize;
            local[i] = group_items[g].len() as u32;
            group_items[g].push(i as u32);
        }
        // Negative pools: each group's items repeated by their cell counts.
        let counts = &self.item_counts;
        let pools: Vec<Vec<u32>> = group_items
            .par_iter()
            .map(|items| {
                let mut pool = Vec::new();
                for (l, &i) in items.iter().enumerate() {
                    pool.extend(std::iter::repeat_n(l as u32, counts[i as usize] as usize));
                }
                pool
            })
            .collect();
        // Blocks: blocks[t][g] = cells (local user, local item) of user group t, item group g.
        let bounds = &self.user_bounds;
        let blocks: Vec<Vec<Vec<(u32, u32)>>> = (0..t_groups)
            .into_par_iter()
            .map(|t| {
                let mut b: Vec<Vec<(u32, u32)>> = vec![Vec::new(); t_groups];
                for u in bounds[t]..bounds[t + 1] {
                    for &i in &csr.indices[csr.range(u)] {
                        let i = i as usize;
                        b[group_of[i] as usize].push(((u - bounds[t]) as u32, local[i]));
                    }
                }
                b
            })
            .collect();

        // Disjoint mutable views: user groups and item groups.
        let mut user_slices: Vec<&mut [f32]> = Vec::with_capacity(t_groups);
        let mut rest = self.users.as_mut_slice();
        for t in 0..t_groups {
            let (head, tail) = rest.split_at_mut((bounds[t + 1] - bounds[t]) * d);
            user_slices.push(head);
            rest = tail;
        }
        let mut item_rows: Vec<Vec<&mut [f32]>> = group_items
            .iter()
            .map(|g| Vec::with_capacity(g.len()))
            .collect();
        for (i, row) in self.items.as_mut_slice().chunks_exact_mut(d).enumerate() {
            item_rows[group_of[i] as usize].push(row);
        }

        let p = self.params;
        let seed = self.seed;
        let mut total = EpochStats::default();
        let mut loss_sum = 0.0f64;
        for round in 0..t_groups {
            let mut groups: Vec<(&mut Vec<&mut [f32]>, usize)> =
                item_rows.iter_mut().zip(0..t_groups).collect();
            groups.rotate_left(round);
            let results: Vec<(EpochStats, f64)> = user_slices
                .par_iter_mut()
                .zip(groups.into_par_iter())
                .enumerate()
                .map(|(t, (users, (items, g)))| {
                    let mut rng = Rng::stream(seed, &[0xB92, 4, epoch, round as u64, t as u64]);
                    let job = Block {
                        cells: &blocks[t][g],
                        pool: &pools[g],
                        group_items: &group_items[g],
                        user_offset: bounds[t],
                        csr_indptr: csr.indptr,
                        csr_indices: csr.indices,
                    };
                    run_block(&job, users, items, d, p, &mut rng)
                })
                .collect();
            for (s, l) in results {
                total.trained += s.trained;
                total.skipped += s.skipped;
                total.correct += s.correct;
                loss_sum += l;
            }
        }
        total.loss = if total.trained > 0 {
            loss_sum / total.trained as f64
        } else {
            0.0
        };
        total
    }
}

/// Contiguous user groups with about the same number of cells each.
fn balanced_bounds(data: &Interactions, groups: usize) -> Vec<usize> {
    let n = data.n_users();
    let total = data.nnz().max(1);
    let mut bounds = vec![0usize];
    let mut cum = 0usize;
    let mut next = 1usize;
    for u in 0..n {
        cum += data.user_row(u).0.len();
        while next < groups && cum * groups >= next * total {
            bounds.push(u + 1);
            next += 1;
        }
    }
    while bounds.len() < groups {
        bounds.push(n);
    }
    bounds.push(n);
    bounds
}

struct Block<'b> {
    cells: &'b [(u32, u32)],
    pool: &'b [u32],
    group_items: &'b [u32],
    user_offset: usize,
    csr_indptr: &'b [usize],
    csr_indices: &'b [u32],
}

/// Trains `cells.len()` samples of one block. Returns the stats and the loss sum.
fn run_block(
    b: &Block<'_>,
    users: &mut [f32],
    items: &mut [&mut [f32]],
    d: usize,
    p: BprParams,
    rng: &mut Rng,
) -> (EpochStats, f64) {
    let mut st = EpochStats::default();
    let mut loss = 0.0f64;
    let n = b.cells.len();
    if n == 0 || b.pool.is_empty() {
        return (st, loss);
    }
    let (n_cells, n_pool) = (n as u32, b.pool.len() as u32);
    // Samples go in batches through a three-stage pipeline so that the cache misses of
    // a batch (the random cell and pool entries, then the user and item rows and the
    // user's item list) overlap the training of the batch before: batch t+2 is drawn
    // and its cell / pool entries prefetched, batch t+1 is resolved to rows and those
    // prefetched, batch t is trained. The random draws (in draw order) and the update
    // order are exactly those of one-by-one processing.
    const BATCH: usize = 32;
    let pf = Prefetch::new();
    let batches = n.div_ceil(BATCH);
    let size = |t: usize| (n - t * BATCH).min(BATCH);
    let mut draws = [[(0u32, 0u32); BATCH]; 2];
    let mut ready = [[(0u32, 0u32, 0u32); BATCH]; 2];
    let mut draw = |t: usize, out: &mut [(u32, u32); BATCH]| {
        for slot in out.iter_mut().take(size(t)) {
            let c = rng.below(n_cells);
            let q = rng.below(n_pool);
            pf.one(&b.cells[c as usize]);
            pf.one(&b.pool[q as usize]);
            *slot = (c, q);
        }
    };
    let resolve = |t: usize,
                   drawn: &[(u32, u32); BATCH],
                   out: &mut [(u32, u32, u32); BATCH],
                   users: &[f32],
                   items: &[&mut [f32]]| {
        for (slot, &(c, q)) in out.iter_mut().zip(drawn).take(size(t)) {
            let (lu, pos) = b.cells[c as usize];
            let neg = b.pool[q as usize];
            *slot = (lu, pos, neg);
            let xu = lu as usize * d;
            pf.slice(users.get(xu..xu + d).unwrap_or(&[]));
            pf.slice(&items[pos as usize][..]);
            pf.slice(&items[neg as usize][..]);
            if p.verify_negatives {
                let u = b.user_offset + lu as usize;
                let row = b.csr_indices.get(b.csr_indptr[u]..b.csr_indptr[u + 1]);
                for v in row.unwrap_or(&[]).iter().step_by(16).take(4) {
                    pf.one(v);
                }
            }
        }
    };
    draw(0, &mut draws[0]);
    resolve(0, &draws[0], &mut ready[0], users, items);
    if batches > 1 {
        draw(1, &mut draws[1]);
    }
    for t in 0..batches {
        if t + 1 < batches {
            let (cur, next) = ready.split_at_mut(1);
            let out = if t % 2 == 0 {
                &mut next[0]
            } else {
                &mut cur[0]
            };
            resolve(t + 1, &draws[(t + 1) % 2], out, users, items);
        }
        if t + 2 < batches {
            draw(t + 2, &mut draws[t % 2]);
        }
        for &(lu, pos, neg) in &ready[t % 2][..size(t)] {
            let u = b.user_offset + lu as usize;
            if pos == neg {
                st.skipped += 1;
                continue;
            }
            if p.verify_negatives {
                let neg_item = b.group_items[neg as usize];
                let row = &b.csr_indices[b.csr_indptr[u]..b.csr_indptr[u + 1]];
                if row.binary_search(&neg_item).is_ok() {
                    st.skipped += 1;
                    continue;
                }
            }
            let (pos, neg) = (pos as usize, neg as usize);
            let (yp, yn) = if pos < neg {
                let (a, b) = items.split_at_mut(neg);
                (&mut *a[pos], &mut *b[0])
            } else {
                let (a, b) = items.split_at_mut(pos);
                (&mut *b[0], &mut *a[neg])
            };
            let xu = &mut users[lu as usize * d..(lu as usize + 1) * d];
            let (x, z) = wide(
                #[inline(always)]
                |fused| {
                    if fused {
                        sgd_step::<true>(xu, yp, yn, p.learning_rate, p.regularization)
                    } else {
                        sgd_step::<false>(xu, yp, yn, p.learning_rate, p.regularization)
                    }
                },
            );
            st.trained += 1;
            if x > 0.0 {
                st.correct += 1;
            }
            // -ln σ(x) = -ln z - x with z = 1 / (1 + e^x); below 1e-13 for x > 30.
            if x < 30.0 {
                loss += f64::from(-z.ln() - x);
            }
        }
    }
    (st, loss)
}

const LANES: usize = 16;

/// One SGD step on `-ln σ(x_u·(y_p − y_n))` with L2; the last column is the item bias
/// (the user's is a constant 1 and is not updated). Returns `x_uij` before the step and
/// `z = σ(−x_uij)`.
#[inline(always)]
fn sgd_step<const F: bool>(
    x: &mut [f32],
    yp: &mut [f32],
    yn: &mut [f32],
    lr: f32,
    reg: f32,
) -> (f32, f32) {
    let d = x.len().min(yp.len()).min(yn.len());
    if d == 0 {
        return (0.0, 0.5);
    }
    let (x, yp, yn) = (&mut x[..d], &mut yp[..d], &mut yn[..d]);
    // score = x · (yp - yn)
    let mut acc = [0.0f32; LANES];
    let mut tail = 0.0f32;
    {
        let (cx, cp, cn) = (
            x.chunks_exact(LANES),
            yp.chunks_exact(LANES),
            yn.chunks_exact(LANES),
        );
        let (tx, tp, tn) = (cx.remainder(), cp.remainder(), cn.remainder());
        for ((a, b), c) in cx.zip(cp).zip(cn) {
            for l in 0..LANES {
                acc[l] = fmadd::<F>(a[l], b[l] - c[l], acc[l]);
            }
        }
        for ((a, b), c) in tx.iter().zip(tp).zip(tn) {
            tail = fmadd::<F>(*a, b - c, tail);
        }
    }
    let score = acc.iter().sum::<f32>() + tail;
    let z = 1.0 / (1.0 + score.exp());
    let k = d - 1;
    let (pb, nb) = (yp[k], yn[k]);
    let (lz, lreg) = (lr * z, 1.0 - lr * reg);
    {
        let (x, yp, yn) = (&mut x[..k], &mut yp[..k], &mut yn[..k]);
        let (cx, tx) = x.as_chunks_mut::<LANES>();
        let (cp, tp) = yp.as_chunks_mut::<LANES>();
        let (cn, tn) = yn.as_chunks_mut::<LANES>();
        for ((a, b), c) in cx.iter_mut().zip(cp.iter_mut()).zip(cn.iter_mut()) {
            let (mut ta, mut tb, mut tc) = (*a, *b, *c);
            for l in 0..LANES {
                let u = ta[l];
                // x += lr (z (p − n) − reg x), p += lr (z x − reg p), n += lr (−z x − reg n)
                ta[l] = fmadd::<F>(lz, tb[l] - tc[l], lreg * u);
                tb[l] = fmadd::<F>(lz, u, lreg * tb[l]);
                tc[l] = fmadd::<F>(-lz, u, lreg * tc[l]);
            }
            (*a, *b, *c) = (ta, tb, tc);
        }
        for ((a, b), c) in tx.iter_mut().zip(tp.iter_mut()).zip(tn.iter_mut()) {
            let u = *a;
            *a = fmadd::<F>(lz, *b - *c, lreg * u);
            *b = fmadd::<F>(lz, u, lreg * *b);
            *c = fmadd::<F>(-lz, u, lreg * *c);
        }
    }
    yp[k] = pb + lr * (z - reg * pb);
    yn[k] = nb + lr * (-z - reg * nb);
    (score, z)
}

#[cfg(test)]
mod tests {
    use super::*;
    use recops_data::Entry;

    fn clustered() -> Interactions {
        let mut cells = Vec::new();
        for u in 0..40u32 {
            for i in 0..20u32 {
                if (u % 2 == i % 2) && (u * 7 + i * 3) % 5 != 0 {
                    cells.push(Entry {
                        user: u,
                        item: i,
                        rating: 5.0,
                        timestamp: 0,
                    });
                }
            }
        }
        Interactions::from_entries(40, 20, &cells, |_| 1.0).unwrap()
    }

    fn params() -> BprParams {
        BprParams {
            factors: 8,
            learning_rate: 0.05,
            regularization: 0.01,
            verify_negatives: true,
        }
    }

    fn train(threads: usize, epochs: u64) -> (Factors, Factors, EpochStats) {
        let m = clustered();
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let mut bpr = Bpr::new(params(), &m, 11, threads);
            let mut last = EpochStats::default();
            for e in 0..epochs {
                last = bpr.epoch(e);
            }
            let (u, i) = bpr.into_factors();
            (u, i, last)
        })
    }

    #[test]
    fn learns_the_clusters_and_the_loss_falls() {
        for threads in [1, 2, 3] {
            let (_, _, first) = train(threads, 1);
            let (u, i, last) = train(threads, 60);
            assert!(
                last.loss < first.loss,
                "threads {threads}: {} -> {}",
                first.loss,
                last.loss
            );
            assert!(last.correct as f64 / last.trained as f64 > 0.9);
            // User 0 (even) prefers even items.
            let even = crate::kernels::dot(u.row(0), i.row(2));
            let odd = crate::kernels::dot(u.row(0), i.row(3));
            assert!(even > odd, "threads {threads}: {even} <= {odd}");
            assert!(u.rows() == 40 && u.cols() == 9 && (0..40).all(|r| u.row(r)[8] == 1.0));
        }
    }

    #[test]
    fn same_seed_and_threads_give_identical_factors() {
        assert_eq!(train(2, 5), train(2, 5));
        assert_eq!(train(3, 5), train(3, 5));
    }

    #[test]
    fn user_groups_are_balanced_and_cover_all_users() {
        let m = clustered();
        for g in 1..5 {
            let b = balanced_bounds(&m, g);
            assert_eq!(b.len(), g + 1);
            assert_eq!((b[0], b[g]), (0, 40));
            assert!(b.windows(2).all(|w| w[0] <= w[1]));
        }
    }
}
