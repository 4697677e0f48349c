//! The one ranking of recops: what offline evaluation measures is what the service
//! serves.
//!
//! [`top_k`] scores every item of a factor matrix against a user vector with [`dot`]
//! (the training kernels' dot product), leaves out the user's seen items, and keeps
//! the best `k`:
//!
//! - order: score descending, then item index ascending (a deterministic tie-break);
//! - a NaN score is no score: the item is left out (a model with NaN factors is
//!   refused at training and load time; this keeps one broken row from ranking first
//!   or hiding the others);
//! - `-0.0` and `0.0` are equal scores (ties by index).
//!
//! `recops_cf_training::evaluate_factors` (through [`top_n_for_user`]
//! (crate::top_n_for_user)) and the recommender's `ServingModel::recommend` both call it.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// `a · b` over the common length: the dot product of training, evaluation and serving.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    crate::kernels::dot(a, b)
}

/// The best `k` items for `user` among the rows of `items` (row-major, `user.len()`
/// columns), leaving out `exclude` (sorted ascending): `(item index, score)`, best
/// first. See the module docs for the order and NaN handling.
pub fn top_k(user: &[f32], items: &[f32], exclude: &[u32], k: usize) -> Vec<(u32, f32)> {
    let f = user.len();
    if k == 0 || f == 0 {
        return Vec::new();
    }
    let mut heap: BinaryHeap<Worst> = BinaryHeap::with_capacity(k + 1);
    let mut next_excluded = 0;
    for (i, row) in items.chunks_exact(f).enumerate() {
        let i = i as u32;
        while next_excluded < exclude.len() && exclude[next_excluded] < i {
            next_excluded += 1;
        }
        if next_excluded < exclude.len() && exclude[next_excluded] == i {
            continue;
        }
        let s = dot(user, row);
        if s.is_nan() {
            continue;
        }
        let candidate = Worst(s, i);
        if heap.len() < k {
            heap.push(candidate);
        } else if heap.peek().is_some_and(|top| candidate < *top) {
            heap.pop();
            heap.push(candidate);
        }
    }
    let mut best = heap.into_vec();
    best.sort();
    best.into_iter().map(|Worst(s, i)| (i, s)).collect()
}

/// A kept item, ordered so that the *worst* one is the heap's top: "less" is better
/// (higher score, then lower index). Scores are never NaN here.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Worst(f32, u32);

impl Eq for Worst {}

impl Ord for Worst {
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .0
            .partial_cmp(&self.0)
            .unwrap_or(Ordering::Equal)
            .then_with(|| self.1.cmp(&other.1))
    }
}

impl PartialOrd for Worst {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn best_first_ties_by_index_seen_and_nan_left_out() {
        // Scores for user [1, 0]: 5, 4, NaN, 4, 9, -0.0, 0.0.
        let items = [
            5.0,
            0.0,
            4.0,
            0.0,
            f32::NAN,
            0.0,
            4.0,
            1.0,
            9.0,
            0.0,
            -0.0,
            0.0,
            0.0,
            0.0,
        ];
        let user = [1.0, 0.0];
        let got = top_k(&user, &items, &[4], 10);
        let ids: Vec<u32> = got.iter().map(|&(i, _)| i).collect();
        assert_eq!(ids, [0, 1, 3, 5, 6]);
        assert_eq!(top_k(&user, &items, &[], 2), [(4, 9.0), (0, 5.0)]);
        assert!(top_k(&user, &items, &[], 0).is_empty());
    }

    proptest! {
        #[test]
        fn equals_a_full_sort(
            scores in proptest::collection::vec(-3i8..3, 1..60),
            k in 0usize..12,
            exclude_every in 2usize..5,
        ) {
            let items: Vec<f32> = scores.iter().map(|&s| f32::from(s)).collect();
            let exclude: Vec<u32> =
                (0..items.len() as u32).filter(|i| (*i as usize).is_multiple_of(exclude_every)).collect();
            let mut all: Vec<(u32, f32)> = items
                .iter()
                .enumerate()
                .filter(|(i, _)| !exclude.contains(&(*i as u32)))
                .map(|(i, &s)| (i as u32, s))
                .collect();
            all.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            all.truncate(k);
            prop_assert_eq!(top_k(&[1.0], &items, &exclude, k), all);
        }
    }
}
