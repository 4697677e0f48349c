//! Ranking metrics of ARCHITECTURE.md and the popularity baseline.
//!
//! Over users with held-out items, with their training items filtered out, binary
//! relevance, for each K:
//! - recall@K = hits / min(K, |held-out|)
//! - ndcg@K = DCG / IDCG, DCG = Σ_{hits at rank r (0-based)} 1/log2(r + 2), IDCG over
//!   min(K, |held-out|) ranks
//! - coverage@K = |distinct recommended items| / n_items
//!
//! Rankings order by score descending, then item index ascending, so they are
//! deterministic. Sums run in f64 in user order. `shared/bench/cf_vs_implicit.py`
//! computes the same numbers; the popularity baseline agrees with it to 1e-9.

use std::collections::BTreeMap;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::matrix::{Factors, Interactions};

/// Metrics at one cut-off K.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MetricsAtK {
    /// The cut-off.
    pub k: usize,
    /// Mean recall@K.
    pub recall: f64,
    /// Mean ndcg@K.
    pub ndcg: f64,
    /// coverage@K.
    pub coverage: f64,
}

/// Metrics for every configured K.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Metrics {
    /// Users evaluated (those with held-out items).
    pub users: usize,
    /// One entry per K, ascending.
    pub at: Vec<MetricsAtK>,
}

impl Metrics {
    /// The metrics at `k`, if it was evaluated.
    pub fn at(&self, k: usize) -> Option<&MetricsAtK> {
        self.at.iter().find(|m| m.k == k)
    }

    /// recall@k (0 when not evaluated).
    pub fn recall(&self, k: usize) -> f64 {
        self.at(k).map_or(0.0, |m| m.recall)
    }

    /// ndcg@k (0 when not evaluated).
    pub fn ndcg(&self, k: usize) -> f64 {
        self.at(k).map_or(0.0, |m| m.ndcg)
    }

    /// coverage@k (0 when not evaluated).
    pub fn coverage(&self, k: usize) -> f64 {
        self.at(k).map_or(0.0, |m| m.coverage)
    }

    /// Flat map for JSON files: `recall@10`, `ndcg@10`, `coverage@10`, ... (only the
    /// metrics named in `names`; all three when empty).
    pub fn to_map(&self, names: &[MetricName]) -> BTreeMap<String, f64> {
        let all = [MetricName::Recall, MetricName::Ndcg, MetricName::Coverage];
        let names = if names.is_empty() { &all[..] } else { names };
        let mut out = BTreeMap::new();
        for m in &self.at {
            for n in names {
                let v = match n {
                    MetricName::Recall => m.recall,
                    MetricName::Ndcg => m.ndcg,
                    MetricName::Coverage => m.coverage,
                };
                out.insert(format!("{}@{}", n.as_str(), m.k), v);
            }
        }
        out
    }
}

/// A metric name of `evaluation.metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MetricName {
    /// recall@K
    Recall,
    /// ndcg@K
    Ndcg,
    /// coverage@K
    Coverage,
}

impl MetricName {
    /// The name used in keys (`recall`, `ndcg`, `coverage`).
    pub fn as_str(self) -> &'static str {
        match self {
            MetricName::Recall => "recall",
            MetricName::Ndcg => "ndcg",
            MetricName::Coverage => "coverage",
        }
    }
}

/// recall and ndcg of one ranked list against a user's held-out items (`relevant`
/// sorted ascending), at cut-off `k`.
pub fn recall_ndcg(ranked: &[u32], relevant: &[u32], k: usize) -> (f64, f64) {
    if relevant.is_empty() || k == 0 {
        return (0.0, 0.0);
    }
    let cap = k.min(relevant.len());
    let mut hits = 0usize;
    let mut dcg = 0.0f64;
    for (r, item) in ranked.iter().take(k).enumerate() {
        if relevant.binary_search(item).is_ok() {
            hits += 1;
            dcg += discount(r);
        }
    }
    let idcg: f64 = (0..cap).map(discount).sum();
    (hits as f64 / cap as f64, dcg / idcg)
}

fn discount(rank: usize) -> f64 {
    1.0 / ((rank + 2) as f64).log2()
}

/// Evaluates per-user rankings: `rank(user, n)` returns the user's top-`n` items
/// (training items already excluded). `test` holds the held-out cells.
pub fn evaluate_rankings<F>(test: &Interactions, k_values: &[usize], rank: F) -> Metrics
where
    F: Fn(usize, usize) -> Vec<u32> + Sync,
{
    let mut ks: Vec<usize> = k_values.iter().copied().filter(|&k| k > 0).collect();
    ks.sort_unstable();
    ks.dedup();
    let max_k = ks.last().copied().unwrap_or(0);
    let users: Vec<usize> = (0..test.n_users())
        .filter(|&u| !test.user_row(u).0.is_empty())
        .collect();
    let lists: Vec<Vec<u32>> = users.par_iter().map(|&u| rank(u, max_k)).collect();
    let n_items = test.n_items().max(1);
    let mut at = Vec::with_capacity(ks.len());
    for &k in &ks {
        let (mut rec, mut nd) = (0.0f64, 0.0f64);
        let mut seen = vec![false; test.n_items()];
        let mut distinct = 0usize;
        for (&u, list) in users.iter().zip(&lists) {
            let (r, n) = recall_ndcg(list, test.user_row(u).0, k);
            rec += r;
            nd += n;
            for &i in list.iter().take(k) {
                if let Some(s) = seen.get_mut(i as usize).filter(|s| !**s) {
                    *s = true;
                    distinct += 1;
                }
            }
        }
        let nu = users.len().max(1) as f64;
        at.push(MetricsAtK {
            k,
            recall: rec / nu,
            ndcg: nd / nu,
            coverage: distinct as f64 / n_items as f64,
        });
    }
    Metrics {
        users: users.len(),
        at,
    }
}

/// Evaluates a factor model: `score(u, i) = user_u · item_i`, training items of `train`
/// filtered out, against the held-out cells of `test`.
pub fn evaluate_factors(
    users: &Factors,
    items: &Factors,
    train: &Interactions,
    test: &Interactions,
    k_values: &[usize],
) -> Metrics {
    evaluate_rankings(test, k_values, |u, n| {
        top_n_for_user(users.row(u), items, train.user_row(u).0, n)
    })
}

/// The `n` best items for a user vector, skipping `exclude` (sorted): score descending,
/// then item index ascending, NaN scores left out — [`crate::ranking::top_k`], the
/// ranking the recommender serves.
pub fn top_n_for_user(user: &[f32], items: &Factors, exclude: &[u32], n: usize) -> Vec<u32> {
    crate::ranking::top_k(user, items.as_slice(), exclude, n)
        .into_iter()
        .map(|(i, _)| i)
        .collect()
}

/// Items ordered by popularity: number of training cells descending, then index
/// ascending (the baseline's fixed order).
pub fn popularity_order(train: &Interactions) -> Vec<u32> {
    let counts = train.item_counts();
    let mut order: Vec<u32> = (0..train.n_items() as u32).collect();
    order.sort_by(|&a, &b| counts[b as usize].cmp(&counts[a as usize]).then(a.cmp(&b)));
    order
}

/// The popularity baseline: every user gets the most popular items they have not had.
pub fn popularity_baseline(
    train: &Interactions,
    test: &Interactions,
    k_values: &[usize],
) -> Metrics {
    let order = popularity_order(train);
    evaluate_rankings(test, k_values, |u, n| {
        let seen = train.user_row(u).0;
        order
            .iter()
            .copied()
            .filter(|i| seen.binary_search(i).is_err())
            .take(n)
            .collect()
    })
}

/// Relative improvement in percent of `model` over `baseline` (0 when the baseline is 0).
pub fn improvement_pct(model: f64, baseline: f64) -> f64 {
    if baseline > 0.0 {
        (model - baseline) / baseline * 100.0
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use recops_data::Entry;

    fn e(user: u32, item: u32) -> Entry {
        Entry {
            user,
            item,
            rating: 1.0,
            timestamp: 0,
        }
    }

    #[test]
    fn hand_computed_recall_and_ndcg() {
        // Relevant {2, 7}; ranked [2, 5, 7]: hits at ranks 0 and 2.
        let (r, n) = recall_ndcg(&[2, 5, 7], &[2, 7], 3);
        assert!((r - 1.0).abs() < 1e-12);
        let dcg = 1.0 + 1.0 / 4f64.log2();
        let idcg = 1.0 + 1.0 / 3f64.log2();
        assert!((n - dcg / idcg).abs() < 1e-12, "{n}");
        // K = 1: only rank 0 counts; cap = min(1, 2) = 1.
        assert_eq!(recall_ndcg(&[2, 5, 7], &[2, 7], 1), (1.0, 1.0));
        assert_eq!(recall_ndcg(&[5, 2, 7], &[2, 7], 1), (0.0, 0.0));
        // Three relevant, K = 2, one hit at rank 1: recall 1/2, ndcg = (1/log2 3)/(1 + 1/log2 3).
        let (r, n) = recall_ndcg(&[9, 4], &[1, 4, 6], 2);
        assert!((r - 0.5).abs() < 1e-12);
        let want = (1.0 / 3f64.log2()) / (1.0 + 1.0 / 3f64.log2());
        assert!((n - want).abs() < 1e-12);
    }

    #[test]
    fn popularity_baseline_hand_computed() {
        // Item counts in train: item 0: 3, item 1: 1, item 2: 2, item 3: 0 (tie-free).
        let train = Interactions::from_entries(
            3,
            4,
            &[e(0, 0), e(1, 0), e(2, 0), e(0, 2), e(1, 2), e(2, 1)],
            |_| 1.0,
        )
        .unwrap();
        assert_eq!(popularity_order(&train), vec![0, 2, 1, 3]);
        // User 0 held out item 1, user 2 held out item 3.
        let test = Interactions::from_entries(3, 4, &[e(0, 1), e(2, 3)], |_| 1.0).unwrap();
        let m = popularity_baseline(&train, &test, &[1, 2]);
        // User 0 (seen 0, 2) gets [1, 3]: hit at rank 0. User 2 (seen 0, 1) gets [2, 3]:
        // hit at rank 1.
        assert_eq!(m.users, 2);
        let m1 = m.at(1).unwrap();
        assert_eq!((m1.recall, m1.ndcg), (0.5, 0.5));
        assert_eq!(m1.coverage, 2.0 / 4.0); // {1, 2}
        let m2 = m.at(2).unwrap();
        assert_eq!(m2.recall, 1.0);
        assert!((m2.ndcg - (1.0 + 1.0 / 3f64.log2()) / 2.0).abs() < 1e-12);
        assert_eq!(m2.coverage, 3.0 / 4.0); // {1, 2, 3}
        assert_eq!(m.to_map(&[])["ndcg@1"], 0.5);
    }

    #[test]
    fn top_n_filters_and_breaks_ties_by_lower_index() {
        let items = Factors::from_vec(5, 1, vec![1.0, 3.0, 3.0, 2.0, 3.0]).unwrap();
        assert_eq!(top_n_for_user(&[1.0], &items, &[], 3), vec![1, 2, 4]);
        assert_eq!(top_n_for_user(&[1.0], &items, &[2], 3), vec![1, 4, 3]);
        assert_eq!(
            top_n_for_user(&[1.0], &items, &[0, 1, 2, 3, 4], 3),
            Vec::<u32>::new()
        );
    }

    proptest! {
        #[test]
        fn metric_invariants(ranked in prop::collection::vec(0u32..50, 0..30),
                             relevant in prop::collection::btree_set(0u32..50, 1..20),
                             k in 1usize..25) {
            let mut ranked_unique = Vec::new();
            for r in ranked { if !ranked_unique.contains(&r) { ranked_unique.push(r); } }
            let rel: Vec<u32> = relevant.into_iter().collect();
            let (r, n) = recall_ndcg(&ranked_unique, &rel, k);
            prop_assert!((0.0..=1.0 + 1e-12).contains(&r));
            prop_assert!((0.0..=1.0 + 1e-12).contains(&n));
            // No hit <=> both zero.
            let hit = ranked_unique.iter().take(k).any(|i| rel.contains(i));
            prop_assert_eq!(hit, r > 0.0);
            prop_assert_eq!(hit, n > 0.0);
            // The ideal ranking scores 1.
            let (ri, ni) = recall_ndcg(&rel, &rel, k);
            prop_assert!((ri - 1.0).abs() < 1e-12 && (ni - 1.0).abs() < 1e-12);
            // Moving a hit earlier never lowers ndcg.
            if let Some(pos) = ranked_unique.iter().take(k).position(|i| rel.contains(i))
                && pos > 0
            {
                let mut better = ranked_unique.clone();
                better.swap(pos, pos - 1);
                let (_, nb) = recall_ndcg(&better, &rel, k);
                prop_assert!(nb + 1e-12 >= n);
            }
        }

        #[test]
        fn top_n_is_sorted_and_excludes(scores in prop::collection::vec(-5i32..5, 1..40),
                                        n in 1usize..10, ex_mask in any::<u64>()) {
            let items = Factors::from_vec(scores.len(), 1, scores.iter().map(|&s| s as f32).collect()).unwrap();
            let exclude: Vec<u32> = (0..scores.len() as u32).filter(|i| ex_mask >> (i % 64) & 1 == 1).collect();
            let top = top_n_for_user(&[1.0], &items, &exclude, n);
            let avail = scores.len() - exclude.len();
            prop_assert_eq!(top.len(), n.min(avail));
            for w in top.windows(2) {
                let (a, b) = (scores[w[0] as usize], scores[w[1] as usize]);
                prop_assert!(a > b || (a == b && w[0] < w[1]));
            }
            for i in &top { prop_assert!(!exclude.contains(i)); }
            // Nothing left out scores higher than the last one taken.
            if let Some(&last) = top.last() {
                for i in 0..scores.len() as u32 {
                    if !exclude.contains(&i) && !top.contains(&i) {
                        prop_assert!(scores[i as usize] < scores[last as usize]
                            || (scores[i as usize] == scores[last as usize] && i > last));
                    }
                }
            }
        }
    }
}
