//! Hand-written f32 kernels for the hot loops, shaped so the compiler vectorises them:
//! fixed-width lane arrays (`LANES` independent accumulators) over `chunks_exact`, then a
//! scalar tail. They are plain safe Rust; the code generator turns the lane loops into
//! SIMD instructions of the target (SSE2 on the x86-64 baseline, wider with
//! `-C target-cpu`).

/// Independent accumulators per loop: enough to hide add latency and fill SIMD registers.
const LANES: usize = 16;

/// `a · b` over the common length.
#[inline]
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
#[inline]
pub(crate) fn axpy(alpha: f32, x: &[f32], y: &mut [f32]) {
    let n = x.len().min(y.len());
    let (x, y) = (&x[..n], &mut y[..n]);
    let mut cy = y.chunks_exact_mut(LANES);
    let mut cx = x.chunks_exact(LANES);
    for (yy, xx) in (&mut cy).zip(&mut cx) {
        for l in 0..LANES {
            yy[l] += alpha * xx[l];
        }
    }
    for (yy, xx) in cy.into_remainder().iter_mut().zip(cx.remainder()) {
        *yy += alpha * xx;
    }
}

/// `out = m · v` for a square row-major `k × k` matrix `m` (`k = v.len()`).
#[inline]
pub(crate) fn matvec(m: &[f32], v: &[f32], out: &mut [f32]) {
    let k = v.len();
    // Four rows at a time share the loads of `v`.
    let mut rows = m[..k * k].chunks_exact(4 * k);
    let mut outs = out[..k].chunks_exact_mut(4);
    for (block, o) in (&mut rows).zip(&mut outs) {
        let (r0, rest) = block.split_at(k);
        let (r1, rest) = rest.split_at(k);
        let (r2, r3) = rest.split_at(k);
        let mut a0 = [0.0f32; 8];
        let mut a1 = [0.0f32; 8];
        let mut a2 = [0.0f32; 8];
        let mut a3 = [0.0f32; 8];
        let full = k - k % 8;
        let mut c = 0;
        while c < full {
            let vv = &v[c..c + 8];
            let (x0, x1, x2, x3) = (&r0[c..c + 8], &r1[c..c + 8], &r2[c..c + 8], &r3[c..c + 8]);
            for l in 0..8 {
                a0[l] += x0[l] * vv[l];
                a1[l] += x1[l] * vv[l];
                a2[l] += x2[l] * vv[l];
                a3[l] += x3[l] * vv[l];
            }
            c += 8;
        }
        let mut t = [0.0f32; 4];
        for c in full..k {
            t[0] += r0[c] * v[c];
            t[1] += r1[c] * v[c];
            t[2] += r2[c] * v[c];
            t[3] += r3[c] * v[c];
        }
        o[0] = sum8(&a0) + t[0];
        o[1] = sum8(&a1) + t[1];
        o[2] = sum8(&a2) + t[2];
        o[3] = sum8(&a3) + t[3];
    }
    for (row, o) in rows.remainder().chunks_exact(k).zip(outs.into_remainder()) {
        *o = dot(row, v);
    }
}

#[inline(always)]
fn sum8(a: &[f32; 8]) -> f32 {
    ((a[0] + a[4]) + (a[2] + a[6])) + ((a[1] + a[5]) + (a[3] + a[7]))
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
            let m: Vec<f32> = (0..k * k).map(|i| ((i * 7 % 13) as f32) - 6.0).collect();
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
