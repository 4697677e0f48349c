//! Training checkpoints in `checkpoints/<model_type>/checkpoint_NNNNN.safetensors`.
//!
//! A checkpoint holds the current and the best factors and, in the header metadata
//! (`state`), everything else a resumed run needs: the iteration, the early-stopping
//! state, the history, the model id and a fingerprint of the config and data. Random
//! streams are derived from (seed, iteration), so a resumed run replays the remaining
//! iterations exactly as an uninterrupted one.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use recops_core::{ModelId, write_atomic};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::iteration::IterationReport;
use crate::matrix::Factors;
use crate::tensors::{Decoded, Tensor, encode};

/// Checkpoints kept per model type (older ones are deleted).
const KEEP: usize = 2;

/// Early-stopping bookkeeping.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct EarlyState {
    /// Iteration of the best factors (0 = none yet).
    pub(crate) best_iteration: usize,
    /// Best validation ndcg@10 so far.
    pub(crate) best_ndcg: Option<f64>,
    /// Validations since the last improvement.
    pub(crate) bad_evals: usize,
}

/// What a checkpoint stores besides the factors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct CheckpointState {
    pub(crate) iteration: usize,
    pub(crate) run_fingerprint: String,
    pub(crate) model_id: ModelId,
    pub(crate) started_at: String,
    pub(crate) init: String,
    pub(crate) elapsed_seconds: f64,
    pub(crate) early: EarlyState,
    pub(crate) history: Vec<IterationReport>,
}

/// A loaded checkpoint.
pub(crate) struct Checkpoint {
    pub(crate) path: PathBuf,
    pub(crate) state: CheckpointState,
    pub(crate) users: Factors,
    pub(crate) items: Factors,
    pub(crate) best: Option<(Factors, Factors)>,
}

fn file_name(iteration: usize) -> String {
    format!("checkpoint_{iteration:05}.safetensors")
}

/// Checkpoint files in `dir`, oldest first.
pub(crate) fn list(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("checkpoint_") && n.ends_with(".safetensors"))
            })
            .collect(),
        Err(_) => Vec::new(),
    };
    files.sort();
    files
}

/// Deletes every checkpoint in `dir`; returns how many there were.
pub(crate) fn clear(dir: &Path) -> usize {
    let files = list(dir);
    for f in &files {
        let _ = std::fs::remove_file(f);
    }
    files.len()
}

/// Writes a checkpoint atomically and prunes older ones.
pub(crate) fn save(
    dir: &Path,
    state: &CheckpointState,
    users: &Factors,
    items: &Factors,
    best: Option<(&Factors, &Factors)>,
) -> Result<PathBuf> {
    recops_core::ensure_dir(dir)?;
    let path = dir.join(file_name(state.iteration));
    let mut meta = HashMap::new();
    let json = serde_json::to_string(state).map_err(|e| Error::Checkpoint {
        path: path.clone(),
        message: e.to_string(),
    })?;
    meta.insert("state".to_owned(), json);
    let mut tensors = vec![
        ("user_factors", Tensor::Matrix(users)),
        ("item_factors", Tensor::Matrix(items)),
    ];
    if let Some((bu, bi)) = best {
        tensors.push(("best_user_factors", Tensor::Matrix(bu)));
        tensors.push(("best_item_factors", Tensor::Matrix(bi)));
    }
    let bytes = encode(&path, &tensors, meta)?;
    write_atomic(&path, &bytes)?;
    let files = list(dir);
    if files.len() > KEEP {
        for old in &files[..files.len() - KEEP] {
            let _ = std::fs::remove_file(old);
        }
    }
    Ok(path)
}

/// Loads the newest checkpoint in `dir`, if any.
pub(crate) fn load_latest(dir: &Path) -> Result<Option<Checkpoint>> {
    let Some(path) = list(dir).pop() else {
        return Ok(None);
    };
    let bytes = std::fs::read(&path).map_err(|e| Error::io("cannot read", &path, e))?;
    let d = Decoded::parse(&path, &bytes)?;
    let bad = |message: String| Error::Checkpoint {
        path: path.clone(),
        message,
    };
    let state: CheckpointState = serde_json::from_str(
        d.metadata("state")
            .ok_or_else(|| bad("no training state in the header".into()))?,
    )
    .map_err(|e| bad(format!("unreadable training state: {e}")))?;
    let best = if d.has("best_user_factors") {
        Some((
            d.matrix("best_user_factors")?,
            d.matrix("best_item_factors")?,
        ))
    } else {
        None
    };
    Ok(Some(Checkpoint {
        users: d.matrix("user_factors")?,
        items: d.matrix("item_factors")?,
        best,
        state,
        path,
    }))
}
