//! The deterministic temporal split of ARCHITECTURE.md ("Training matrix and split").
//!
//! - (user, item) pairs collapse to their latest interaction (ties: the later row);
//! - per user, interactions are ordered by (timestamp, item id);
//! - a user with n >= 5 interactions holds out the last floor(0.2 n); users with n < 5
//!   stay in train only;
//! - rows and columns follow ascending external ids; every item of the data is a column,
//!   also items seen only in held-out rows;
//! - no RNG. `shared/bench/cf_vs_implicit.py` implements the same rule.

use rayon::prelude::*;

use rustc_hash::{FxHashMap, FxHashSet};

/// Users with at least this many interactions hold some out.
const MIN_INTERACTIONS_FOR_HOLDOUT: usize = 5;

/// One interaction as read, in row order (the order breaks timestamp ties).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RawInteraction {
    /// External user id.
    pub user_id: i64,
    /// External item (product) id.
    pub item_id: i64,
    /// Rating (1..=5 in the shop's data).
    pub rating: f32,
    /// Time of the interaction, any monotone unit (microseconds since the epoch in
    /// recops' tables, seconds in MovieLens).
    pub timestamp: i64,
}

/// One (user, item) cell after collapsing, in matrix coordinates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Entry {
    /// Row index (position of the user id in [`Split::user_ids`]).
    pub user: u32,
    /// Column index (position of the item id in [`Split::item_ids`]).
    pub item: u32,
    /// Rating of the latest interaction.
    pub rating: f32,
    /// Timestamp of the latest interaction.
    pub timestamp: i64,
}

/// The result of [`temporal_split`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Split {
    /// Row index -> external user id, ascending.
    pub user_ids: Vec<i64>,
    /// Column index -> external item id, ascending.
    pub item_ids: Vec<i64>,
    /// Training cells, grouped by user (ascending), each user's in (timestamp, item) order.
    pub train: Vec<Entry>,
    /// Held-out cells, grouped the same way.
    pub test: Vec<Entry>,
}

impl Split {
    /// Number of rows (users).
    pub fn n_users(&self) -> usize {
        self.user_ids.len()
    }

    /// Number of columns (items).
    pub fn n_items(&self) -> usize {
        self.item_ids.len()
    }
}

/// Splits interactions by the rule of ARCHITECTURE.md. `rows` is in file/table order.
///
/// Sort-based and parallel (rayon): one sort by (user, item, timestamp, row) collapses
/// each pair to its latest row, then each user's cells are ordered by
/// (timestamp, item). A million rows take a fraction of a second.
pub fn temporal_split(rows: &[RawInteraction]) -> Split {
    let ((user_ids, user_index), (item_ids, item_index)) = rayon::join(
        || index_ids(rows.iter().map(|r| r.user_id)),
        || index_ids(rows.iter().map(|r| r.item_id)),
    );
    // (user << 32 | item, timestamp, row): sorting puts each pair's latest row last
    // (on equal timestamps the later row, as its index is larger).
    let mut keyed: Vec<(u64, i64, u32)> = rows
        .par_iter()
        .enumerate()
        .map(|(i, r)| {
            let u = u64::from(user_index.get(&r.user_id).copied().unwrap_or(0));
            let it = u64::from(item_index.get(&r.item_id).copied().unwrap_or(0));
            ((u << 32) | it, r.timestamp, i as u32)
        })
        .collect();
    keyed.par_sort_unstable();
    let mut cells: Vec<Entry> = keyed
        .par_chunk_by(|a, b| a.0 == b.0)
        .map(|group| {
            let (key, timestamp, row) = group[group.len() - 1];
            Entry {
                user: (key >> 32) as u32,
                item: key as u32,
                rating: rows[row as usize].rating,
                timestamp,
            }
        })
        .collect();
    drop(keyed);
    // Cells are grouped by user; order each user's by (timestamp, item). Item ids
    // ascend with column indices, so ordering by column is ordering by id.
    cells
        .par_chunk_by_mut(|a, b| a.user == b.user)
        .for_each(|g| g.sort_unstable_by_key(|e| (e.timestamp, e.item)));
    let (train, test) = holdout_split(&cells);
    Split {
        user_ids,
        item_ids,
        train,
        test,
    }
}

/// Applies the hold-out rule to cells already grouped by user and ordered by
/// (timestamp, item) within each user: a user with n >= 5 cells gives the last
/// floor(0.2 n) to the second part. Early stopping validates on
/// `holdout_split(&split.train)`, never on the evaluation rows.
pub fn holdout_split(cells: &[Entry]) -> (Vec<Entry>, Vec<Entry>) {
    let mut train = Vec::with_capacity(cells.len());
    let mut held = Vec::with_capacity(cells.len() / 5 + 1);
    for group in cells.chunk_by(|a, b| a.user == b.user) {
        let n = group.len();
        // floor(0.2 n) == n / 5 exactly for integers.
        let n_held = if n >= MIN_INTERACTIONS_FOR_HOLDOUT {
            n / 5
        } else {
            0
        };
        train.extend_from_slice(&group[..n - n_held]);
        held.extend_from_slice(&group[n - n_held..]);
    }
    (train, held)
}

/// Sorted distinct ids and an id -> position map.
pub(crate) fn index_ids(ids: impl Iterator<Item = i64>) -> (Vec<i64>, FxHashMap<i64, u32>) {
    let mut seen: FxHashSet<i64> = FxHashSet::default();
    for id in ids {
        seen.insert(id);
    }
    let mut sorted: Vec<i64> = seen.into_iter().collect();
    sorted.sort_unstable();
    let map = sorted
        .iter()
        .enumerate()
        .map(|(i, &id)| (id, i as u32))
        .collect();
    (sorted, map)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn r(user_id: i64, item_id: i64, rating: f32, timestamp: i64) -> RawInteraction {
        RawInteraction {
            user_id,
            item_id,
            rating,
            timestamp,
        }
    }

    #[test]
    fn hand_computed_case() {
        let rows = vec![
            // User 10: 6 distinct items after collapsing -> holds out 1 (floor 1.2).
            r(10, 5, 3.0, 1),
            r(10, 3, 4.0, 2),
            r(10, 9, 5.0, 3),
            r(10, 5, 1.0, 7), // newer rating of item 5 wins (timestamp 7)
            r(10, 1, 2.0, 4),
            r(10, 2, 2.0, 5),
            r(10, 4, 5.0, 5), // same timestamp as item 2: item order decides
            // User 3: 4 items -> train only.
            r(3, 1, 5.0, 1),
            r(3, 2, 5.0, 1),
            r(3, 3, 5.0, 1),
            r(3, 77, 5.0, 1),
            // User 20: duplicate with equal timestamp: the later row wins.
            r(20, 8, 1.0, 9),
            r(20, 8, 4.0, 9),
        ];
        let s = temporal_split(&rows);
        assert_eq!(s.user_ids, vec![3, 10, 20]);
        assert_eq!(s.item_ids, vec![1, 2, 3, 4, 5, 8, 9, 77]);
        let ext = |e: &Entry| {
            (
                s.user_ids[e.user as usize],
                s.item_ids[e.item as usize],
                e.rating,
            )
        };
        let train: Vec<_> = s.train.iter().map(ext).collect();
        let test: Vec<_> = s.test.iter().map(ext).collect();
        assert_eq!(
            train,
            vec![
                (3, 1, 5.0),
                (3, 2, 5.0),
                (3, 3, 5.0),
                (3, 77, 5.0),
                (10, 3, 4.0),
                (10, 9, 5.0),
                (10, 1, 2.0),
                (10, 2, 2.0),
                (10, 4, 5.0),
                (20, 8, 4.0),
            ]
        );
        assert_eq!(test, vec![(10, 5, 1.0)]);
    }

    #[test]
    fn an_item_seen_only_in_held_out_rows_is_still_a_column() {
        let mut rows: Vec<_> = (0..4).map(|t| r(1, t, 5.0, t)).collect();
        rows.push(r(1, 999, 5.0, 100));
        let s = temporal_split(&rows);
        assert_eq!(s.n_items(), 5);
        assert_eq!(s.item_ids[s.test[0].item as usize], 999);
        assert!(s.train.iter().all(|e| s.item_ids[e.item as usize] != 999));
    }

    #[test]
    fn validation_applies_the_same_rule_to_the_training_part() {
        let rows: Vec<_> = (0..25).map(|t| r(1, t, 4.0, t)).collect();
        let s = temporal_split(&rows);
        assert_eq!((s.train.len(), s.test.len()), (20, 5));
        let (fit, val) = holdout_split(&s.train);
        assert_eq!((fit.len(), val.len()), (16, 4));
        assert_eq!(
            val.iter().map(|e| e.timestamp).collect::<Vec<_>>(),
            vec![16, 17, 18, 19]
        );
    }

    /// The first, HashMap-based implementation: the reference for the sort-based one.
    fn reference_split(rows: &[RawInteraction]) -> Split {
        use std::collections::HashMap;
        let mut user_ids: Vec<i64> = rows.iter().map(|r| r.user_id).collect();
        user_ids.sort_unstable();
        user_ids.dedup();
        let mut item_ids: Vec<i64> = rows.iter().map(|r| r.item_id).collect();
        item_ids.sort_unstable();
        item_ids.dedup();
        let ui: HashMap<i64, u32> = user_ids
            .iter()
            .enumerate()
            .map(|(i, &id)| (id, i as u32))
            .collect();
        let ii: HashMap<i64, u32> = item_ids
            .iter()
            .enumerate()
            .map(|(i, &id)| (id, i as u32))
            .collect();
        let mut latest: HashMap<(u32, u32), (f32, i64)> = HashMap::new();
        for r in rows {
            let key = (ui[&r.user_id], ii[&r.item_id]);
            match latest.get_mut(&key) {
                Some(cell) if r.timestamp >= cell.1 => *cell = (r.rating, r.timestamp),
                Some(_) => {}
                None => {
                    latest.insert(key, (r.rating, r.timestamp));
                }
            }
        }
        let mut cells: Vec<Entry> = latest
            .into_iter()
            .map(|((user, item), (rating, timestamp))| Entry {
                user,
                item,
                rating,
                timestamp,
            })
            .collect();
        cells.sort_unstable_by_key(|e| (e.user, e.timestamp, e.item));
        let (train, test) = holdout_split(&cells);
        Split {
            user_ids,
            item_ids,
            train,
            test,
        }
    }

    proptest! {
        #[test]
        fn same_as_the_reference_implementation(raw in prop::collection::vec((-5i64..30, -3i64..40, 1u8..=5, 0i64..20), 0..600)) {
            let rows: Vec<_> = raw.iter().map(|&(u, i, rt, t)| r(u, i, f32::from(rt), t)).collect();
            prop_assert_eq!(temporal_split(&rows), reference_split(&rows));
        }

        #[test]
        fn split_invariants(raw in prop::collection::vec((0i64..20, 0i64..30, 1u8..=5, 0i64..50), 0..400)) {
            let rows: Vec<_> = raw.iter().map(|&(u, i, rt, t)| r(u, i, f32::from(rt), t)).collect();
            let s = temporal_split(&rows);
            // Every distinct pair appears exactly once across train and test.
            let mut pairs: Vec<(i64, i64)> = rows.iter().map(|x| (x.user_id, x.item_id)).collect();
            pairs.sort_unstable();
            pairs.dedup();
            prop_assert_eq!(s.train.len() + s.test.len(), pairs.len());
            // Per user: held out = floor(n/5) for n >= 5, and held-out cells come last.
            for (ui, _) in s.user_ids.iter().enumerate() {
                let tr: Vec<_> = s.train.iter().filter(|e| e.user as usize == ui).collect();
                let te: Vec<_> = s.test.iter().filter(|e| e.user as usize == ui).collect();
                let n = tr.len() + te.len();
                prop_assert_eq!(te.len(), if n >= 5 { n / 5 } else { 0 });
                if let (Some(last_train), Some(first_test)) = (tr.last(), te.first()) {
                    prop_assert!((last_train.timestamp, last_train.item) < (first_test.timestamp, first_test.item));
                }
            }
            // Deterministic.
            prop_assert_eq!(temporal_split(&rows), s);
        }
    }
}
