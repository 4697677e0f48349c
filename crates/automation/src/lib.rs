//! recops-automation: the jobs of the spec's `automation/` package, one module per job.
//!
//! Every job follows the same shape: take its [`PipelineLock`](recops_tracking::PipelineLock),
//! record a run in the [`PipelineTracker`](recops_tracking::PipelineTracker), do the work
//! through the component crates, alert on completion or failure, and return a
//! serialisable result that the job's binary prints as JSON.
//!
//! Modules arrive with their issues: `data_refresh`, `model_training`,
//! `model_deployment`, `drift_detection`, `health_check`, `bert_embeddings`.
//!
//! [`SchedulerAlerts`] delivers the scheduler's `job_overdue` alerts through
//! recops-alerting (the scheduler itself depends on tracking only).

pub mod bert_embeddings;
mod error;
mod scheduler_alerts;

pub use error::{Error, Result};
pub use scheduler_alerts::SchedulerAlerts;
