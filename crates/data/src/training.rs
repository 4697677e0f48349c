//! [`TrainingData`]: what the training job reads from the processed data.

use std::path::Path;

use recops_core::Home;
use sprs::CsMat;

use crate::error::Result;
use crate::matrix::{Mappings, confidence_matrix};
use crate::split::{Split, temporal_split};
use crate::table::{Interactions, ReadOptions, read_interactions};
use crate::version::data_version;

/// The processed interactions as the training job needs them: the deterministic
/// temporal split of ARCHITECTURE and the data version it was computed from.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainingData {
    /// The split, exactly as [`temporal_split`] computes it from the interactions
    /// (user_id, product_id, rating, cmt_date in microseconds, table row order).
    pub split: Split,
    /// The [data version](crate::data_version) of `interactions.parquet`.
    pub data_version: String,
    /// Rows of `interactions.parquet` (before collapsing repeated (user, item) pairs).
    pub interactions: usize,
}

impl TrainingData {
    /// Reads `data/processed/interactions.parquet` of `home` and splits it, after
    /// rolling forward the commit of an interrupted refresh and under the commit lock
    /// ([`lock_for_reading`](crate::lock_for_reading)).
    /// [`Error::NoProcessedData`](crate::Error::NoProcessedData) when there is none yet.
    pub fn load(home: &Home) -> Result<TrainingData> {
        let _guard = crate::commit::lock_for_reading(home)?;
        Self::load_path(&home.interactions())
    }

    /// Reads an interactions Parquet file at `path` and splits it.
    pub fn load_path(path: &Path) -> Result<TrainingData> {
        let (table, meta) = read_interactions(path, ReadOptions { comments: false })?;
        let version = match meta.data_version {
            Some(v) => v,
            // A table written by another tool: hash its content (needs the comments).
            None => data_version(&read_interactions(path, ReadOptions::default())?.0),
        };
        Ok(Self::from_interactions(&table, version))
    }

    /// Splits an in-memory table.
    pub fn from_interactions(table: &Interactions, data_version: String) -> TrainingData {
        TrainingData {
            split: temporal_split(&table.raw()),
            data_version,
            interactions: table.len(),
        }
    }

    /// The confidence matrix of the training part, `1 + alpha * rating`, users x items.
    pub fn train_confidence(&self, alpha: f32) -> CsMat<f32> {
        confidence_matrix(&self.split, &self.split.train, alpha)
    }

    /// The id mappings of the split (rows and columns by ascending external id).
    pub fn mappings(&self) -> Mappings {
        Mappings {
            data_version: self.data_version.clone(),
            user_ids: self.split.user_ids.clone(),
            item_ids: self.split.item_ids.clone(),
        }
    }
}
