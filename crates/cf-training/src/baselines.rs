//! The popularity baselines a model must beat (the "honest gate").
//!
//! Every variant ranks the items a user has not had by one global score computed from
//! the training cells only, ties broken by item index:
//! - `popularity`: number of training cells (the spec's baseline, [`popularity_order`]);
//! - `popularity_decay_7d`, `popularity_decay_30d`: exponentially time-decayed counts,
//!   each cell weighing `0.5^(age / half_life)` with `age` the time between the cell
//!   and the newest training cell (timestamps in seconds).
//!
//! [`strongest`] is the variant with the best ndcg@10 on the evaluation split (ties:
//! the earlier variant, so plain `popularity` wins a tie): the bar a model must clear to
//! be registered as `active`.

use recops_data::Entry;

use crate::eval::{Metrics, evaluate_rankings, popularity_order};
use crate::matrix::Interactions;

/// Name of the plain count baseline.
pub const PLAIN_POPULARITY: &str = "popularity";

/// Half-lives (days) of the time-decayed popularity variants.
pub const DECAY_HALF_LIVES_DAYS: [u32; 2] = [7, 30];

/// One evaluated baseline.
#[derive(Debug, Clone, PartialEq)]
pub struct Baseline {
    /// `popularity` or `popularity_decay_<N>d`.
    pub name: String,
    /// Its metrics on the evaluation split.
    pub metrics: Metrics,
}

/// Items ordered by exponentially time-decayed counts (half-life `half_life_seconds`,
/// age measured from the newest cell of `cells`), then index ascending.
pub fn decayed_popularity_order(
    cells: &[Entry],
    n_items: usize,
    half_life_seconds: f64,
) -> Vec<u32> {
    let newest = cells.iter().map(|e| e.timestamp).max().unwrap_or(0);
    let mut score = vec![0.0f64; n_items];
    for e in cells {
        if let Some(s) = score.get_mut(e.item as usize) {
            *s += decay_weight(newest - e.timestamp, half_life_seconds);
        }
    }
    let mut order: Vec<u32> = (0..n_items as u32).collect();
    order.sort_by(|&a, &b| {
        score[b as usize]
            .total_cmp(&score[a as usize])
            .then(a.cmp(&b))
    });
    order
}

/// `0.5^(age / half_life)`; 1 for a non-positive age or half-life.
pub fn decay_weight(age_seconds: i64, half_life_seconds: f64) -> f64 {
    if age_seconds <= 0 || half_life_seconds <= 0.0 || !half_life_seconds.is_finite() {
        1.0
    } else {
        0.5f64.powf(age_seconds as f64 / half_life_seconds)
    }
}

/// Evaluates a fixed item order as a recommender: each user gets the first items of
/// `order` they have not had in `train`.
pub fn evaluate_order(
    order: &[u32],
    train: &Interactions,
    test: &Interactions,
    ks: &[usize],
) -> Metrics {
    evaluate_rankings(test, ks, |u, n| {
        let seen = train.user_row(u).0;
        order
            .iter()
            .copied()
            .filter(|i| seen.binary_search(i).is_err())
            .take(n)
            .collect()
    })
}

/// Every popularity variant on the same split: plain first, then the decayed ones.
/// `train_cells` are the training cells `train` was built from (for their timestamps).
pub fn popularity_baselines(
    train_cells: &[Entry],
    train: &Interactions,
    test: &Interactions,
    ks: &[usize],
) -> Vec<Baseline> {
    let mut out = vec![Baseline {
        name: PLAIN_POPULARITY.to_owned(),
        metrics: evaluate_order(&popularity_order(train), train, test, ks),
    }];
    for days in DECAY_HALF_LIVES_DAYS {
        let order =
            decayed_popularity_order(train_cells, train.n_items(), f64::from(days) * 86_400.0);
        out.push(Baseline {
            name: format!("{PLAIN_POPULARITY}_decay_{days}d"),
            metrics: evaluate_order(&order, train, test, ks),
        });
    }
    out
}

/// The variant with the best ndcg@10 (ties: the earlier one). `None` when empty.
pub fn strongest(baselines: &[Baseline]) -> Option<&Baseline> {
    baselines
        .iter()
        .fold(None, |best: Option<&Baseline>, b| match best {
            Some(x) if x.metrics.ndcg(10) >= b.metrics.ndcg(10) => Some(x),
            _ => Some(b),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::popularity_baseline;

    fn e(user: u32, item: u32, timestamp: i64) -> Entry {
        Entry {
            user,
            item,
            rating: 1.0,
            timestamp,
        }
    }

    #[test]
    fn decayed_order_prefers_recent_items() {
        let day = 86_400;
        // Item 0: three old cells (60 days ago); item 1: two recent cells.
        let cells = [
            e(0, 0, 0),
            e(1, 0, 0),
            e(2, 0, 0),
            e(0, 1, 60 * day),
            e(1, 1, 60 * day),
        ];
        let train = Interactions::from_entries(3, 3, &cells, |_| 1.0).unwrap();
        assert_eq!(popularity_order(&train), vec![0, 1, 2]);
        assert_eq!(
            decayed_popularity_order(&cells, 3, 7.0 * day as f64),
            vec![1, 0, 2]
        );
        // User 2 held out item 1: plain popularity ranks it 1st among unseen items
        // (item 0 seen), the decayed variant too; user 0 held out item 2.
        let test = Interactions::from_entries(3, 3, &[e(2, 1, 0), e(0, 2, 0)], |_| 1.0).unwrap();
        let all = popularity_baselines(&cells, &train, &test, &[10]);
        assert_eq!(all.len(), 3);
        assert_eq!(all[0].name, "popularity");
        assert_eq!(all[0].metrics, popularity_baseline(&train, &test, &[10]));
        assert!(all.iter().all(|b| b.name.starts_with("popularity")));
        // A tie keeps the plain baseline.
        assert_eq!(strongest(&all).unwrap().name, "popularity");
    }

    #[test]
    fn strongest_is_the_best_ndcg() {
        let day = 86_400;
        // Users 0-2 each saw the old item 0; item 1 is recent (users 3, 4), items 2-3
        // old but counted twice. User 0 held out the recent item 1.
        let cells = [
            e(0, 0, 0),
            e(1, 0, 0),
            e(2, 0, 0),
            e(1, 2, 0),
            e(2, 2, 0),
            e(3, 1, 90 * day),
            e(4, 1, 90 * day),
            e(1, 3, 0),
            e(2, 3, 0),
            e(3, 3, 0),
        ];
        let train = Interactions::from_entries(5, 4, &cells, |_| 1.0).unwrap();
        let test = Interactions::from_entries(5, 4, &[e(0, 1, 0)], |_| 1.0).unwrap();
        let all = popularity_baselines(&cells, &train, &test, &[1, 10]);
        // Plain (counts 3, 2, 2, 3): user 0 gets [3, 1, 2], a hit at rank 1. Decayed
        // (7 days): item 1 first, a hit at rank 0.
        assert!(all[1].metrics.ndcg(10) > all[0].metrics.ndcg(10), "{all:?}");
        assert_eq!(strongest(&all).unwrap().name, "popularity_decay_7d");
        assert_eq!(decay_weight(7 * day, 7.0 * day as f64), 0.5);
    }
}
