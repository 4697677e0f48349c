//! The record of one training iteration: logged, tracked, kept in checkpoints. Its
//! own module so that the trainer and the checkpoints both use it without depending
//! on each other (the trainer uses the checkpoints, never the other way round).

use serde::{Deserialize, Serialize};

/// One iteration, as logged and tracked.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct IterationReport {
    /// 1-based iteration.
    pub iteration: usize,
    /// Configured iterations.
    pub iterations: usize,
    /// Training loss (ALS: normalised objective; BPR: mean `-ln σ(x_uij)`).
    pub loss: f64,
    /// Validation recall@10, when validated this iteration.
    pub validation_recall: Option<f64>,
    /// Validation ndcg@10, when validated this iteration.
    pub validation_ndcg: Option<f64>,
    /// Seconds of the iteration (training and validation).
    pub wall_time_seconds: f64,
}
