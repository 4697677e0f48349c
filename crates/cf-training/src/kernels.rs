//! Hand-written f32 kernels for the hot loops, shaped so the compiler vectorises them:
//! fixed-width lane arrays (`LANES` independent accumulators) over `as_chunks`, then a
//! scalar tail. They are plain safe Rust and `#[inline(always)]`, so the callers compile
//! them twice: for the x86-64 baseline (SSE2, `FUSED = false`: separate multiply and
//! add) and, inside [`wide`], for AVX2 with fused multiply-add (`FUSED = true`) when the
//! CPU has it (runtime detection through `pulp`, which keeps this crate free of
//! `unsafe`). Results are reproducible on one machine; FMA rounds differently, so an
//! AVX2 machine and an SSE-only one may differ in the last bits.

/// Runs `f` compiled for AVX2 + FMA when the CPU has them (`f` gets `true`), else as
/// plain baseline code (`f` gets `false`). `f` must be `#[inline(always)]` all the way
/// down for the wide instructions to be used.
///
/// On a CPU with AVX-512 (pulp's `V4`) `f` is compiled for it instead: the fixed-width
/// kernels stay the same (a superset of AVX2), and [`sparse_apply`] holds whole factor
/// rows of `k` = 16, 32, 64 or 128 in 512-bit registers.
#[inline(always)]
pub(crate) fn wide<R>(f: impl FnOnce(bool) -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    if let Some(v4) = pulp::x86::V4::try_new() {
        return v4.vectorize(
            #[inline(always)]
            || f(true),
        );
    }
    #[cfg(target_arch = "x86_64")]
    if let Some(v3) = pulp::x86::V3::try_new() {
        return v3.vectorize(
            #[inline(always)]
            || f(true),
        );
    }
    f(false)
}

/// `a * b + c`, fused when `FUSED` (only inside [`wide`], where FMA is available).
#[inline(always)]
pub(crate) fn fmadd<const FUSED: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FUSED { a.mul_add(b, c) } else { a * b + c }
}

/// Independent accumulators per loop: enough to hide add latency and fill SIMD registers.
const LANES: usize = 16;

/// `a · b` over the common length.
#[inline(always)]
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    dot_k::<false>(a, b)
}

/// [`dot`], fused or not.
#[inline(always)]
pub(crate) fn dot_k<const FUSED: bool>(a: &[f32], b: &[f32]) -> f32 {
    // Inside `wide` the auto-vectoriser makes 2-lane FMAs of this reduction; explicit
    // 256-bit vectors do better. (`try_new` is a cached flag read.)
    #[cfg(target_arch = "x86_64")]
    if FUSED && let Some(simd) = pulp::x86::V3::try_new() {
        return dot_v3(simd, a, b);
    }
    let n = a.len().min(b.len());
    let (ca, ta) = a[..n].as_chunks::<8>();
    let (cb, tb) = b[..n].as_chunks::<8>();
    // One 8-lane accumulator (one 256-bit register, two 128-bit ones); the dots of
    // consecutive rows are independent, so the CPU overlaps their add chains.
    let mut acc = [0.0f32; 8];
    for (x, y) in ca.iter().zip(cb) {
        let mut t = acc;
        for l in 0..8 {
            t[l] = fmadd::<FUSED>(x[l], y[l], t[l]);
        }
        acc = t;
    }
    let mut tail = 0.0f32;
    for (x, y) in ta.iter().zip(tb) {
        tail = fmadd::<FUSED>(*x, *y, tail);
    }
    sum8(&acc) + tail
}

/// [`dot`] with explicit AVX2 vectors (only called inside [`wide`]).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn dot_v3(simd: pulp::x86::V3, a: &[f32], b: &[f32]) -> f32 {
    use pulp::Simd;
    let n = a.len().min(b.len());
    let (ah, at) = pulp::x86::V3::as_simd_f32s(&a[..n]);
    let (bh, bt) = pulp::x86::V3::as_simd_f32s(&b[..n]);
    let mut acc = simd.splat_f32s(0.0);
    for (x, y) in ah.iter().zip(bh) {
        acc = simd.mul_add_f32s(*x, *y, acc);
    }
    let mut tail = 0.0f32;
    for (x, y) in at.iter().zip(bt) {
        tail = x.mul_add(*y, tail);
    }
    simd.reduce_sum_f32s(acc) + tail
}

/// Tree sum of 8 lanes (a fixed order, so results are reproducible).
#[inline(always)]
fn sum8(v: &[f32; 8]) -> f32 {
    let q = [v[0] + v[4], v[1] + v[5], v[2] + v[6], v[3] + v[7]];
    (q[0] + q[2]) + (q[1] + q[3])
}

/// `y += alpha * x` over the common length.
#[inline(always)]
pub(crate) fn axpy(alpha: f32, x: &[f32], y: &mut [f32]) {
    axpy_k::<false>(alpha, x, y);
}

/// [`axpy`], fused or not.
#[inline(always)]
pub(crate) fn axpy_k<const FUSED: bool>(alpha: f32, x: &[f32], y: &mut [f32]) {
    let n = x.len().min(y.len());
    let (cy, ty) = y[..n].as_chunks_mut::<LANES>();
    let (cx, tx) = x[..n].as_chunks::<LANES>();
    for (yy, xx) in cy.iter_mut().zip(cx) {
        // Load, compute, store through a local array: the vectoriser then needs no
        // aliasing facts (which inlining may lose).
        let mut t = *yy;
        for l in 0..LANES {
            t[l] = fmadd::<FUSED>(alpha, xx[l], t[l]);
        }
        *yy = t;
    }
    for (yy, xx) in ty.iter_mut().zip(tx) {
        *yy = fmadd::<FUSED>(alpha, *xx, *yy);
    }
}

/// `out = m · v` for a **symmetric** row-major `k × k` matrix `m` (`k = v.len()`),
/// computed as `Σ_c v[c] · m[c, :]` over blocks of 32 columns held in registers (no
/// horizontal sums, one broadcast per row).
#[inline(always)]
pub(crate) fn matvec<const FUSED: bool>(m: &[f32], v: &[f32], out: &mut [f32]) {
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
                acc[l] = fmadd::<FUSED>(vc, row[l], acc[l]);
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
                acc[l] = fmadd::<FUSED>(vc, row[l], acc[l]);
            }
        }
        out[j0..j0 + 8].copy_from_slice(&acc);
        j0 += 8;
    }
    for j in j0..k {
        let mut acc = 0.0f32;
        for (c, &vc) in v.iter().enumerate() {
            acc = fmadd::<FUSED>(vc, m[c * k + j], acc);
        }
        out[j] = acc;
    }
}

/// `out_r = m · v_r` for every row `v_r` of the row-major `rows × k` matrix `v`, with a
/// **symmetric** row-major `k × k` matrix `m` (so `out = v m`): a small GEMM that
/// shares every loaded row of `m` between four vectors (four times fewer loads than
/// [`matvec`] per vector). Every output value is the same ordered sum
/// `Σ_c v_r[c] m[c, j]` as [`matvec`] computes, so the result of a row does not depend on
/// the other rows.
#[inline(always)]
pub(crate) fn matvec_rows<const FUSED: bool>(m: &[f32], k: usize, v: &[f32], out: &mut [f32]) {
    const R: usize = 4;
    const C: usize = 16;
    if k == 0 {
        return;
    }
    let m = &m[..k * k];
    let rows = v.len() / k;
    let (v, out) = (&v[..rows * k], &mut out[..rows * k]);
    let mut r0 = 0;
    while r0 + R <= rows {
        let vb = &v[r0 * k..(r0 + R) * k];
        let (v0, rest) = vb.split_at(k);
        let (v1, rest) = rest.split_at(k);
        let (v2, v3) = rest.split_at(k);
        let mut j0 = 0;
        while j0 + C <= k {
            let mut acc = [[0.0f32; C]; R];
            for (c, mrow) in m.chunks_exact(k).enumerate() {
                let Some(g) = mrow[j0..].first_chunk::<C>() else {
                    break;
                };
                let b = [v0[c], v1[c], v2[c], v3[c]];
                for r in 0..R {
                    let mut t = acc[r];
                    for l in 0..C {
                        t[l] = fmadd::<FUSED>(b[r], g[l], t[l]);
                    }
                    acc[r] = t;
                }
            }
            for (r, a) in acc.iter().enumerate() {
                out[(r0 + r) * k + j0..(r0 + r) * k + j0 + C].copy_from_slice(a);
            }
            j0 += C;
        }
        for j in j0..k {
            for (r, vr) in [v0, v1, v2, v3].into_iter().enumerate() {
                let mut a = 0.0f32;
                for (c, &vc) in vr.iter().enumerate() {
                    a = fmadd::<FUSED>(vc, m[c * k + j], a);
                }
                out[(r0 + r) * k + j] = a;
            }
        }
        r0 += R;
    }
    for r in r0..rows {
        matvec::<FUSED>(m, &v[r * k..(r + 1) * k], &mut out[r * k..(r + 1) * k]);
    }
}

/// The sparse half of `A v` for one row's least-squares problem, fused: for each
/// listed row `y_i` of `y` (width `k`) with confidence `c_i`, `d_i = y_i · v` is
/// stored in `dots[i]` and `coef(c_i, d_i) · y_i` added to `acc`. Rows go in groups
/// of four (four independent dots in flight, then their updates while the rows are
/// still in L1), in index order, so the result is fixed by the inputs.
#[inline(always)]
pub(crate) fn sparse_apply<const FUSED: bool>(
    y: &[f32],
    k: usize,
    (idx, conf): (&[u32], &[f32]),
    v: &[f32],
    dots: &mut [f32],
    acc: &mut [f32],
    coef: impl Fn(f32, f32) -> f32,
) {
    let row = |i: u32| {
        let i = i as usize;
        &y[i * k..(i + 1) * k]
    };
    let n = idx.len().min(conf.len()).min(dots.len());
    let (idx, conf, dots) = (&idx[..n], &conf[..n], &mut dots[..n]);
    // Inside `wide` on an AVX-512 CPU: whole rows in 512-bit registers.
    #[cfg(target_arch = "x86_64")]
    if FUSED && let Some(v4) = pulp::x86::V4::try_new() {
        let cells = (idx, conf);
        match k {
            16 => return sparse_apply_reg::<_, 1>(v4, y, cells, v, dots, acc, coef, reduce4(v4)),
            32 => return sparse_apply_reg::<_, 2>(v4, y, cells, v, dots, acc, coef, reduce4(v4)),
            64 => return sparse_apply_reg::<_, 4>(v4, y, cells, v, dots, acc, coef, reduce4(v4)),
            128 => return sparse_apply_reg::<_, 8>(v4, y, cells, v, dots, acc, coef, reduce4(v4)),
            _ => {}
        }
    }
    #[cfg(target_arch = "x86_64")]
    let simd = if FUSED {
        pulp::x86::V3::try_new()
    } else {
        None
    };
    #[cfg(target_arch = "x86_64")]
    let dot = |a: &[f32], b: &[f32]| match simd {
        Some(simd) => dot_v3(simd, a, b),
        None => dot_k::<false>(a, b),
    };
    #[cfg(not(target_arch = "x86_64"))]
    let dot = |a: &[f32], b: &[f32]| dot_k::<FUSED>(a, b);
    let (i4, it) = idx.as_chunks::<4>();
    let (c4, ct) = conf.as_chunks::<4>();
    let (d4, dt) = dots.as_chunks_mut::<4>();
    for (g, ((ii, cc), dd)) in i4.iter().zip(c4).zip(d4.iter_mut()).enumerate() {
        // The rows are scattered (sorted ids with gaps): ask for the rows two groups
        // ahead now, so their cache misses overlap this group's arithmetic.
        #[cfg(target_arch = "x86_64")]
        if let (Some(simd), Some(ahead)) = (simd, i4.get(g + 2)) {
            for &i in ahead {
                prefetch_row(simd, row(i));
            }
        }
        let ys = [row(ii[0]), row(ii[1]), row(ii[2]), row(ii[3])];
        let d = [dot(ys[0], v), dot(ys[1], v), dot(ys[2], v), dot(ys[3], v)];
        *dd = d;
        for l in 0..4 {
            axpy_k::<FUSED>(coef(cc[l], d[l]), ys[l], acc);
        }
    }
    for ((&i, &c), d) in it.iter().zip(ct).zip(dt.iter_mut()) {
        let yi = row(i);
        *d = dot(yi, v);
        axpy_k::<FUSED>(coef(c, *d), yi, acc);
    }
}

/// [`sparse_apply`] for `k = N × lanes` of `simd`: `v` and `acc` stay in `2N`
/// registers for the whole row list, so a cell costs `N` loads (its factor row), `2N`
/// fused multiply-adds and one horizontal sum, instead of reloading and storing `acc`
/// for every cell. Cells go in index order (the sum is fixed by the inputs); the rows two
/// groups of four ahead are prefetched as in [`sparse_apply`]. `sums4` forms the
/// horizontal sums of a group's four dots together ([`reduce4`] on AVX-512: the same
/// additions as one `reduce_sum_f32s` per dot, so bit-identical, in fewer instructions
/// and without a shuffle chain per cell).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn sparse_apply_reg<S: pulp::Simd, const N: usize>(
    simd: S,
    y: &[f32],
    (idx, conf): (&[u32], &[f32]),
    v: &[f32],
    dots: &mut [f32],
    acc: &mut [f32],
    coef: impl Fn(f32, f32) -> f32,
    sums4: impl Fn([S::f32s; 4]) -> [f32; 4],
) {
    let k = N * (core::mem::size_of::<S::f32s>() / core::mem::size_of::<f32>());
    #[inline(always)]
    fn load_n<S: pulp::Simd, const N: usize>(row: &[f32]) -> [S::f32s; N] {
        let (h, _) = S::as_simd_f32s(row);
        let mut out = [h[0]; N];
        out.copy_from_slice(&h[..N]);
        out
    }
    let load = |row: &[f32]| -> [S::f32s; N] { load_n::<S, N>(&row[..k]) };
    let row = |i: u32| {
        let i = i as usize;
        &y[i * k..(i + 1) * k]
    };
    let vv = load(v);
    let mut a = load(acc);
    #[inline(always)]
    fn dot_part<S: pulp::Simd, const N: usize>(
        simd: S,
        x: &[S::f32s; N],
        v: &[S::f32s; N],
    ) -> S::f32s {
        let mut d = simd.mul_f32s(x[0], v[0]);
        for n in 1..N {
            d = simd.mul_add_f32s(x[n], v[n], d);
        }
        d
    }
    #[inline(always)]
    fn dot_reg<S: pulp::Simd, const N: usize>(simd: S, x: &[S::f32s; N], v: &[S::f32s; N]) -> f32 {
        let mut d = simd.mul_f32s(x[0], v[0]);
        for n in 1..N {
            d = simd.mul_add_f32s(x[n], v[n], d);
        }
        simd.reduce_sum_f32s(d)
    }
    let prefetch = Prefetch::new();
    let (i4, it) = idx.as_chunks::<4>();
    let (c4, ct) = conf.as_chunks::<4>();
    let (d4, dt) = dots.as_chunks_mut::<4>();
    for (g, ((ii, cc), dd)) in i4.iter().zip(c4).zip(d4.iter_mut()).enumerate() {
        if let Some(ahead) = i4.get(g + 2) {
            for &i in ahead {
                prefetch.slice(row(i));
            }
        }
        let ys = [
            load(row(ii[0])),
            load(row(ii[1])),
            load(row(ii[2])),
            load(row(ii[3])),
        ];
        let d = sums4([
            dot_part(simd, &ys[0], &vv),
            dot_part(simd, &ys[1], &vv),
            dot_part(simd, &ys[2], &vv),
            dot_part(simd, &ys[3], &vv),
        ]);
        *dd = d;
        for l in 0..4 {
            let c = simd.splat_f32s(coef(cc[l], d[l]));
            for n in 0..N {
                a[n] = simd.mul_add_f32s(c, ys[l][n], a[n]);
            }
        }
    }
    for ((&i, &c), d) in it.iter().zip(ct).zip(dt.iter_mut()) {
        let yi = load(row(i));
        *d = dot_reg(simd, &yi, &vv);
        let c = simd.splat_f32s(coef(c, *d));
        for n in 0..N {
            a[n] = simd.mul_add_f32s(c, yi[n], a[n]);
        }
    }
    let (h, _) = S::as_mut_simd_f32s(&mut acc[..k]);
    h[..N].copy_from_slice(&a);
}

/// The horizontal sums of four vectors, each formed exactly as `V4::reduce_sum_f32s`
/// forms it (`s_i = v_i + v_{i+8}`, `t_i = s_i + s_{i+4}`, `u_i = t_i + t_{i+2}`,
/// `u_0 + u_1`), so bit-identical to it, but the four vectors' halves share the
/// shuffles and adds: 6 shuffles and 4 adds instead of 4 × 8 instructions.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn reduce4(simd: pulp::x86::V4) -> impl Fn([pulp::f32x16; 4]) -> [f32; 4] {
    #[inline(always)]
    move |p| {
        use core::arch::x86_64::__m512;
        let f = simd.avx512f;
        let [p0, p1, p2, p3]: [__m512; 4] = pulp::cast(p);
        // Blocks: s_0..3, s_4..7 of the first vector, then of the second.
        let s0 = f._mm512_add_ps(
            f._mm512_shuffle_f32x4::<0b01_00_01_00>(p0, p1),
            f._mm512_shuffle_f32x4::<0b11_10_11_10>(p0, p1),
        );
        let s1 = f._mm512_add_ps(
            f._mm512_shuffle_f32x4::<0b01_00_01_00>(p2, p3),
            f._mm512_shuffle_f32x4::<0b11_10_11_10>(p2, p3),
        );
        // Block q: t_0..3 of vector q.
        let t = f._mm512_add_ps(
            f._mm512_shuffle_f32x4::<0b10_00_10_00>(s0, s1),
            f._mm512_shuffle_f32x4::<0b11_01_11_01>(s0, s1),
        );
        // Lanes 0, 1 of block q: u_0, u_1; then lane 0: u_0 + u_1.
        let u = f._mm512_add_ps(t, f._mm512_shuffle_ps::<0x4E>(t, t));
        let r = f._mm512_add_ps(u, f._mm512_shuffle_ps::<0xB1>(u, u));
        let r: [f32; 16] = pulp::cast(r);
        [r[0], r[4], r[8], r[12]]
    }
}

/// Cache prefetch hints (x86-64 with AVX2; a no-op elsewhere). Hints never change
/// results and never fault.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Prefetch {
    #[cfg(target_arch = "x86_64")]
    simd: Option<pulp::x86::V3>,
}

impl Prefetch {
    /// Hints when the CPU supports them.
    pub(crate) fn new() -> Self {
        Prefetch {
            #[cfg(target_arch = "x86_64")]
            simd: pulp::x86::V3::try_new(),
        }
    }

    /// The cache line holding `v`.
    #[inline(always)]
    pub(crate) fn one<T>(self, v: &T) {
        #[cfg(target_arch = "x86_64")]
        if let Some(simd) = self.simd {
            simd.sse
                ._mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(std::ptr::from_ref(v).cast());
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = v;
    }

    /// Every cache line of `row`.
    #[inline(always)]
    pub(crate) fn slice(self, row: &[f32]) {
        const LINE: usize = 64 / size_of::<f32>();
        for v in row.iter().step_by(LINE) {
            self.one(v);
        }
        if let Some(last) = row.last() {
            self.one(last);
        }
    }
}

/// Asks the CPU to bring every cache line of `row` into L1 (a hint: no effect on
/// results, no fault on any address).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn prefetch_row(simd: pulp::x86::V3, row: &[f32]) {
    const LINE: usize = 64 / size_of::<f32>();
    let hint = |v: &f32| {
        simd.sse
            ._mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(std::ptr::from_ref(v).cast());
    };
    for v in row.iter().step_by(LINE) {
        hint(v);
    }
    if let Some(last) = row.last() {
        hint(last);
    }
}

/// Adds `Σ rows_iᵀ rows_i` (rows of width `k`) to the row-major `k × k` matrix `g`, as
/// one blocked matrix product (faer, sequential, so the sum is fixed by the inputs).
pub(crate) fn add_gram(rows: &[f32], k: usize, g: &mut [f32]) {
    if k == 0 {
        return;
    }
    let n = rows.len() / k;
    let y = faer::MatRef::from_row_major_slice(&rows[..n * k], n, k);
    let gm = faer::MatMut::from_row_major_slice_mut(&mut g[..k * k], k, k);
    faer::linalg::matmul::matmul(
        gm,
        faer::Accum::Add,
        y.transpose(),
        y,
        1.0f32,
        faer::Par::Seq,
    );
}

/// Copies the upper triangle of the row-major `k × k` matrix `g` onto the lower one
/// (a blocked product may round the two halves differently).
pub(crate) fn symmetrize(g: &mut [f32], k: usize) {
    for a in 0..k {
        for b in a + 1..k {
            g[b * k + a] = g[a * k + b];
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
            let fused = wide(|f| {
                if f {
                    dot_k::<true>(&a, &b)
                } else {
                    dot_k::<false>(&a, &b)
                }
            });
            assert!((fused - naive_dot(&a, &b)).abs() < 1e-4, "k={k}");
            let mut yf = b.clone();
            wide(|f| {
                if f {
                    axpy_k::<true>(0.5, &a, &mut yf)
                } else {
                    axpy_k::<false>(0.5, &a, &mut yf)
                }
            });
            for i in 0..k {
                assert!((yf[i] - (b[i] + 0.5 * a[i])).abs() < 1e-6);
            }
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
            matvec::<false>(&m, &a, &mut out);
            let mut fused = vec![0.0; k];
            wide(|f| {
                if f {
                    matvec::<true>(&m, &a, &mut fused)
                } else {
                    matvec::<false>(&m, &a, &mut fused)
                }
            });
            for r in 0..k {
                let want = naive_dot(&m[r * k..(r + 1) * k], &a);
                assert!(
                    (out[r] - want).abs() < 1e-3 * (1.0 + want.abs()),
                    "k={k} r={r}"
                );
            }
        }
    }

    /// Deterministic values in [-1, 1).
    fn values(n: usize, seed: u32) -> Vec<f32> {
        let mut s = seed.wrapping_mul(2_654_435_761).max(1);
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                (s >> 8) as f32 / (1u32 << 23) as f32 - 1.0
            })
            .collect()
    }

    fn symmetric(k: usize) -> Vec<f32> {
        let a = values(k * k, 7);
        (0..k * k)
            .map(|i| {
                let (r, c) = (i / k, i % k);
                a[r.min(c) * k + r.max(c)]
            })
            .collect()
    }

    #[test]
    fn matvec_rows_equals_matvec_row_by_row_bit_for_bit() {
        for k in [1usize, 5, 16, 17, 33, 64, 65] {
            for rows in [1usize, 3, 4, 5, 8] {
                let m = symmetric(k);
                let v = values(rows * k, 3);
                for fused in [false, true] {
                    let mut out = vec![0.0; rows * k];
                    let mut want = vec![0.0; rows * k];
                    wide(|f| {
                        if f && fused {
                            matvec_rows::<true>(&m, k, &v, &mut out);
                            for r in 0..rows {
                                matvec::<true>(&m, &v[r * k..(r + 1) * k], &mut want[r * k..][..k]);
                            }
                        } else {
                            matvec_rows::<false>(&m, k, &v, &mut out);
                            for r in 0..rows {
                                matvec::<false>(
                                    &m,
                                    &v[r * k..(r + 1) * k],
                                    &mut want[r * k..][..k],
                                );
                            }
                        }
                    });
                    assert_eq!(out, want, "k={k} rows={rows} fused={fused}");
                    for r in 0..rows {
                        for j in 0..k {
                            let naive = naive_dot(&m[j * k..(j + 1) * k], &v[r * k..(r + 1) * k]);
                            assert!(
                                (out[r * k + j] - naive).abs()
                                    < 1e-4 * (1.0 + naive.abs() * k as f32)
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn sparse_apply_matches_the_naive_sum() {
        // 16, 32, 64 and 128 take the register path on an AVX-512 CPU.
        for k in [3usize, 8, 16, 32, 64, 65, 128] {
            let n_rows = 20;
            let y = values(n_rows * k, 11);
            let v = values(k, 5);
            for len in [0usize, 1, 3, 4, 7, 13] {
                let idx: Vec<u32> = (0..len).map(|i| ((i * 7) % n_rows) as u32).collect();
                let conf: Vec<f32> = (0..len).map(|i| 1.0 + i as f32).collect();
                let mut dots = vec![0.0; len];
                let mut acc = values(k, 9);
                let mut want = acc.clone();
                wide(|f| {
                    if f {
                        sparse_apply::<true>(
                            &y,
                            k,
                            (&idx, &conf),
                            &v,
                            &mut dots,
                            &mut acc,
                            |c, d| c - (c - 1.0) * d,
                        )
                    } else {
                        sparse_apply::<false>(
                            &y,
                            k,
                            (&idx, &conf),
                            &v,
                            &mut dots,
                            &mut acc,
                            |c, d| c - (c - 1.0) * d,
                        )
                    }
                });
                for (t, (&i, &c)) in idx.iter().zip(&conf).enumerate() {
                    let yi = &y[i as usize * k..(i as usize + 1) * k];
                    let d = naive_dot(yi, &v);
                    assert!((dots[t] - d).abs() < 1e-4, "k={k} len={len}");
                    for (w, &yv) in want.iter_mut().zip(yi) {
                        *w += (c - (c - 1.0) * d) * yv;
                    }
                }
                for (a, w) in acc.iter().zip(&want) {
                    assert!(
                        (a - w).abs() < 1e-3 * (1.0 + w.abs()),
                        "k={k} len={len}: {a} vs {w}"
                    );
                }
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn grouped_horizontal_sums_are_bit_identical_to_one_by_one() {
        use pulp::Simd;
        let Some(v4) = pulp::x86::V4::try_new() else {
            return;
        };
        // Mixed magnitudes, so any other order of additions would round differently.
        let raw = values(64 * 50, 17);
        let scaled: Vec<f32> = raw
            .iter()
            .enumerate()
            .map(|(i, v)| v * [1e-3f32, 1.0, 1e3, 7.0][i % 4])
            .collect();
        let mut differs = false;
        for chunk in scaled.chunks_exact(64) {
            let p: [pulp::f32x16; 4] = pulp::cast(*chunk.first_chunk::<64>().unwrap());
            let got = v4.vectorize(|| reduce4(v4)(p));
            let want = p.map(|x| v4.reduce_sum_f32s(x));
            assert_eq!(got.map(f32::to_bits), want.map(f32::to_bits));
            let naive = chunk[..16].iter().sum::<f32>();
            differs |= naive.to_bits() != want[0].to_bits();
        }
        assert!(differs, "the data should tell summation orders apart");
        // The whole sparse pass: the grouped sums against one reduction per cell.
        for k in [16usize, 64, 128] {
            let y = values(30 * k, 11);
            let v = values(k, 5);
            for len in [0usize, 3, 4, 9, 26] {
                let idx: Vec<u32> = (0..len).map(|i| ((i * 7) % 30) as u32).collect();
                let conf: Vec<f32> = (0..len).map(|i| 1.0 + i as f32).collect();
                let run = |grouped: bool| {
                    let mut dots = vec![0.0f32; len];
                    let mut acc = values(k, 9);
                    let cells = (&idx[..], &conf[..]);
                    let coef = |c: f32, d: f32| c - (c - 1.0) * d;
                    v4.vectorize(|| match (grouped, k) {
                        (true, 16) => sparse_apply_reg::<_, 1>(
                            v4,
                            &y,
                            cells,
                            &v,
                            &mut dots,
                            &mut acc,
                            coef,
                            reduce4(v4),
                        ),
                        (true, 64) => sparse_apply_reg::<_, 4>(
                            v4,
                            &y,
                            cells,
                            &v,
                            &mut dots,
                            &mut acc,
                            coef,
                            reduce4(v4),
                        ),
                        (true, _) => sparse_apply_reg::<_, 8>(
                            v4,
                            &y,
                            cells,
                            &v,
                            &mut dots,
                            &mut acc,
                            coef,
                            reduce4(v4),
                        ),
                        (false, 16) => sparse_apply_reg::<_, 1>(
                            v4,
                            &y,
                            cells,
                            &v,
                            &mut dots,
                            &mut acc,
                            coef,
                            |p| p.map(|x| v4.reduce_sum_f32s(x)),
                        ),
                        (false, 64) => sparse_apply_reg::<_, 4>(
                            v4,
                            &y,
                            cells,
                            &v,
                            &mut dots,
                            &mut acc,
                            coef,
                            |p| p.map(|x| v4.reduce_sum_f32s(x)),
                        ),
                        (false, _) => sparse_apply_reg::<_, 8>(
                            v4,
                            &y,
                            cells,
                            &v,
                            &mut dots,
                            &mut acc,
                            coef,
                            |p| p.map(|x| v4.reduce_sum_f32s(x)),
                        ),
                    });
                    (dots, acc)
                };
                assert_eq!(run(true), run(false), "k={k} len={len}");
            }
        }
    }

    #[test]
    fn blocked_gram_matches_the_naive_sum_and_is_symmetric() {
        for (n, k) in [(1usize, 1usize), (5, 3), (300, 64), (37, 65)] {
            let rows = values(n * k, 13);
            let mut g = vec![0.5f32; k * k];
            add_gram(&rows, k, &mut g);
            symmetrize(&mut g, k);
            for a in 0..k {
                for b in 0..k {
                    let want = 0.5
                        + (0..n)
                            .map(|r| f64::from(rows[r * k + a]) * f64::from(rows[r * k + b]))
                            .sum::<f64>() as f32;
                    assert!(
                        (g[a * k + b] - want).abs() < 1e-4 * (1.0 + want.abs()),
                        "n={n} k={k}"
                    );
                    assert_eq!(g[a * k + b], g[b * k + a]);
                }
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
