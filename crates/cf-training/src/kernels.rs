//! Hand-written f32 kernels for the hot loops, shaped so the compiler vectorises them:
//! fixed-width lane arrays (`LANES` independent accumulators) over `chunks_exact`, then a
//! scalar tail. They are plain safe Rust; the code generator turns the lane loops into
//! SIMD instructions of the target (SSE2 on the x86-64 baseline, wider with
//! `-C target-cpu`).

/// Independent accumulators per loop: enough to hide add latency and fill SIMD registers.
const LANES: usize = 16;

/// `a · b` over the common length.
#[inline(always)]
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f32; LANES];
    let ca = a.chunks_exact(LANES);
    let cb = b.chunks_exact(LANES);
    let (ta, tb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for l in 0..LANES {
            acc[l] += x[l] * y[l];
        }
    }
    let mut tail = 0.0f32;
    for (x, y) in ta.iter().zip(tb) {
        tail += x * y;
    }
    reduce(&acc) + tail
}

/// Pairwise sum of the lanes (a fixed order, so results are reproducible).
#[inline(always)]
fn reduce(acc: &[f32; LANES]) -> f32 {
    let mut h = [0.0f32; LANES / 2];
    for l in 0..LANES / 2 {
        h[l] = acc[l] + acc[l + LANES / 2];
    }
    let q = [h[0] + h[4], h[1] + h[5], h[2] + h[6], h[3] + h[7]];
    (q[0] + q[2]) + (q[1] + q[3])
}

/// `y += alpha * x` over the common length.
#[inline(always)]
pub(crate) fn axpy(alpha: f32, x: &[f32], y: &mut [f32]) {
    let n = x.len().min(y.len());
    let (x, y) = (&x[..n], &mut y[..n]);
    let mut cy = y.chunks_exact_mut(LANES);
    let mut cx = x.chunks_exact(LANES);
    for (yy, xx) in (&mut cy).zip(&mut cx) {
        // Load, compute, store through a local array: the vectoriser then needs no
        // aliasing facts (which inlining may lose).
        let mut t = [0.0f32; LANES];
        t.copy_from_slice(yy);
        for l in 0..LANES {
            t[l] += alpha * xx[l];
        }
        yy.copy_from_slice(&t);
    }
    for (yy, xx) in cy.into_remainder().iter_mut().zip(cx.remainder()) {
        *yy += alpha * xx;
    }
}

/// `out = m · v` for a **symmetric** row-major `k × k` matrix `m` (`k = v.len()`),
/// computed as `Σ_c v[c] · m[c, :]` over blocks of 32 columns held in registers (no
/// horizontal sums, one broadcast per row).
#[inline]
pub(crate) fn matvec(m: &[f32], v: &[f32], out: &mut [f32]) {
    const BLOCK: usize = 32;
    let k = v.len();
    let m = &m[..k * k];
    let out = &mut out[..k];
    let mut j0 = 0;
    while j0 + BLOCK <= k {
        let mut acc = [0.0f32; BLOCK];
        for (c, &vc) in v.iter().enumerate() {
            let row = &m[c * k + j0..c * k + j0 + BLOCK];
            for l in 0..BLOCK {
                acc[l] += vc * row[l];
            }
        }
        out[j0..j0 + BLOCK].copy_from_slice(&acc);
        j0 += BLOCK;
    }
    while j0 + 8 <= k {
        let mut acc = [0.0f32; 8];
        for (c, &vc) in v.iter().enumerate() {
            let row = &m[c * k + j0..c * k + j0 + 8];
            for l in 0..8 {
                acc[l] += vc * row[l];
            }
        }
        out[j0..j0 + 8].copy_from_slice(&acc);
        j0 += 8;
    }
    for j in j0..k {
        let mut acc = 0.0f32;
        for (c, &vc) in v.iter().enumerate() {
            acc += vc * m[c * k + j];
        }
        out[j] = acc;
    }
}

/// Adds `Σ rows_iᵀ rows_i` (rows of width `k`) to the row-major `k × k` matrix `g`.
pub(crate) fn add_gram(rows: &[f32], k: usize, g: &mut [f32]) {
    for row in rows.chunks_exact(k) {
        for (a, grow) in row.iter().zip(g.chunks_exact_mut(k)) {
            if *a != 0.0 {
                axpy(*a, row, grow);
            }
        }
    }
}

/// Solves `a x = b` in place (`b` becomes `x`) for a symmetric positive definite
/// row-major `k × k` matrix `a` by Cholesky (`a` is overwritten by its factor).
/// Returns false when `a` is not positive definite.
pub(crate) fn cholesky_solve(a: &mut [f32], b: &mut [f32]) -> bool {
    let k = b.len();
    // a = L Lᵀ, L stored in the lower triangle (row-major).
    for j in 0..k {
        let (row_j, below) = a[j * k..k * k].split_at_mut(k);
        let d = row_j[j] - dot(&row_j[..j], &row_j[..j]);
        if d <= 0.0 || !d.is_finite() {
            return false;
        }
        let d = d.sqrt();
        row_j[j] = d;
        let inv = 1.0 / d;
        // Rows below j: L[i][j] = (a[i][j] - L[i][..j]·L[j][..j]) / L[j][j].
        for row_i in below.chunks_exact_mut(k) {
            row_i[j] = (row_i[j] - dot(&row_i[..j], &row_j[..j])) * inv;
        }
    }
    // Forward: L y = b.
    for i in 0..k {
        let row = &a[i * k..i * k + i];
        b[i] = (b[i] - dot(row, &b[..i])) / a[i * k + i];
    }
    // Backward: Lᵀ x = y.
    for i in (0..k).rev() {
        let mut s = b[i];
        for j in i + 1..k {
            s -= a[j * k + i] * b[j];
        }
        b[i] = s / a[i * k + i];
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive_dot(a: &[f32], b: &[f32]) -> f32 {
        a.iter()
            .zip(b)
            .map(|(x, y)| f64::from(*x) * f64::from(*y))
            .sum::<f64>() as f32
    }

    #[test]
    fn dot_axpy_matvec_match_naive_for_all_lengths() {
        for k in [1usize, 3, 7, 8, 15, 16, 17, 31, 64, 65, 100] {
            let a: Vec<f32> = (0..k).map(|i| (i as f32 * 0.37).sin()).collect();
            let b: Vec<f32> = (0..k).map(|i| (i as f32 * 0.11).cos()).collect();
            assert!((dot(&a, &b) - naive_dot(&a, &b)).abs() < 1e-4, "k={k}");
            let mut y = b.clone();
            axpy(0.5, &a, &mut y);
            for i in 0..k {
                assert!((y[i] - (b[i] + 0.5 * a[i])).abs() < 1e-6);
            }
            // A symmetric matrix.
            let m: Vec<f32> = (0..k * k)
                .map(|i| {
                    let (r, c) = (i / k, i % k);
                    (((r.min(c) * 7 + r.max(c) * 3) % 13) as f32) - 6.0
                })
                .collect();
            let mut out = vec![0.0; k];
            matvec(&m, &a, &mut out);
            for r in 0..k {
                let want = naive_dot(&m[r * k..(r + 1) * k], &a);
                assert!(
                    (out[r] - want).abs() < 1e-3 * (1.0 + want.abs()),
                    "k={k} r={r}"
                );
            }
        }
    }

    #[test]
    fn cholesky_solves_a_known_system() {
        // A = [[4, 2], [2, 3]], b = [2, 1] -> x = [0.5, 0].
        let mut a = vec![4.0, 2.0, 2.0, 3.0];
        let mut b = vec![2.0, 1.0];
        assert!(cholesky_solve(&mut a, &mut b));
        assert!((b[0] - 0.5).abs() < 1e-6 && b[1].abs() < 1e-6, "{b:?}");
        let mut not_pd = vec![1.0, 2.0, 2.0, 1.0];
        assert!(!cholesky_solve(&mut not_pd, &mut [1.0, 1.0]));
    }

    #[test]
    fn gram_is_the_sum_of_outer_products() {
        let rows = vec![1.0, 2.0, 3.0, 4.0];
        let mut g = vec![0.0; 4];
        add_gram(&rows, 2, &mut g);
        assert_eq!(g, vec![10.0, 14.0, 14.0, 20.0]);
    }
}
