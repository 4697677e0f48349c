//! Time-decayed confidence (optional, ALS): with `model.half_life_days: H`, a cell's
//! rating counts `0.5^(age / H)` times in the confidence, `c = 1 + alpha * r * decay`,
//! `age` measured from the newest training cell; so a recent interaction weighs more
//! and an old one falls back towards the unobserved confidence 1. Off by default
//! (unset): `c = 1 + alpha * r` exactly. Both go through [`recops_data::confidence`].

use recops_data::Entry;

use crate::baselines::decay_weight;

/// The newest timestamp of `cells` (0 when empty).
pub fn newest_timestamp(cells: &[Entry]) -> i64 {
    cells.iter().map(|e| e.timestamp).max().unwrap_or(0)
}

/// The ALS confidence of `e`: `1 + alpha * rating`, the rating decayed by its age
/// relative to `newest` when `half_life_days` is set.
pub fn cell_confidence(e: &Entry, alpha: f32, newest: i64, half_life_days: Option<f64>) -> f32 {
    let rating = match half_life_days {
        Some(h) => e.rating * decay_weight(newest - e.timestamp, h * 86_400.0) as f32,
        None => e.rating,
    };
    recops_data::confidence(rating, alpha)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decay_halves_the_rating_part_per_half_life_and_is_off_by_default() {
        let day = 86_400;
        let e = Entry {
            user: 0,
            item: 0,
            rating: 4.0,
            timestamp: 0,
        };
        assert_eq!(cell_confidence(&e, 10.0, 14 * day, None), 41.0);
        assert_eq!(cell_confidence(&e, 10.0, 14 * day, Some(7.0)), 11.0);
        assert_eq!(cell_confidence(&e, 10.0, 0, Some(7.0)), 41.0);
        assert_eq!(newest_timestamp(&[e]), 0);
    }
}
