//! The training matrix outputs: id mappings, the confidence matrix and per-user
//! metadata, all derived from the split of the processed interactions.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;

use arrow_array::{ArrayRef, Float32Array, Float64Array, Int64Array, TimestampMicrosecondArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use serde::Deserialize;
use sprs::CsMat;

use crate::error::{Error, Result};
use crate::parquet_io::write_parquet_atomic;
use crate::split::{Entry, Split};
use crate::table::{DATA_VERSION_KEY, Interactions};
use rustc_hash::FxHashMap;

/// The confidence of an interaction for implicit-feedback ALS: `1 + alpha * rating`
/// (ARCHITECTURE, "Confidence"; alpha 10 by default).
///
/// ```
/// assert_eq!(recops_data::confidence(4.0, 10.0), 41.0);
/// ```
pub fn confidence(rating: f32, alpha: f32) -> f32 {
    1.0 + alpha * rating
}

/// The confidence matrix of `cells` (for example `split.train`): rows are users,
/// columns items, value `1 + alpha * rating`, CSR with sorted column indices, shape
/// (`split.n_users()`, `split.n_items()`).
///
/// Cells outside the split's shape (from another split) are ignored.
pub fn confidence_matrix(split: &Split, cells: &[Entry], alpha: f32) -> CsMat<f32> {
    let rows = split.n_users();
    let cols = split.n_items();
    let in_range: Vec<Entry>;
    let cells = if cells
        .iter()
        .all(|e| (e.user as usize) < rows && (e.item as usize) < cols)
    {
        cells
    } else {
        in_range = cells
            .iter()
            .filter(|e| (e.user as usize) < rows && (e.item as usize) < cols)
            .copied()
            .collect();
        &in_range
    };
    let mut indptr = vec![0usize; rows + 1];
    for e in cells {
        indptr[e.user as usize + 1] += 1;
    }
    for r in 0..rows {
        indptr[r + 1] += indptr[r];
    }
    let mut next = indptr.clone();
    let mut indices = vec![0usize; cells.len()];
    let mut data = vec![0f32; cells.len()];
    for e in cells {
        let at = &mut next[e.user as usize];
        indices[*at] = e.item as usize;
        data[*at] = confidence(e.rating, alpha);
        *at += 1;
    }
    // Each row's cells come in (timestamp, item) order; CSR wants ascending columns.
    for r in 0..rows {
        let (a, b) = (indptr[r], indptr[r + 1]);
        if indices[a..b].windows(2).any(|w| w[0] > w[1]) {
            let mut row: Vec<(usize, f32)> = indices[a..b]
                .iter()
                .copied()
                .zip(data[a..b].iter().copied())
                .collect();
            row.sort_unstable_by_key(|&(c, _)| c);
            for (k, (c, v)) in row.into_iter().enumerate() {
                indices[a + k] = c;
                data[a + k] = v;
            }
        }
    }
    match CsMat::try_new((rows, split.n_items()), indptr, indices, data) {
        Ok(m) => m,
        // Unreachable: cells come from the split, so (user, item) pairs are unique and
        // in range. Fall back to building through triplets rather than panicking.
        Err((_, _, _, _)) => {
            let mut tri = sprs::TriMat::new((rows, split.n_items()));
            for e in cells {
                tri.add_triplet(
                    e.user as usize,
                    e.item as usize,
                    confidence(e.rating, alpha),
                );
            }
            tri.to_csr()
        }
    }
}

/// `user_item_mappings.json`: external ids <-> matrix row and column indices.
#[derive(Debug, Clone, PartialEq)]
pub struct Mappings {
    /// The data version the mappings were built from.
    pub data_version: String,
    /// Row index -> external user id (ascending).
    pub user_ids: Vec<i64>,
    /// Column index -> external product id (ascending).
    pub item_ids: Vec<i64>,
}

impl Mappings {
    /// The row of `user_id`, if known.
    pub fn user_index(&self, user_id: i64) -> Option<usize> {
        self.user_ids.binary_search(&user_id).ok()
    }

    /// The column of `product_id`, if known.
    pub fn item_index(&self, product_id: i64) -> Option<usize> {
        self.item_ids.binary_search(&product_id).ok()
    }

    /// The JSON text: `user_to_idx` and `item_to_idx` (string id -> index, as the
    /// pandas pipeline writes them), plus `data_version`, `n_users`, `n_items`.
    pub fn to_json(&self) -> String {
        let mut s = String::with_capacity(32 * (self.user_ids.len() + self.item_ids.len()) + 200);
        let _ = write!(
            s,
            "{{\"data_version\": \"{}\", \"n_users\": {}, \"n_items\": {}, \"user_to_idx\": {{",
            self.data_version,
            self.user_ids.len(),
            self.item_ids.len()
        );
        for (i, id) in self.user_ids.iter().enumerate() {
            let _ = write!(s, "{}\"{id}\": {i}", if i == 0 { "" } else { ", " });
        }
        s.push_str("}, \"item_to_idx\": {");
        for (i, id) in self.item_ids.iter().enumerate() {
            let _ = write!(s, "{}\"{id}\": {i}", if i == 0 { "" } else { ", " });
        }
        s.push_str("}}\n");
        s
    }

    /// Writes the mappings atomically.
    pub fn write(&self, path: &Path) -> Result<()> {
        recops_core::write_atomic(path, self.to_json().as_bytes())?;
        Ok(())
    }

    /// Reads mappings written by [`Mappings::write`] (or by the pandas pipeline, which
    /// has no `data_version`: it reads as empty). Indices must be exactly 0..n, with
    /// ids ascending.
    pub fn read(path: &Path) -> Result<Mappings> {
        #[derive(Deserialize)]
        struct Raw {
            #[serde(default)]
            data_version: String,
            user_to_idx: std::collections::HashMap<String, usize>,
            item_to_idx: std::collections::HashMap<String, usize>,
        }
        let bad = |reason: String| Error::invalid("mappings file", path, reason);
        let bytes = std::fs::read(path).map_err(|e| Error::io("cannot read", path, e))?;
        let raw: Raw = serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
        let invert = |m: std::collections::HashMap<String, usize>, what: &str| {
            let mut ids = vec![None; m.len()];
            for (k, i) in m {
                let id: i64 = k
                    .parse()
                    .map_err(|_| bad(format!("{what} id {k:?} is not an integer")))?;
                match ids.get_mut(i) {
                    Some(slot @ None) => *slot = Some(id),
                    _ => return Err(bad(format!("{what} index {i} is repeated or out of range"))),
                }
            }
            let ids: Vec<i64> = ids.into_iter().flatten().collect();
            if ids.windows(2).any(|w| w[0] >= w[1]) {
                return Err(bad(format!("{what} indices do not follow ascending ids")));
            }
            Ok(ids)
        };
        Ok(Mappings {
            data_version: raw.data_version,
            user_ids: invert(raw.user_to_idx, "user")?,
            item_ids: invert(raw.item_to_idx, "item")?,
        })
    }
}

/// The Arrow schema of `user_metadata.parquet`: one row per user (row index order):
/// user_id, interaction_count, mean_rating, mean_comment_quality, first_date,
/// last_date (timestamps in microseconds, UTC).
pub fn user_metadata_schema() -> SchemaRef {
    let ts = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    Arc::new(Schema::new(vec![
        Field::new("user_id", DataType::Int64, false),
        Field::new("interaction_count", DataType::Int64, false),
        Field::new("mean_rating", DataType::Float64, false),
        Field::new("mean_comment_quality", DataType::Float32, false),
        Field::new("first_date", ts.clone(), false),
        Field::new("last_date", ts, false),
    ]))
}

/// Per-user statistics over all processed interactions.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct UserMetadata {
    /// External user ids, ascending (the matrix row order).
    pub user_id: Vec<i64>,
    /// Interactions per user.
    pub interaction_count: Vec<i64>,
    /// Mean rating per user.
    pub mean_rating: Vec<f64>,
    /// Mean comment quality per user.
    pub mean_comment_quality: Vec<f32>,
    /// First interaction date, microseconds (UTC).
    pub first_date: Vec<i64>,
    /// Last interaction date, microseconds (UTC).
    pub last_date: Vec<i64>,
}

impl UserMetadata {
    /// Computes the statistics of every user of `split.user_ids` from `table`.
    pub fn compute(table: &Interactions, user_ids: &[i64]) -> UserMetadata {
        let n = user_ids.len();
        let mut count = vec![0i64; n];
        let mut rating_sum = vec![0i64; n];
        let mut quality_sum = vec![0f64; n];
        let mut first = vec![i64::MAX; n];
        let mut last = vec![i64::MIN; n];
        let index: FxHashMap<i64, usize> = user_ids
            .iter()
            .enumerate()
            .map(|(i, &id)| (id, i))
            .collect();
        for i in 0..table.len() {
            let Some(&u) = index.get(&table.user_id[i]) else {
                continue;
            };
            count[u] += 1;
            rating_sum[u] += i64::from(table.rating[i]);
            quality_sum[u] += f64::from(table.comment_quality[i]);
            first[u] = first[u].min(table.cmt_date[i]);
            last[u] = last[u].max(table.cmt_date[i]);
        }
        let mean = |s: f64, c: i64| if c > 0 { s / c as f64 } else { 0.0 };
        UserMetadata {
            user_id: user_ids.to_vec(),
            mean_rating: (0..n)
                .map(|u| mean(rating_sum[u] as f64, count[u]))
                .collect(),
            mean_comment_quality: (0..n)
                .map(|u| mean(quality_sum[u], count[u]) as f32)
                .collect(),
            first_date: first
                .into_iter()
                .map(|d| if d == i64::MAX { 0 } else { d })
                .collect(),
            last_date: last
                .into_iter()
                .map(|d| if d == i64::MIN { 0 } else { d })
                .collect(),
            interaction_count: count,
        }
    }

    /// Writes `user_metadata.parquet` atomically, with `data_version` in the footer.
    pub fn write(&self, path: &Path, data_version: &str) -> Result<()> {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(self.user_id.clone())),
            Arc::new(Int64Array::from(self.interaction_count.clone())),
            Arc::new(Float64Array::from(self.mean_rating.clone())),
            Arc::new(Float32Array::from(self.mean_comment_quality.clone())),
            Arc::new(TimestampMicrosecondArray::from(self.first_date.clone()).with_timezone("UTC")),
            Arc::new(TimestampMicrosecondArray::from(self.last_date.clone()).with_timezone("UTC")),
        ];
        write_parquet_atomic(
            path,
            &user_metadata_schema(),
            &columns,
            &[(DATA_VERSION_KEY.to_owned(), data_version.to_owned())],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::split::{RawInteraction, temporal_split};

    #[test]
    fn confidence_matrix_has_sorted_rows_and_the_split_shape() {
        let rows = vec![
            RawInteraction {
                user_id: 5,
                item_id: 30,
                rating: 5.0,
                timestamp: 1,
            },
            RawInteraction {
                user_id: 5,
                item_id: 10,
                rating: 1.0,
                timestamp: 2,
            },
            RawInteraction {
                user_id: 9,
                item_id: 20,
                rating: 3.0,
                timestamp: 1,
            },
        ];
        let s = temporal_split(&rows);
        let m = confidence_matrix(&s, &s.train, 10.0);
        assert_eq!(m.shape(), (2, 3));
        assert_eq!(m.indptr().raw_storage(), &[0, 2, 3]);
        assert_eq!(m.indices(), &[0, 2, 1]);
        assert_eq!(m.data(), &[11.0, 51.0, 31.0]);
    }

    #[test]
    fn mappings_json_round_trip_and_shape() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.json");
        let m = Mappings {
            data_version: "xxh3-128:ab".into(),
            user_ids: vec![3, 10, 20],
            item_ids: vec![-1, 7],
        };
        m.write(&path).unwrap();
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(v["user_to_idx"]["10"], 1);
        assert_eq!(v["item_to_idx"]["-1"], 0);
        assert_eq!(v["n_users"], 3);
        assert_eq!(Mappings::read(&path).unwrap(), m);
        assert_eq!(m.user_index(20), Some(2));
        assert_eq!(m.item_index(8), None);
        std::fs::write(
            &path,
            r#"{"user_to_idx": {"1": 0, "2": 0}, "item_to_idx": {}}"#,
        )
        .unwrap();
        let err = Mappings::read(&path).unwrap_err().to_string();
        assert!(err.contains("repeated"), "{err}");
    }

    #[test]
    fn user_metadata_by_hand() {
        let t = Interactions {
            user_id: vec![2, 1, 2],
            product_id: vec![1, 1, 2],
            rating: vec![4, 5, 1],
            comment: None,
            cmt_date: vec![30, 10, 20],
            comment_quality: vec![0.5, 1.0, 0.0],
        };
        let m = UserMetadata::compute(&t, &[1, 2]);
        assert_eq!(m.interaction_count, vec![1, 2]);
        assert_eq!(m.mean_rating, vec![5.0, 2.5]);
        assert_eq!(m.mean_comment_quality, vec![1.0, 0.25]);
        assert_eq!(m.first_date, vec![10, 20]);
        assert_eq!(m.last_date, vec![10, 30]);
    }
}
