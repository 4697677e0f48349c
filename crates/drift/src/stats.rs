//! Distribution distances and tests used beside the spec's drift rules.

use statrs::distribution::{ChiSquared, ContinuousCDF};

/// Floor for empty bins in PSI (the usual 1e-4 smoothing), so PSI stays finite.
const PSI_EPSILON: f64 = 1e-4;

/// Chi-square test of homogeneity of two count vectors over the same categories.
/// Returns (statistic, degrees of freedom, p-value); categories empty in both are left
/// out. `None` when either sample is empty or fewer than two categories remain.
pub fn chi_square_homogeneity(a: &[u64], b: &[u64]) -> Option<(f64, u32, f64)> {
    let (na, nb) = (a.iter().sum::<u64>() as f64, b.iter().sum::<u64>() as f64);
    if na == 0.0 || nb == 0.0 {
        return None;
    }
    let total = na + nb;
    let mut stat = 0.0;
    let mut categories = 0u32;
    for (&x, &y) in a.iter().zip(b) {
        let col = (x + y) as f64;
        if col == 0.0 {
            continue;
        }
        categories += 1;
        let (ea, eb) = (na * col / total, nb * col / total);
        stat += (x as f64 - ea).powi(2) / ea + (y as f64 - eb).powi(2) / eb;
    }
    if categories < 2 {
        return None;
    }
    let df = categories - 1;
    let p = ChiSquared::new(f64::from(df)).ok()?.sf(stat);
    Some((stat, df, p))
}

/// Population Stability Index of `actual` against `expected` (shares), with empty bins
/// floored at 1e-4. Usual reading: < 0.1 stable, 0.1–0.25 moderate shift, > 0.25 large.
pub fn psi(expected: &[f64], actual: &[f64]) -> f64 {
    expected
        .iter()
        .zip(actual)
        .map(|(&e, &a)| {
            let (e, a) = (e.max(PSI_EPSILON), a.max(PSI_EPSILON));
            (a - e) * (a / e).ln()
        })
        .sum()
}

/// Jensen–Shannon distance (square root of the divergence, base 2, in [0, 1]).
pub fn jensen_shannon_distance(p: &[f64], q: &[f64]) -> f64 {
    let kl = |x: &[f64], m: &[f64]| -> f64 {
        x.iter()
            .zip(m)
            .filter(|(xi, _)| **xi > 0.0)
            .map(|(&xi, &mi)| xi * (xi / mi).log2())
            .sum()
    };
    let m: Vec<f64> = p.iter().zip(q).map(|(a, b)| 0.5 * (a + b)).collect();
    let js = 0.5 * kl(p, &m) + 0.5 * kl(q, &m);
    js.max(0.0).sqrt().min(1.0)
}

/// Extrapolated rank-biased overlap (Webber et al. 2010, eq. 32) of two rankings of
/// equal depth k, with persistence `p` (0.9 weighs the top ~10 ranks most). 1 means
/// the same ranking, 0 disjoint.
pub fn rank_biased_overlap(a: &[i64], b: &[i64], p: f64) -> f64 {
    let k = a.len().min(b.len());
    if k == 0 {
        return if a.is_empty() && b.is_empty() {
            1.0
        } else {
            0.0
        };
    }
    let mut seen_a = std::collections::HashSet::with_capacity(k);
    let mut seen_b = std::collections::HashSet::with_capacity(k);
    let mut overlap = 0usize;
    let mut sum = 0.0;
    for d in 1..=k {
        let (x, y) = (a[d - 1], b[d - 1]);
        if x == y {
            overlap += 1;
        } else {
            if seen_b.contains(&x) {
                overlap += 1;
            }
            if seen_a.contains(&y) {
                overlap += 1;
            }
        }
        seen_a.insert(x);
        seen_b.insert(y);
        sum += (overlap as f64 / d as f64) * p.powi(d as i32);
    }
    let agreement_k = overlap as f64 / k as f64;
    agreement_k * p.powi(k as i32) + (1.0 - p) / p * sum
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn chi_square_matches_a_hand_computed_table() {
        // 2x2 table [[10, 20], [20, 10]]: expected 15 everywhere, stat = 4 * 25/15.
        let (stat, df, p) = chi_square_homogeneity(&[10, 20], &[20, 10]).unwrap();
        assert!((stat - 100.0 / 15.0).abs() < 1e-12);
        assert_eq!(df, 1);
        // P(chi2_1 > 6.6667) = 0.009823 (scipy.stats.chi2.sf(20/3, 1)).
        assert!((p - 0.009823).abs() < 1e-5, "{p}");
        // Identical distributions: statistic 0, p = 1.
        let (s, _, p) = chi_square_homogeneity(&[5, 10, 0, 5], &[10, 20, 0, 10]).unwrap();
        assert!(s.abs() < 1e-12 && (p - 1.0).abs() < 1e-12);
        assert!(chi_square_homogeneity(&[0, 0], &[1, 2]).is_none());
    }

    #[test]
    fn psi_and_js_of_known_distributions() {
        let a = [0.1, 0.2, 0.3, 0.4];
        assert_eq!(psi(&a, &a), 0.0);
        assert_eq!(jensen_shannon_distance(&a, &a), 0.0);
        // PSI of [0.5, 0.5] vs [0.25, 0.75] = 0.25 ln 2 - ... computed by hand:
        let v = psi(&[0.5, 0.5], &[0.25, 0.75]);
        let want = (0.25 - 0.5) * (0.25f64 / 0.5).ln() + (0.75 - 0.5) * (0.75f64 / 0.5).ln();
        assert!((v - want).abs() < 1e-12);
        // Disjoint supports are at JS distance 1.
        assert!((jensen_shannon_distance(&[1.0, 0.0], &[0.0, 1.0]) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn rbo_of_identical_disjoint_and_swapped_rankings() {
        let a = [1, 2, 3, 4, 5];
        assert!((rank_biased_overlap(&a, &a, 0.9) - 1.0).abs() < 1e-12);
        assert!(rank_biased_overlap(&a, &[6, 7, 8, 9, 10], 0.9).abs() < 1e-12);
        let swapped_top = rank_biased_overlap(&a, &[2, 1, 3, 4, 5], 0.9);
        let swapped_tail = rank_biased_overlap(&a, &[1, 2, 3, 5, 4], 0.9);
        assert!(swapped_top < swapped_tail && swapped_tail < 1.0);
    }

    proptest! {
        #[test]
        fn distances_are_bounded_and_symmetric(
            x in prop::collection::vec(0u32..100, 5),
            y in prop::collection::vec(0u32..100, 5),
        ) {
            let norm = |v: &[u32]| {
                let s: u32 = v.iter().sum();
                v.iter().map(|&c| if s == 0 { 0.2 } else { f64::from(c) / f64::from(s) }).collect::<Vec<_>>()
            };
            let (p, q) = (norm(&x), norm(&y));
            let d = jensen_shannon_distance(&p, &q);
            prop_assert!((0.0..=1.0).contains(&d));
            prop_assert!((d - jensen_shannon_distance(&q, &p)).abs() < 1e-9);
            prop_assert!(psi(&p, &q) >= -1e-12);
        }
    }
}
