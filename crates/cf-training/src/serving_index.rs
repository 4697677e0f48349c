//! `serving.safetensors`: what the recommender needs besides the factors — every
//! item each user already interacted with (filtered from recommendations) and item
//! popularity (the fallback for unknown users). Written by [`train`](crate::train)
//! next to the model, so a model folder is all a service needs to serve it.

use std::collections::HashMap;
use std::path::Path;

use recops_core::write_atomic;
use recops_data::Split;

use crate::error::{Error, Result};
use crate::tensors::{Decoded, Tensor, encode};

/// File name of the serving index in a model folder.
pub const SERVING_INDEX_FILE: &str = "serving.safetensors";

/// Seen items (CSR over the model's users and items) and item popularity.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServingIndex {
    /// Row pointers, one per user plus one.
    pub seen_indptr: Vec<usize>,
    /// Item columns of each user's interactions, ascending within a row.
    pub seen_indices: Vec<u32>,
    /// Distinct users who interacted with each item.
    pub item_popularity: Vec<u32>,
}

impl ServingIndex {
    /// Every (user, item) cell of the split — training and held-out rows, so a service
    /// never recommends what a user already rated — and item counts over the same cells.
    pub fn from_split(split: &Split) -> Self {
        let (nu, ni) = (split.n_users(), split.n_items());
        let mut counts = vec![0usize; nu + 1];
        let mut item_popularity = vec![0u32; ni];
        for e in split.train.iter().chain(&split.test) {
            counts[e.user as usize + 1] += 1;
            item_popularity[e.item as usize] += 1;
        }
        let mut seen_indptr = counts;
        for u in 0..nu {
            seen_indptr[u + 1] += seen_indptr[u];
        }
        let mut next = seen_indptr.clone();
        let mut seen_indices = vec![0u32; seen_indptr[nu]];
        for e in split.train.iter().chain(&split.test) {
            let u = e.user as usize;
            seen_indices[next[u]] = e.item;
            next[u] += 1;
        }
        for u in 0..nu {
            seen_indices[seen_indptr[u]..seen_indptr[u + 1]].sort_unstable();
        }
        ServingIndex {
            seen_indptr,
            seen_indices,
            item_popularity,
        }
    }

    /// Writes `serving.safetensors` into `dir` atomically.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let path = dir.join(SERVING_INDEX_FILE);
        let indptr: Vec<i64> = self.seen_indptr.iter().map(|&v| v as i64).collect();
        let indices: Vec<i64> = self.seen_indices.iter().map(|&v| i64::from(v)).collect();
        let popularity: Vec<i64> = self.item_popularity.iter().map(|&v| i64::from(v)).collect();
        let bytes = encode(
            &path,
            &[
                ("seen_indptr", Tensor::Ids(&indptr)),
                ("seen_indices", Tensor::Ids(&indices)),
                ("item_popularity", Tensor::Ids(&popularity)),
            ],
            HashMap::new(),
        )?;
        write_atomic(&path, &bytes)?;
        Ok(())
    }

    /// Reads `serving.safetensors` from `dir` and checks it against `n_users` x
    /// `n_items`.
    pub fn load(dir: &Path, n_users: usize, n_items: usize) -> Result<Self> {
        let path = dir.join(SERVING_INDEX_FILE);
        let bytes = std::fs::read(&path).map_err(|e| Error::io("cannot read", &path, e))?;
        let d = Decoded::parse(&path, &bytes)?;
        let bad = |message: String| Error::ModelFile {
            path: path.clone(),
            message,
        };
        let to_usize = |v: Vec<i64>, what: &str| -> Result<Vec<usize>> {
            v.into_iter()
                .map(|x| usize::try_from(x).map_err(|_| bad(format!("negative value in {what}"))))
                .collect()
        };
        let to_u32 = |v: Vec<i64>, what: &str| -> Result<Vec<u32>> {
            v.into_iter()
                .map(|x| u32::try_from(x).map_err(|_| bad(format!("value out of range in {what}"))))
                .collect()
        };
        let index = ServingIndex {
            seen_indptr: to_usize(d.ids("seen_indptr")?, "seen_indptr")?,
            seen_indices: to_u32(d.ids("seen_indices")?, "seen_indices")?,
            item_popularity: to_u32(d.ids("item_popularity")?, "item_popularity")?,
        };
        if index.seen_indptr.len() != n_users + 1
            || index.seen_indptr.last() != Some(&index.seen_indices.len())
            || index.seen_indptr.windows(2).any(|w| w[0] > w[1])
        {
            return Err(bad(format!(
                "seen_indptr does not describe {n_users} users and {} cells",
                index.seen_indices.len()
            )));
        }
        if index.item_popularity.len() != n_items
            || index.seen_indices.iter().any(|&i| i as usize >= n_items)
        {
            return Err(bad(format!(
                "item columns do not match the model's {n_items} items"
            )));
        }
        Ok(index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use recops_data::{RawInteraction, temporal_split};

    #[test]
    fn index_covers_train_and_held_out_cells_and_round_trips() {
        let mut rows = Vec::new();
        for t in 0..6 {
            rows.push(RawInteraction {
                user_id: 1,
                item_id: 10 + t,
                rating: 5.0,
                timestamp: t,
            });
        }
        rows.push(RawInteraction {
            user_id: 2,
            item_id: 11,
            rating: 4.0,
            timestamp: 0,
        });
        let split = temporal_split(&rows);
        assert_eq!(split.test.len(), 1);
        let idx = ServingIndex::from_split(&split);
        assert_eq!(idx.seen_indptr, vec![0, 6, 7]);
        assert_eq!(&idx.seen_indices[..6], &[0, 1, 2, 3, 4, 5]);
        assert_eq!(idx.item_popularity, vec![1, 2, 1, 1, 1, 1]);
        let dir = tempfile::tempdir().unwrap();
        idx.save(dir.path()).unwrap();
        assert_eq!(ServingIndex::load(dir.path(), 2, 6).unwrap(), idx);
        assert!(ServingIndex::load(dir.path(), 3, 6).is_err());
        assert!(ServingIndex::load(dir.path(), 2, 5).is_err());
    }
}
