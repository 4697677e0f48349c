//! Merge with dedup on (user_id, product_id, cmt_date): the newest row wins.

use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;

use rayon::prelude::*;
use serde::Serialize;

use crate::table::Interactions;
use rustc_hash::FxBuildHasher;

/// What a merge did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct MergeStats {
    /// Rows in the table before the merge.
    pub existing: usize,
    /// Valid staging rows offered.
    pub incoming: usize,
    /// Staging rows dropped because a later staging row (later in its file, or in a
    /// newer file) has the same key.
    pub duplicates_in_incoming: usize,
    /// Rows of the existing table dropped because a later existing row has the same
    /// key (only when the existing table is re-checked by a full rebuild).
    pub duplicates_in_existing: usize,
    /// Staging rows identical (same key, rating and comment) to a row already there:
    /// nothing changes, the row keeps its place.
    pub unchanged: usize,
    /// Existing rows replaced by a newer version with the same key.
    pub replaced: usize,
    /// Staging rows with a key that was not there.
    pub added: usize,
    /// Rows after the merge.
    pub total: usize,
}

type Key = (i64, i64, i64);

fn key(t: &Interactions, i: usize) -> Key {
    (t.user_id[i], t.product_id[i], t.cmt_date[i])
}

/// Marks the last row of each (user_id, product_id, cmt_date) key: `keep[i]` is false
/// when a later row has the same key. Returns the mask and the number of rows dropped.
///
/// Rows are sharded by key hash and the shards checked in parallel (a key's rows all
/// land in the same shard, in order).
pub fn dedup_last(t: &Interactions) -> (Vec<bool>, usize) {
    let n = t.len();
    let shards = if n < 50_000 {
        1
    } else {
        4 * rayon::current_num_threads()
    };
    let build = FxBuildHasher;
    let shard_of: Vec<u8> = (0..n)
        .into_par_iter()
        .map(|i| (build.hash_one(key(t, i)) >> 56) as usize % shards)
        .map(|s| s as u8)
        .collect();
    let dropped: Vec<Vec<usize>> = (0..shards)
        .into_par_iter()
        .map(|s| {
            let rows: Vec<usize> = (0..n).filter(|&i| usize::from(shard_of[i]) == s).collect();
            let mut seen: HashSet<Key, FxBuildHasher> =
                HashSet::with_capacity_and_hasher(rows.len(), FxBuildHasher);
            rows.iter()
                .rev()
                .filter(|&&i| !seen.insert(key(t, i)))
                .copied()
                .collect()
        })
        .collect();
    let mut keep = vec![true; n];
    let mut count = 0;
    for i in dropped.into_iter().flatten() {
        keep[i] = false;
        count += 1;
    }
    (keep, count)
}

/// Merges `incoming` (staging rows, oldest file first, each file in order) into
/// `existing`, as the spec's `concat + drop_duplicates(keep='last')` with one
/// refinement that makes refreshes idempotent: a staging row identical to the row
/// already there (same key, rating and comment) changes nothing, so the table, its
/// order and its data version stay the same.
///
/// The result is the existing rows that were not replaced, in order, then the new
/// versions and new rows, in staging order. With `recheck_existing` (full rebuild),
/// duplicate keys inside `existing` are dropped too (the later row wins); otherwise
/// `existing` is trusted to be free of them (it was written by a merge).
pub fn merge(
    existing: Interactions,
    incoming: Interactions,
    recheck_existing: bool,
) -> (Interactions, MergeStats) {
    let mut stats = MergeStats {
        existing: existing.len(),
        incoming: incoming.len(),
        ..MergeStats::default()
    };
    let (mut keep_in, dup_in) = dedup_last(&incoming);
    stats.duplicates_in_incoming = dup_in;
    let (mut keep_ex, dup_ex) = if recheck_existing {
        dedup_last(&existing)
    } else {
        (vec![true; existing.len()], 0)
    };
    stats.duplicates_in_existing = dup_ex;

    // Only keys present on both sides need a look; an empty side needs none.
    let matches: Vec<(usize, usize)> = if existing.is_empty() || incoming.is_empty() {
        Vec::new()
    } else {
        let mut index: HashMap<Key, usize, FxBuildHasher> =
            HashMap::with_capacity_and_hasher(incoming.len() - dup_in, FxBuildHasher);
        for (j, _) in keep_in.iter().enumerate().filter(|(_, k)| **k) {
            index.insert(key(&incoming, j), j);
        }
        (0..existing.len())
            .into_par_iter()
            .filter(|&i| keep_ex[i])
            .filter_map(|i| index.get(&key(&existing, i)).map(|&j| (i, j)))
            .collect()
    };
    for (i, j) in matches {
        let same = existing.rating[i] == incoming.rating[j]
            && (existing.comment.is_none() || existing.comment(i) == incoming.comment(j));
        if same {
            keep_in[j] = false;
            stats.unchanged += 1;
        } else {
            keep_ex[i] = false;
            stats.replaced += 1;
        }
    }
    stats.added = incoming.len() - dup_in - stats.unchanged - stats.replaced;
    let kept = |t: Interactions, keep: &[bool]| {
        if keep.iter().all(|&k| k) {
            t
        } else {
            t.filter(keep)
        }
    };
    let incoming = kept(incoming, &keep_in);
    let merged = if existing.is_empty() {
        incoming
    } else {
        kept(existing, &keep_ex).concat(&incoming)
    };
    stats.total = merged.len();
    (merged, stats)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::StringArray;
    use proptest::prelude::*;

    fn t(rows: &[(i64, i64, u8, Option<&str>, i64)]) -> Interactions {
        Interactions {
            user_id: rows.iter().map(|r| r.0).collect(),
            product_id: rows.iter().map(|r| r.1).collect(),
            rating: rows.iter().map(|r| r.2).collect(),
            comment: Some(StringArray::from(
                rows.iter().map(|r| r.3).collect::<Vec<_>>(),
            )),
            cmt_date: rows.iter().map(|r| r.4).collect(),
            comment_quality: rows.iter().map(|r| crate::comment_quality(r.3)).collect(),
        }
    }

    #[test]
    fn newest_wins_identical_rows_keep_their_place() {
        let existing = t(&[
            (1, 10, 5, Some("a"), 100),
            (2, 10, 4, None, 100),
            (3, 10, 3, Some("c"), 100),
        ]);
        let incoming = t(&[
            (2, 10, 1, Some("changed my mind"), 100), // replaces row 2...
            (4, 11, 5, None, 50),                     // new
            (2, 10, 2, Some("final"), 100),           // ...and this later version wins
            (3, 10, 3, Some("c"), 100),               // identical: no change
            (1, 10, 5, Some("a"), 101),               // same pair, new date: a new row
        ]);
        let (m, s) = merge(existing, incoming.clone(), false);
        let rows: Vec<_> = (0..m.len())
            .map(|i| (m.user_id[i], m.rating[i], m.comment(i), m.cmt_date[i]))
            .collect();
        assert_eq!(
            rows,
            vec![
                (1, 5, Some("a"), 100),
                (3, 3, Some("c"), 100),
                (4, 5, None, 50),
                (2, 2, Some("final"), 100),
                (1, 5, Some("a"), 101),
            ]
        );
        assert_eq!(
            s,
            MergeStats {
                existing: 3,
                incoming: 5,
                duplicates_in_incoming: 1,
                duplicates_in_existing: 0,
                unchanged: 1,
                replaced: 1,
                added: 2,
                total: 5,
            }
        );
        // Merging the same input again changes nothing.
        let (again, s2) = merge(m.clone(), incoming, false);
        assert_eq!(again, m);
        assert_eq!((s2.added, s2.replaced), (0, 0));
    }

    #[test]
    fn sharded_dedup_matches_a_plain_scan() {
        let n = 120_000;
        let rows: Vec<_> = (0..n as i64)
            .map(|i| (i % 1_000, i % 7, 5, None, i % 3))
            .collect();
        let table = t(&rows);
        let (keep, dropped) = dedup_last(&table);
        let mut seen = HashSet::new();
        let mut expected = vec![true; n];
        for i in (0..n).rev() {
            if !seen.insert(key(&table, i)) {
                expected[i] = false;
            }
        }
        assert_eq!(keep, expected);
        assert_eq!(dropped, expected.iter().filter(|k| !**k).count());
        assert!(dropped > 0);
    }

    #[test]
    fn full_rebuild_rechecks_existing_duplicates() {
        let existing = t(&[(1, 1, 1, None, 5), (1, 1, 2, None, 5)]);
        let (m, s) = merge(existing, Interactions::default(), true);
        assert_eq!(m.rating, vec![2]);
        assert_eq!(s.duplicates_in_existing, 1);
    }

    proptest! {
        /// The result equals pandas' concat + drop_duplicates(keep='last') up to the
        /// position of rows whose replacement is identical.
        #[test]
        fn same_rows_as_drop_duplicates_keep_last(
            ex in prop::collection::vec((0i64..4, 0i64..4, 1u8..=5, 0i64..3), 0..30),
            inc in prop::collection::vec((0i64..4, 0i64..4, 1u8..=5, 0i64..3), 0..30),
        ) {
            let to_rows = |v: &[(i64, i64, u8, i64)]| v.iter().map(|&(u, p, r, d)| (u, p, r, None, d)).collect::<Vec<_>>();
            let existing = t(&to_rows(&ex));
            let (existing, _) = merge(Interactions::default(), existing, false);
            let incoming = t(&to_rows(&inc));
            let (m, s) = merge(existing.clone(), incoming.clone(), false);
            let all = existing.clone().concat(&incoming);
            let (keep, _) = dedup_last(&all);
            let mut expected: Vec<_> = (0..all.len()).filter(|&i| keep[i]).map(|i| (key(&all, i), all.rating[i])).collect();
            let mut got: Vec<_> = (0..m.len()).map(|i| (key(&m, i), m.rating[i])).collect();
            expected.sort_unstable();
            got.sort_unstable();
            prop_assert_eq!(got, expected);
            prop_assert_eq!(s.total, m.len());
            prop_assert_eq!(s.added + s.replaced + s.unchanged + s.duplicates_in_incoming, s.incoming);
            prop_assert_eq!(dedup_last(&m).1, 0);
        }
    }
}
