//! Merge with dedup on (user_id, product_id, cmt_date): the newest row wins.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

use rayon::prelude::*;
use serde::Serialize;

use crate::table::Interactions;

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

/// FxHash (rustc's hasher): a multiply-rotate hash, several times faster than SipHash
/// on integer keys; the keys are not attacker-chosen in a way that matters here.
#[derive(Default)]
struct FxHasher(u64);

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(b));
        }
    }

    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    fn write_i64(&mut self, v: i64) {
        self.write_u64(v as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

type FxBuild = BuildHasherDefault<FxHasher>;

/// Marks the last row of each (user_id, product_id, cmt_date) key: `keep[i]` is false
/// when a later row has the same key. Returns the mask and the number of rows dropped.
pub fn dedup_last(t: &Interactions) -> (Vec<bool>, usize) {
    let n = t.len();
    let mut keep = vec![true; n];
    let mut seen: HashSet<Key, FxBuild> = HashSet::with_capacity_and_hasher(n, FxBuild::default());
    let mut dropped = 0;
    for i in (0..n).rev() {
        if !seen.insert(key(t, i)) {
            keep[i] = false;
            dropped += 1;
        }
    }
    (keep, dropped)
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
    incoming: &Interactions,
    recheck_existing: bool,
) -> (Interactions, MergeStats) {
    let mut stats = MergeStats {
        existing: existing.len(),
        incoming: incoming.len(),
        ..MergeStats::default()
    };
    let (mut keep_in, dup_in) = dedup_last(incoming);
    stats.duplicates_in_incoming = dup_in;
    let (mut keep_ex, dup_ex) = if recheck_existing {
        dedup_last(&existing)
    } else {
        (vec![true; existing.len()], 0)
    };
    stats.duplicates_in_existing = dup_ex;

    let mut index: HashMap<Key, usize, FxBuild> =
        HashMap::with_capacity_and_hasher(incoming.len() - dup_in, FxBuild::default());
    for (j, _) in keep_in.iter().enumerate().filter(|(_, k)| **k) {
        index.insert(key(incoming, j), j);
    }
    let matches: Vec<(usize, usize)> = if index.is_empty() {
        Vec::new()
    } else {
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
    let merged = if stats.replaced == 0 && dup_ex == 0 {
        existing.concat(&incoming.filter(&keep_in))
    } else {
        existing.filter(&keep_ex).concat(&incoming.filter(&keep_in))
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
        let (m, s) = merge(existing, &incoming, false);
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
        let (again, s2) = merge(m.clone(), &incoming, false);
        assert_eq!(again, m);
        assert_eq!((s2.added, s2.replaced), (0, 0));
    }

    #[test]
    fn full_rebuild_rechecks_existing_duplicates() {
        let existing = t(&[(1, 1, 1, None, 5), (1, 1, 2, None, 5)]);
        let (m, s) = merge(existing, &Interactions::default(), true);
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
            let (existing, _) = merge(Interactions::default(), &existing, false);
            let incoming = t(&to_rows(&inc));
            let (m, s) = merge(existing.clone(), &incoming, false);
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
