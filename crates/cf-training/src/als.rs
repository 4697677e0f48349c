//! Alternating least squares for implicit feedback (Hu, Koren, Volinsky 2008).
//!
//! Minimises `Σ_{u,i} c_ui (p_ui - x_u·y_i)² + λ (‖X‖² + ‖Y‖²)` with `p_ui = 1` for
//! observed cells (confidence `c_ui = 1 + α r_ui`) and `p_ui = 0, c_ui = 1` elsewhere.
//! Each sweep solves every user row with the items fixed, then every item row with the
//! users fixed, using `YᵀY` computed once per sweep so unobserved cells cost nothing.
//!
//! Solvers: conjugate gradient (default; a few steps per row, warm-started from the
//! previous factors, as Takács et al. 2011 and `implicit` do) or an exact Cholesky
//! solve. Rows are independent, so results do not depend on the number of threads.
//! When it saves work (`rows · (cg_steps − 1) > fixed rows`), CG runs in the
//! eigenbasis of `YᵀY + λI`, where that matrix is diagonal (see `Eigen`): the same
//! iterates up to rounding, two `k × k` products per row instead of `1 + cg_steps`.
//! The training loss is tracked inside the item sweep at almost no cost.

use rayon::prelude::*;

use crate::kernels::{
    add_gram, axpy, axpy_k, cholesky_solve, dot, dot_k, matvec, matvec_rows, sparse_apply,
    symmetrize, wide,
};
use crate::matrix::{Csr, Factors, Interactions};
use crate::rng::Rng;

/// How each row's least-squares problem is solved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Solver {
    /// Conjugate gradient, `cg_steps` steps per row and sweep, warm-started.
    Cg,
    /// Exact Cholesky solve of the `k × k` normal equations of each row.
    Cholesky,
}

/// ALS hyperparameters (the confidence `alpha` is applied when the matrix is built).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AlsParams {
    /// Latent factors `k`.
    pub factors: usize,
    /// L2 regularisation `λ`.
    pub regularization: f32,
    /// Row solver.
    pub solver: Solver,
    /// Conjugate-gradient steps per row and sweep (CG solver only).
    pub cg_steps: usize,
}

/// Rows solved per parallel task (rayon balances the tasks across threads).
const ROWS_PER_TASK: usize = 8;

/// ALS state: the confidence matrix and both factor matrices.
#[derive(Debug, Clone)]
pub struct Als<'a> {
    params: AlsParams,
    confidence: &'a Interactions,
    users: Factors,
    items: Factors,
    /// `Σ c` over the cells (fixed by `confidence`; for the loss's denominator).
    total_conf: f64,
}

impl<'a> Als<'a> {
    /// ALS over `confidence` (values `1 + α r`) with the random initialisation of
    /// `implicit`: every factor uniform in `[0, 0.01)`, drawn from `seed`.
    pub fn new(params: AlsParams, confidence: &'a Interactions, seed: u64) -> Self {
        let k = params.factors;
        let users = random_factors(confidence.n_users(), k, seed, 1);
        let items = random_factors(confidence.n_items(), k, seed, 2);
        Self::with_factors(params, confidence, users, items)
    }

    /// ALS starting from given factors (warm start, BERT init, checkpoints).
    pub fn with_factors(
        params: AlsParams,
        confidence: &'a Interactions,
        users: Factors,
        items: Factors,
    ) -> Self {
        let total_conf = confidence
            .user_csr()
            .data
            .iter()
            .map(|&c| f64::from(c))
            .sum();
        Als {
            params,
            confidence,
            users,
            items,
            total_conf,
        }
    }

    /// The user factors.
    pub fn users(&self) -> &Factors {
        &self.users
    }

    /// The item factors.
    pub fn items(&self) -> &Factors {
        &self.items
    }

    /// Replaces the item factors (for example by an initialisation from embeddings).
    pub fn set_items(&mut self, items: Factors) {
        self.items = items;
    }

    /// The factors, consuming the model.
    pub fn into_factors(self) -> (Factors, Factors) {
        (self.users, self.items)
    }

    /// One sweep (users, then items) in the current rayon pool. Returns the training
    /// loss after the sweep, normalised like `implicit`'s `calculate_loss`
    /// (`loss / (Σ c + n_users·n_items − nnz)`).
    pub fn iterate(&mut self) -> f64 {
        let p = self.params;
        let users = self.confidence.user_csr();
        let items = self.confidence.item_csr();
        solve_side(users, &mut self.users, &self.items, p);
        let item_terms = solve_side(items, &mut self.items, &self.users, p);
        let reg_users = f64::from(p.regularization) * sum_squares(self.users.as_slice());
        let cells = self.confidence.n_users() as f64 * self.confidence.n_items() as f64;
        let denom = self.total_conf + cells - self.confidence.nnz() as f64;
        (item_terms + reg_users) / denom.max(1.0)
    }
}

/// Uniform `[0, 0.01)` factors from a seeded stream (the tag separates users and items).
pub(crate) fn random_factors(rows: usize, k: usize, seed: u64, tag: u64) -> Factors {
    let mut rng = Rng::stream(seed, &[0xA15, tag]);
    let data = (0..rows * k).map(|_| rng.unit_f32() * 0.01).collect();
    Factors::from_vec(rows, k, data).unwrap_or_else(|_| Factors::zeros(rows, k))
}

/// `Σ v²`: per chunk of 4096 values in f32 (in parallel), the chunks summed in order in
/// f64, so the same for any number of threads.
fn sum_squares(v: &[f32]) -> f64 {
    let parts: Vec<f64> = v.par_chunks(4096).map(|c| f64::from(dot(c, c))).collect();
    parts.iter().sum()
}

/// `YᵀY + λI`, summed over fixed chunks of rows in a fixed order (reproducible for
/// any number of threads).
fn gram_plus_reg(y: &Factors, reg: f32) -> Vec<f32> {
    let k = y.cols();
    const CHUNK_ROWS: usize = 256;
    let partials: Vec<Vec<f32>> = y
        .as_slice()
        .par_chunks(CHUNK_ROWS * k.max(1))
        .map(|rows| {
            let mut g = vec![0.0f32; k * k];
            add_gram(rows, k, &mut g);
            g
        })
        .collect();
    let mut g = vec![0.0f32; k * k];
    for part in &partials {
        axpy(1.0, part, &mut g);
    }
    symmetrize(&mut g, k);
    for d in 0..k {
        g[d * k + d] += reg;
    }
    g
}

/// `G = Q Λ Qᵀ` (eigendecomposition of the symmetric `YᵀY + λI`), for the conjugate
/// gradient in `G`'s eigenbasis: there `G` is the diagonal `Λ`, so `G p` costs `k` instead
/// of `2k²` per row and CG step. CG is invariant under an orthogonal change of basis, so
/// the iterates are those of the plain CG (up to rounding). The price: the fixed side
/// rotated once per sweep (`Ỹ = Y Q`) and every solved row rotated in and out
/// (`x̃ = x Q`, `x = x̃ Qᵀ`), two `k × k` products per row instead of `1 + cg_steps`.
struct Eigen {
    /// `Q`, row-major.
    q: Vec<f32>,
    /// `Qᵀ`, row-major.
    qt: Vec<f32>,
    /// `Λ`.
    lambda: Vec<f32>,
}

impl Eigen {
    /// The decomposition of the row-major `k × k` symmetric `g` (f64, sequential, so
    /// fixed by the inputs); none when it fails to converge or is not finite.
    fn of(g: &[f32], k: usize) -> Option<Eigen> {
        use faer::linalg::evd::{ComputeEigenvectors, self_adjoint_evd, self_adjoint_evd_scratch};
        let a = faer::Mat::<f64>::from_fn(k, k, |i, j| f64::from(g[i * k + j]));
        let mut lambda = faer::diag::Diag::<f64>::zeros(k);
        let mut u = faer::Mat::<f64>::zeros(k, k);
        let par = faer::Par::Seq;
        let mut mem = faer::dyn_stack::MemBuffer::new(self_adjoint_evd_scratch::<f64>(
            k,
            ComputeEigenvectors::Yes,
            par,
            Default::default(),
        ));
        self_adjoint_evd(
            a.as_ref(),
            lambda.as_mut(),
            Some(u.as_mut()),
            par,
            faer::dyn_stack::MemStack::new(&mut mem),
            Default::default(),
        )
        .ok()?;
        let mut e = Eigen {
            q: vec![0.0; k * k],
            qt: vec![0.0; k * k],
            lambda: (0..k).map(|i| lambda[i] as f32).collect(),
        };
        for i in 0..k {
            for j in 0..k {
                let v = u[(i, j)] as f32;
                e.q[i * k + j] = v;
                e.qt[j * k + i] = v;
            }
        }
        let finite = e.q.iter().chain(&e.lambda).all(|v| v.is_finite());
        finite.then_some(e)
    }
}

/// The eigendecomposition of `G` runs on one thread; it costs about as much as this
/// many `k × k` row products per factor (measured at 64 factors: on ml-100k, whose
/// user side saved only 204 row products a sweep, the eigenbasis made an iteration
/// 15-20 % slower at 2 threads; on syn1m and the sparse set it saves far more).
const EIGEN_COST_ROWS_PER_FACTOR: usize = 32;

/// True when CG in `G`'s eigenbasis costs fewer `k × k` products than the plain one:
/// rotating the `n_fixed` rows of the fixed side once, each solved row in and out
/// (2) and the eigendecomposition itself versus `1 + steps` products per solved row.
fn eigenbasis_pays(solved_rows: usize, n_fixed: usize, steps: usize, k: usize) -> bool {
    let cost = n_fixed.saturating_add(EIGEN_COST_ROWS_PER_FACTOR.saturating_mul(k));
    steps >= 2 && solved_rows.saturating_mul(steps - 1) > cost
}

/// `out_r = v_r M` for every row (fixed chunks of 256 rows in parallel; each row's
/// result depends only on that row).
fn rotate_rows(v: &[f32], m: &[f32], k: usize) -> Factors {
    // A `Factors` for its cache-line-aligned rows.
    let mut out = Factors::zeros(v.len() / k.max(1), k);
    const CHUNK_ROWS: usize = 256;
    out.as_mut_slice()
        .par_chunks_mut(CHUNK_ROWS * k.max(1))
        .zip(v.par_chunks(CHUNK_ROWS * k.max(1)))
        .for_each(|(o, i)| {
            wide(
                #[inline(always)]
                |f| {
                    if f {
                        matvec_rows::<true>(m, k, i, o)
                    } else {
                        matvec_rows::<false>(m, k, i, o)
                    }
                },
            )
        });
    out
}

/// The `k × k` operator of a side's CG: `G` itself, or `Λ` in `G`'s eigenbasis.
#[derive(Clone, Copy)]
enum GramOp<'a> {
    /// `G`, row-major.
    Dense(&'a [f32]),
    /// `G = Q Λ Qᵀ`.
    Eigen(&'a Eigen),
}

impl GramOp<'_> {
    /// `out_r = G v_r` (or `Λ v_r`) for every row of `v`.
    #[inline(always)]
    fn apply<const F: bool>(self, k: usize, v: &[f32], out: &mut [f32]) {
        match self {
            GramOp::Dense(g) => matvec_rows::<F>(g, k, v, out),
            GramOp::Eigen(e) => {
                for (o, vr) in out.chunks_exact_mut(k).zip(v.chunks_exact(k)) {
                    for ((o, &x), &l) in o.iter_mut().zip(vr).zip(&e.lambda) {
                        *o = l * x;
                    }
                }
            }
        }
    }
}

/// Per-task scratch buffers: `ROWS_PER_TASK` rows of `k` for the CG vectors (the rows
/// of a task run their CG steps together, so `G p` is one small matrix product).
struct Scratch {
    x: Vec<f32>,
    r: Vec<f32>,
    p: Vec<f32>,
    ap: Vec<f32>,
    gp: Vec<f32>,
    q: Vec<f32>,
    dots: Vec<f32>,
    pdots: Vec<f32>,
    a: Vec<f32>,
}

impl Scratch {
    fn new(k: usize) -> Self {
        let n = ROWS_PER_TASK * k;
        Scratch {
            x: vec![0.0; n],
            r: vec![0.0; n],
            p: vec![0.0; n],
            ap: vec![0.0; n],
            gp: vec![0.0; n],
            q: vec![0.0; n],
            dots: Vec::new(),
            pdots: Vec::new(),
            a: Vec::new(),
        }
    }
}

/// Solves every row of `x` given the fixed factors `y` and the rows' confidences `c`.
/// Returns the loss terms of this side: `Σ_rows [xᵀ(YᵀY + λI)x + Σ_i (c−1)d² − 2cd + c]`
/// with `d = x·y_i` for the final `x`.
fn solve_side(c: Csr<'_>, x: &mut Factors, y: &Factors, p: AlsParams) -> f64 {
    solve_side_with(c, x, y, p, true)
}

/// [`solve_side`]; `eigenbasis: false` never takes the eigenbasis CG (tests).
fn solve_side_with(
    c: Csr<'_>,
    x: &mut Factors,
    y: &Factors,
    p: AlsParams,
    eigenbasis: bool,
) -> f64 {
    let k = x.cols();
    let g = gram_plus_reg(y, p.regularization);
    let solved = (0..x.rows()).filter(|&r| !c.range(r).is_empty()).count();
    let eigen =
        (eigenbasis && p.solver == Solver::Cg && eigenbasis_pays(solved, y.rows(), p.cg_steps, k))
            .then(|| Eigen::of(&g, k))
            .flatten();
    let rotated = eigen.as_ref().map(|e| rotate_rows(y.as_slice(), &e.q, k));
    let (yv, op) = match (&eigen, &rotated) {
        (Some(e), Some(r)) => (r.as_slice(), GramOp::Eigen(e)),
        _ => (y.as_slice(), GramOp::Dense(&g)),
    };
    let partials: Vec<f64> = x
        .as_mut_slice()
        .par_chunks_mut(ROWS_PER_TASK * k.max(1))
        .enumerate()
        .map_init(
            || Scratch::new(k),
            |s, (task, rows)| {
                let g = &g[..];
                wide(
                    #[inline(always)]
                    |fused| {
                        if fused {
                            solve_rows::<true>(c, rows, task * ROWS_PER_TASK, yv, g, op, p, s)
                        } else {
                            solve_rows::<false>(c, rows, task * ROWS_PER_TASK, yv, g, op, p, s)
                        }
                    },
                )
            },
        )
        .collect();
    partials.iter().sum()
}

/// Solves the rows of one task (rows `first..`), returns their loss terms. With
/// [`GramOp::Eigen`], `yv` is the rotated `Ỹ` and the rows are rotated in and out.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn solve_rows<const F: bool>(
    c: Csr<'_>,
    rows: &mut [f32],
    first: usize,
    yv: &[f32],
    g: &[f32],
    op: GramOp<'_>,
    p: AlsParams,
    s: &mut Scratch,
) -> f64 {
    let k = p.factors;
    if p.solver == Solver::Cg {
        return match op {
            GramOp::Dense(_) => solve_cg_rows::<F>(c, rows, first, yv, op, p.cg_steps, s),
            GramOp::Eigen(e) => {
                let n = rows.len();
                let mut xt = std::mem::take(&mut s.x);
                matvec_rows::<F>(&e.q, k, rows, &mut xt[..n]);
                let loss = solve_cg_rows::<F>(c, &mut xt[..n], first, yv, op, p.cg_steps, s);
                matvec_rows::<F>(&e.qt, k, &xt[..n], rows);
                s.x = xt;
                loss
            }
        };
    }
    let mut loss = 0.0f64;
    for (j, xr) in rows.chunks_exact_mut(k).enumerate() {
        let range = c.range(first + j);
        if range.is_empty() {
            xr.fill(0.0);
            continue;
        }
        let idx = &c.indices[range.clone()];
        let conf = &c.data[range];
        loss += solve_cholesky::<F>(xr, idx, conf, yv, g, s);
    }
    loss
}

#[inline(always)]
fn yrow(y: &[f32], i: u32, k: usize) -> &[f32] {
    let i = i as usize;
    &y[i * k..(i + 1) * k]
}

/// Conjugate gradient on `A x = b` with `A = G + Σ (c−1) y yᵀ`, `b = Σ c y` for every
/// row of the task, each starting from its current `x`. The rows step together: `G p`
/// of all of them is one [`matvec_rows`] product; each row's sparse part is one fused
/// pass ([`sparse_apply`]). Tracks `G x` and the dots `x·y_i` through the steps so each
/// row's loss comes out without another pass. A row stops early (as in a one-row CG)
/// when its residual vanishes or `pᵀAp` is not positive; the arithmetic of a row does
/// not depend on the other rows of its task.
#[inline(always)]
fn solve_cg_rows<const F: bool>(
    c: Csr<'_>,
    rows: &mut [f32],
    first: usize,
    y: &[f32],
    g: GramOp<'_>,
    steps: usize,
    s: &mut Scratch,
) -> f64 {
    let k = match g {
        GramOp::Dense(g) => g.len().isqrt(),
        GramOp::Eigen(e) => e.lambda.len(),
    };
    if k == 0 {
        return 0.0;
    }
    let nrows = (rows.len() / k).min(ROWS_PER_TASK);
    let n = nrows * k;
    let base = c.indptr[first];
    let cells = c.indptr[first + nrows] - base;
    s.dots.resize(cells, 0.0);
    s.pdots.resize(cells, 0.0);
    // q = G x for every row.
    g.apply::<F>(k, &rows[..n], &mut s.q[..n]);
    let mut rsold = [0.0f32; ROWS_PER_TASK];
    let mut active = [false; ROWS_PER_TASK];
    for j in 0..nrows {
        let range = c.range(first + j);
        let xr = &mut rows[j * k..(j + 1) * k];
        if range.is_empty() {
            xr.fill(0.0);
            continue;
        }
        let (idx, conf) = (&c.indices[range.clone()], &c.data[range.clone()]);
        let dots = &mut s.dots[range.start - base..range.end - base];
        // r = b - A x.
        let r = &mut s.r[j * k..(j + 1) * k];
        for (rv, qv) in r.iter_mut().zip(&s.q[j * k..(j + 1) * k]) {
            *rv = -qv;
        }
        sparse_apply::<F>(y, k, (idx, conf), xr, dots, r, |c, d| c - (c - 1.0) * d);
        s.p[j * k..(j + 1) * k].copy_from_slice(r);
        rsold[j] = dot_k::<F>(r, r);
        active[j] = rsold[j] >= 1e-20;
    }
    for _ in 0..steps {
        if !active.iter().any(|&a| a) {
            break;
        }
        g.apply::<F>(k, &s.p[..n], &mut s.gp[..n]);
        for j in 0..nrows {
            if !active[j] {
                continue;
            }
            let range = c.range(first + j);
            let (idx, conf) = (&c.indices[range.clone()], &c.data[range.clone()]);
            let cells = range.start - base..range.end - base;
            let rk = j * k..(j + 1) * k;
            let (pj, gpj) = (&s.p[rk.clone()], &s.gp[rk.clone()]);
            let ap = &mut s.ap[rk.clone()];
            ap.copy_from_slice(gpj);
            let pdots = &mut s.pdots[cells.clone()];
            sparse_apply::<F>(y, k, (idx, conf), pj, pdots, ap, |c, d| (c - 1.0) * d);
            let pap = dot_k::<F>(pj, ap);
            if pap <= 0.0 || !pap.is_finite() {
                active[j] = false;
                continue;
            }
            let alpha = rsold[j] / pap;
            axpy_k::<F>(alpha, pj, &mut rows[rk.clone()]);
            let r = &mut s.r[rk.clone()];
            axpy_k::<F>(-alpha, ap, r);
            axpy_k::<F>(alpha, gpj, &mut s.q[rk.clone()]);
            axpy_k::<F>(alpha, &s.pdots[cells.clone()], &mut s.dots[cells]);
            let rsnew = dot_k::<F>(r, r);
            if rsnew < 1e-20 {
                active[j] = false;
                continue;
            }
            let beta = rsnew / rsold[j];
            for (pv, rv) in s.p[rk].iter_mut().zip(r.iter()) {
                *pv = rv + beta * *pv;
            }
            rsold[j] = rsnew;
        }
    }
    let mut loss = 0.0f64;
    for j in 0..nrows {
        let range = c.range(first + j);
        if range.is_empty() {
            continue;
        }
        let rk = j * k..(j + 1) * k;
        loss += row_loss::<F>(
            &rows[rk.clone()],
            &s.q[rk],
            &s.dots[range.start - base..range.end - base],
            &c.data[range],
        );
    }
    loss
}

/// `xᵀq + Σ [(c−1)d² − 2cd + c]` with `q = G x`, `d = x·y_i`.
#[inline(always)]
fn row_loss<const F: bool>(x: &[f32], q: &[f32], dots: &[f32], conf: &[f32]) -> f64 {
    let mut l = f64::from(dot_k::<F>(x, q));
    for (&d, &c) in dots.iter().zip(conf) {
        let (d, c) = (f64::from(d), f64::from(c));
        l += (c - 1.0) * d * d - 2.0 * c * d + c;
    }
    l
}

/// Exact solve: builds `A = G + Σ (c−1) y yᵀ`, `b = Σ c y`, Cholesky. Falls back to the
/// previous `x` if `A` is not positive definite (only possible with λ = 0).
#[inline(always)]
fn solve_cholesky<const F: bool>(
    x: &mut [f32],
    idx: &[u32],
    conf: &[f32],
    y: &[f32],
    g: &[f32],
    s: &mut Scratch,
) -> f64 {
    let k = x.len();
    s.a.clear();
    s.a.extend_from_slice(g);
    let b = &mut s.r[..k];
    b.fill(0.0);
    for (&i, &c) in idx.iter().zip(conf) {
        let yi = yrow(y, i, k);
        axpy_k::<F>(c, yi, b);
        let w = c - 1.0;
        if w != 0.0 {
            for (a, arow) in yi.iter().zip(s.a.chunks_exact_mut(k)) {
                axpy_k::<F>(w * a, yi, arow);
            }
        }
    }
    if cholesky_solve(&mut s.a, b) {
        x.copy_from_slice(b);
    }
    matvec::<F>(g, x, &mut s.q[..k]);
    s.dots.clear();
    s.dots
        .extend(idx.iter().map(|&i| dot_k::<F>(yrow(y, i, k), x)));
    row_loss::<F>(x, &s.q[..k], &s.dots, conf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use recops_data::Entry;

    fn toy() -> Interactions {
        // Two taste groups: users 0-3 like items 0-3, users 4-7 like items 4-7.
        let mut cells = Vec::new();
        for u in 0..8u32 {
            for i in 0..8u32 {
                if (u < 4) == (i < 4) && (u + i) % 3 != 0 {
                    cells.push(Entry {
                        user: u,
                        item: i,
                        rating: 4.0,
                        timestamp: 0,
                    });
                }
            }
        }
        Interactions::from_entries(8, 8, &cells, |e| 1.0 + 10.0 * e.rating).unwrap()
    }

    fn params(solver: Solver) -> AlsParams {
        AlsParams {
            factors: 4,
            regularization: 0.05,
            solver,
            cg_steps: 3,
        }
    }

    /// The loss of the full objective computed naively over every cell.
    fn naive_loss(m: &Interactions, x: &Factors, y: &Factors, reg: f64) -> f64 {
        let mut l = 0.0;
        let mut conf_sum = 0.0;
        for u in 0..m.n_users() {
            let (items, confs) = m.user_row(u);
            for i in 0..m.n_items() {
                let d = f64::from(dot(x.row(u), y.row(i)));
                match items.iter().position(|&j| j as usize == i) {
                    Some(pos) => {
                        let c = f64::from(confs[pos]);
                        conf_sum += c;
                        l += c * (1.0 - d).powi(2);
                    }
                    None => l += d * d,
                }
            }
        }
        l += reg * (sum_squares(x.as_slice()) + sum_squares(y.as_slice()));
        l / (conf_sum + (m.n_users() * m.n_items() - m.nnz()) as f64)
    }

    #[test]
    fn tracked_loss_equals_the_naive_objective_and_decreases() {
        for solver in [Solver::Cg, Solver::Cholesky] {
            let m = toy();
            let mut als = Als::new(params(solver), &m, 7);
            let mut last = f64::INFINITY;
            for _ in 0..8 {
                let loss = als.iterate();
                let naive = naive_loss(&m, als.users(), als.items(), 0.05);
                assert!(
                    (loss - naive).abs() < 1e-4 * naive.max(1.0),
                    "{solver:?} {loss} vs {naive}"
                );
                assert!(
                    loss <= last + 1e-6,
                    "{solver:?}: loss went up {last} -> {loss}"
                );
                last = loss;
            }
            // The model separates the two taste groups.
            let s_in = dot(als.users().row(0), als.items().row(1));
            let s_out = dot(als.users().row(0), als.items().row(5));
            assert!(s_in > s_out + 0.3, "{solver:?}: {s_in} vs {s_out}");
        }
    }

    #[test]
    fn cg_in_the_eigenbasis_gives_the_plain_cg_solution() {
        // 300 users x 9 items, 6 factors: the user side takes the eigenbasis
        // (300 * 2 > 9 + 32 * 6).
        let mut cells = Vec::new();
        for u in 0..300u32 {
            for i in 0..9u32 {
                if (u * 5 + i * 3) % 4 == 0 || (u + i) % 7 == 0 {
                    cells.push(Entry {
                        user: u,
                        item: i,
                        rating: 1.0 + ((u + 2 * i) % 5) as f32,
                        timestamp: 0,
                    });
                }
            }
        }
        let m = Interactions::from_entries(300, 9, &cells, |e| 1.0 + 10.0 * e.rating).unwrap();
        let p = AlsParams {
            factors: 6,
            ..params(Solver::Cg)
        };
        assert!(eigenbasis_pays(300, 9, p.cg_steps, 6) && !eigenbasis_pays(9, 300, p.cg_steps, 6));
        // ml-100k's user side at 64 factors: too few rows to pay for the decomposition.
        assert!(!eigenbasis_pays(943, 1682, p.cg_steps, 64));
        let y = random_factors(9, 6, 5, 2);
        let start = random_factors(300, 6, 5, 1);
        let (mut plain, mut eig) = (start.clone(), start.clone());
        let lp = solve_side_with(m.user_csr(), &mut plain, &y, p, false);
        let le = solve_side_with(m.user_csr(), &mut eig, &y, p, true);
        assert!((lp - le).abs() < 1e-4 * lp.abs().max(1.0), "{lp} vs {le}");
        let scale = plain.as_slice().iter().fold(0.0f32, |a, v| a.max(v.abs()));
        for (a, b) in plain.as_slice().iter().zip(eig.as_slice()) {
            assert!((a - b).abs() < 1e-3 * scale, "{a} vs {b}");
        }
        assert_ne!(plain.as_slice(), start.as_slice());
    }

    #[test]
    fn results_do_not_depend_on_the_thread_count() {
        let m = toy();
        let run = |threads| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let mut als = Als::new(params(Solver::Cg), &m, 3);
                for _ in 0..3 {
                    als.iterate();
                }
                als.into_factors()
            })
        };
        assert_eq!(run(1), run(3));
    }

    #[test]
    fn batched_cg_is_bit_identical_across_thread_counts_on_many_tasks() {
        // 45 users (6 tasks, the last one short), 37 items, a few empty rows.
        let mut cells = Vec::new();
        for u in 0..45u32 {
            for i in 0..37u32 {
                if u % 11 != 5 && (u * 7 + i * 13) % 5 < 2 {
                    cells.push(Entry {
                        user: u,
                        item: i,
                        rating: 1.0 + ((u + i) % 5) as f32,
                        timestamp: 0,
                    });
                }
            }
        }
        let m = Interactions::from_entries(45, 37, &cells, |e| 1.0 + 10.0 * e.rating).unwrap();
        let p = AlsParams {
            factors: 20,
            ..params(Solver::Cg)
        };
        let run = |threads| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let mut als = Als::new(p, &m, 9);
                let losses: Vec<f64> = (0..4).map(|_| als.iterate()).collect();
                (losses, als.into_factors())
            })
        };
        let one = run(1);
        assert_eq!(one, run(2));
        assert_eq!(one, run(3));
        assert!(one.0.windows(2).all(|w| w[1] <= w[0] + 1e-9), "{:?}", one.0);
        assert!(one.1.0.row(5).iter().all(|&v| v == 0.0));
    }

    #[test]
    fn rows_without_interactions_get_zero_factors() {
        let cells = [Entry {
            user: 0,
            item: 0,
            rating: 5.0,
            timestamp: 0,
        }];
        let m = Interactions::from_entries(2, 2, &cells, |e| 1.0 + e.rating).unwrap();
        let mut als = Als::new(params(Solver::Cg), &m, 1);
        als.iterate();
        assert!(als.users().row(1).iter().all(|&v| v == 0.0));
        assert!(als.items().row(1).iter().all(|&v| v == 0.0));
        assert!(als.users().all_finite() && als.items().all_finite());
    }
}
