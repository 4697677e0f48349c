//! recops-automation: the jobs of the spec's `automation/` package, one module per job.
//!
//! Every job follows the same shape: take its [`PipelineLock`](recops_tracking::PipelineLock),
//! record a run in the [`PipelineTracker`](recops_tracking::PipelineTracker), do the work
//! through the component crates, alert on completion or failure, and return a
//! serialisable result that the job's binary prints as JSON.
//!
//! Modules arrive with their issues: `data_refresh`, `model_training`,
//! `model_deployment`, `drift_detection`, `health_check`, `bert_embeddings`.

pub mod bert_embeddings;
mod error;

pub use error::{Error, Result};
