//! Model files: `artifacts/cf/<model_id>/model.safetensors` + `model.json`, and the
//! loader the recommender service uses.
//!
//! `model.safetensors` holds `user_factors` (F32, n_users × d), `item_factors` (F32,
//! n_items × d), `user_ids` and `item_ids` (I64, the external ids of the rows, ascending),
//! so a model is self-contained: it keeps answering for the ids it was trained on even
//! after the data's mappings change. For BPR, `d = factors + 1`: the items' last column is
//! their bias and the users' is 1, so every model scores by a plain dot product.
//!
//! `model.json` holds the type, hyperparameters, metrics, baseline, data version,
//! creation time and a fingerprint of the id mappings. [`CfModel::load`] refuses a
//! model whose tensor shapes disagree with its ids, whose ids disagree with the
//! fingerprint, or whose values are not finite.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use recops_core::{Home, ModelId, write_atomic};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::eval::top_n_for_user;
use crate::matrix::Factors;
use crate::tensors::{Decoded, Tensor, encode};

/// File name of the factors inside a model folder.
pub const MODEL_TENSORS_FILE: &str = "model.safetensors";
/// File name of the metadata inside a model folder.
pub const MODEL_META_FILE: &str = "model.json";
/// Version of the model file layout written by this crate.
pub const MODEL_FORMAT_VERSION: u32 = 1;

/// The algorithm of a model: the one [`recops_core::ModelType`] of recops.
pub use recops_core::ModelType;

/// How a training run was set up and went (part of `model.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct TrainingSummary {
    /// Iterations run.
    pub iterations_run: usize,
    /// The iteration whose factors were kept.
    pub best_iteration: usize,
    /// True when early stopping ended the run.
    pub stopped_early: bool,
    /// Seconds of training.
    pub training_time_seconds: f64,
    /// Threads used.
    pub threads: usize,
    /// How the factors were initialised: `random`, `bert` or `warm_start:<model_id>`.
    pub init: String,
    /// Best validation ndcg@10, when validated.
    pub validation_ndcg_at_10: Option<f64>,
}

/// `model.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelMeta {
    /// Layout version ([`MODEL_FORMAT_VERSION`]).
    pub format_version: u32,
    /// `{type}_{YYYYMMDD_HHMMSS}` (validated when `model.json` is read).
    pub model_id: ModelId,
    /// `als` or `bpr`.
    #[serde(rename = "type")]
    pub model_type: ModelType,
    /// Latent factors (BPR files have one more column: the item bias).
    pub factors: usize,
    /// Hyperparameters and training options as configured.
    pub hyperparameters: serde_json::Value,
    /// Test metrics: `recall@10`, `ndcg@10`, `coverage@10`, ...
    pub metrics: BTreeMap<String, f64>,
    /// The strongest popularity baseline's metrics on the same split (the gate's bar).
    pub baseline: BTreeMap<String, f64>,
    /// Every popularity variant on the same split, by name (`popularity`,
    /// `popularity_decay_7d`, ...); empty in models written before the honest gate.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub baselines: BTreeMap<String, BTreeMap<String, f64>>,
    /// The validation-only search that chose the hyperparameters, when tuned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tuning: Option<crate::TuningResult>,
    /// recall@10 improvement over the baseline, percent.
    pub improvement_pct: f64,
    /// Version of the training data.
    pub data_version: String,
    /// RFC 3339 creation time.
    pub created_at: String,
    /// Rows of `user_factors`.
    pub n_users: usize,
    /// Rows of `item_factors`.
    pub n_items: usize,
    /// Fingerprint of `user_ids` and `item_ids` ([`mapping_fingerprint`]).
    pub mapping_fingerprint: String,
    /// The training run.
    #[serde(default)]
    pub training: TrainingSummary,
}

/// A trained model: metadata, external ids and factors.
#[derive(Debug, Clone, PartialEq)]
pub struct CfModel {
    /// `model.json`.
    pub meta: ModelMeta,
    /// External user id of each row of `user_factors`, ascending.
    pub user_ids: Vec<i64>,
    /// External item id of each row of `item_factors`, ascending.
    pub item_ids: Vec<i64>,
    /// User factors.
    pub user_factors: Factors,
    /// Item factors.
    pub item_factors: Factors,
}

/// FNV-1a (64 bit) over both id lists and their lengths, as 16 hex digits: equal
/// fingerprints mean the same rows and columns in the same order.
pub fn mapping_fingerprint(user_ids: &[i64], item_ids: &[i64]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    eat(b"users");
    eat(&(user_ids.len() as u64).to_le_bytes());
    for id in user_ids {
        eat(&id.to_le_bytes());
    }
    eat(b"items");
    eat(&(item_ids.len() as u64).to_le_bytes());
    for id in item_ids {
        eat(&id.to_le_bytes());
    }
    format!("{h:016x}")
}

impl CfModel {
    /// Checks the model is internally consistent (what [`CfModel::load`] enforces).
    pub fn validate(&self, path: &Path) -> Result<()> {
        let bad = |message: String| Error::ModelFile {
            path: path.to_path_buf(),
            message,
        };
        let m = &self.meta;
        let cols = m.model_type.columns(m.factors);
        let shape = |f: &Factors| format!("{} x {}", f.rows(), f.cols());
        if self.user_factors.rows() != self.user_ids.len() || self.user_factors.cols() != cols {
            return Err(bad(format!(
                "user_factors is {} but the model has {} user ids and {cols} columns ({} {} factors)",
                shape(&self.user_factors),
                self.user_ids.len(),
                m.model_type,
                m.factors
            )));
        }
        if self.item_factors.rows() != self.item_ids.len() || self.item_factors.cols() != cols {
            return Err(bad(format!(
                "item_factors is {} but the model has {} item ids and {cols} columns ({} {} factors)",
                shape(&self.item_factors),
                self.item_ids.len(),
                m.model_type,
                m.factors
            )));
        }
        if m.n_users != self.user_ids.len() || m.n_items != self.item_ids.len() {
            return Err(bad(format!(
                "{MODEL_META_FILE} says {} users x {} items but the factors have {} x {}",
                m.n_users,
                m.n_items,
                self.user_ids.len(),
                self.item_ids.len()
            )));
        }
        for (what, ids) in [("user_ids", &self.user_ids), ("item_ids", &self.item_ids)] {
            if ids.windows(2).any(|w| w[0] >= w[1]) {
                return Err(bad(format!("{what} are not strictly ascending")));
            }
        }
        let fp = mapping_fingerprint(&self.user_ids, &self.item_ids);
        if fp != m.mapping_fingerprint {
            return Err(bad(format!(
                "the id mappings do not match the fingerprint in {MODEL_META_FILE} ({fp} != {})",
                m.mapping_fingerprint
            )));
        }
        if !self.user_factors.all_finite() || !self.item_factors.all_finite() {
            return Err(bad("factors contain NaN or infinite values".into()));
        }
        Ok(())
    }

    /// Writes `model.safetensors` then `model.json` (each atomically) into `dir`.
    /// `model.json` is written last: a folder without it is an incomplete model.
    pub fn save(&self, dir: &Path) -> Result<()> {
        self.validate(dir)?;
        recops_core::ensure_dir(dir)?;
        let tensors_path = dir.join(MODEL_TENSORS_FILE);
        let mut meta = HashMap::new();
        meta.insert("model_id".to_owned(), self.meta.model_id.to_string());
        meta.insert("type".to_owned(), self.meta.model_type.to_string());
        meta.insert(
            "mapping_fingerprint".to_owned(),
            self.meta.mapping_fingerprint.clone(),
        );
        let bytes = encode(
            &tensors_path,
            &[
                ("user_factors", Tensor::Matrix(&self.user_factors)),
                ("item_factors", Tensor::Matrix(&self.item_factors)),
                ("user_ids", Tensor::Ids(&self.user_ids)),
                ("item_ids", Tensor::Ids(&self.item_ids)),
            ],
            meta,
        )?;
        write_atomic(&tensors_path, &bytes)?;
        let json = serde_json::to_vec_pretty(&self.meta).map_err(|e| Error::ModelFile {
            path: dir.join(MODEL_META_FILE),
            message: e.to_string(),
        })?;
        write_atomic(&dir.join(MODEL_META_FILE), &json)?;
        Ok(())
    }

    /// Reads only `model.json` of the model in `dir` (its hyperparameters, metrics and
    /// tuning; no factors), refusing a newer format version.
    pub fn read_meta(dir: &Path) -> Result<ModelMeta> {
        let meta_path = dir.join(MODEL_META_FILE);
        let text =
            std::fs::read(&meta_path).map_err(|e| Error::io("cannot read", &meta_path, e))?;
        let meta: ModelMeta = serde_json::from_slice(&text).map_err(|e| Error::ModelFile {
            path: meta_path.clone(),
            message: e.to_string(),
        })?;
        if meta.format_version > MODEL_FORMAT_VERSION {
            return Err(Error::ModelFile {
                path: meta_path,
                message: format!(
                    "format_version {} is newer than this recops understands ({MODEL_FORMAT_VERSION})",
                    meta.format_version
                ),
            });
        }
        Ok(meta)
    }

    /// Loads and checks the model in `dir` (see the module docs for what is refused).
    pub fn load(dir: &Path) -> Result<Self> {
        let meta = Self::read_meta(dir)?;
        let tensors_path = dir.join(MODEL_TENSORS_FILE);
        let bytes =
            std::fs::read(&tensors_path).map_err(|e| Error::io("cannot read", &tensors_path, e))?;
        let d = Decoded::parse(&tensors_path, &bytes)?;
        let model = CfModel {
            user_factors: d.matrix("user_factors")?,
            item_factors: d.matrix("item_factors")?,
            user_ids: d.ids("user_ids")?,
            item_ids: d.ids("item_ids")?,
            meta,
        };
        model.validate(&tensors_path)?;
        Ok(model)
    }

    /// Loads model `model_id` of `home` (`artifacts/cf/<model_id>/`).
    pub fn load_id(home: &Home, model_id: &ModelId) -> Result<Self> {
        Self::load(&home.model_dir(model_id))
    }

    /// The folder of this model in `home`.
    pub fn dir(&self, home: &Home) -> PathBuf {
        home.model_dir(&self.meta.model_id)
    }

    /// Refuses the model when its rows and columns are not exactly `user_ids` and
    /// `item_ids` (for a caller that indexes by an external mapping).
    pub fn check_mappings(&self, user_ids: &[i64], item_ids: &[i64]) -> Result<()> {
        if self.user_ids != user_ids || self.item_ids != item_ids {
            return Err(Error::ShapeMismatch {
                what: format!("model {} id mappings", self.meta.model_id),
                expected: format!(
                    "{} users x {} items (fingerprint {})",
                    user_ids.len(),
                    item_ids.len(),
                    mapping_fingerprint(user_ids, item_ids)
                ),
                got: format!(
                    "{} users x {} items (fingerprint {})",
                    self.user_ids.len(),
                    self.item_ids.len(),
                    self.meta.mapping_fingerprint
                ),
            });
        }
        Ok(())
    }

    /// Row of an external user id.
    pub fn user_index(&self, user_id: i64) -> Option<usize> {
        self.user_ids.binary_search(&user_id).ok()
    }

    /// Row of an external item id.
    pub fn item_index(&self, item_id: i64) -> Option<usize> {
        self.item_ids.binary_search(&item_id).ok()
    }

    /// The top `n` items for a known user as (item id, score), best first, skipping
    /// `exclude` (external item ids). `None` for an unknown user.
    pub fn recommend(&self, user_id: i64, n: usize, exclude: &[i64]) -> Option<Vec<(i64, f32)>> {
        let u = self.user_index(user_id)?;
        let mut ex: Vec<u32> = exclude
            .iter()
            .filter_map(|&i| self.item_index(i))
            .map(|i| i as u32)
            .collect();
        ex.sort_unstable();
        let user = self.user_factors.row(u);
        Some(
            top_n_for_user(user, &self.item_factors, &ex, n)
                .into_iter()
                .map(|i| {
                    let s = crate::kernels::dot(user, self.item_factors.row(i as usize));
                    (self.item_ids[i as usize], s)
                })
                .collect(),
        )
    }
}
