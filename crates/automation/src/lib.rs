//! recops-automation: the jobs of the spec's `automation/` package, one module per job.
//!
//! Every job runs through the one runner, [`job::Job`]: take its
//! [`PipelineLock`](recops_tracking::PipelineLock), record a run in the
//! [`PipelineTracker`](recops_tracking::PipelineTracker) with the injected clock, do the
//! work through the component crates, alert on completion or failure through
//! [`job::JobAlerts`] (which falls back to the alert log and never drops an alert), and
//! return a typed, serialisable result (its status a [`job::JobStatus`]) that the job's
//! binary prints as JSON.
//!
//! - [`data_refresh`]: staging files -> processed interactions and training matrix
//!   (spec Component 7).
//! - [`drift_detection`]: rating, popularity and interaction drift of the last week,
//!   reports, the `data_drift` alert, optional retraining (spec Component 4).
//! - [`health_check`]: service, data, model, pipelines, embeddings and service metrics
//!   in one report, with an alert while unhealthy (spec Component 3).
//! - [`model_training`]: train ALS and BPR, register the ones that beat the popularity
//!   baseline, alert on degradation (spec Component 2).
//! - [`model_deployment`]: deploy the registry's best model to the recommender with hot
//!   reload, verification and rollback (spec Component 6).
//! - [`SchedulerAlerts`] delivers the scheduler's `job_overdue` alerts through
//!   recops-alerting (the scheduler itself depends on tracking only).
//!
//! - [`bert_embeddings`]: product text embeddings, incremental, with a freshness check
//!   (spec Component 8).
//! - [`job`]: the runner, the job statuses, the skip message and the alert path.
//! - [`job_cli`]: the start (home, logging) and end (exit code, JSON error) shared by
//!   the job binaries.
//!
//! ```
//! use recops_automation::data_refresh::refresh_data;
//! use recops_automation::job::JobStatus;
//! use recops_core::Home;
//!
//! let dir = tempfile::tempdir()?;
//! let home = Home::new(dir.path());
//! // An empty staging folder: the run succeeds with nothing to do.
//! let result = refresh_data(&home, false, None)?;
//! assert_eq!(result.status, JobStatus::Success);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod bert_embeddings;
pub mod cancel;
pub mod data_refresh;
pub mod drift_detection;
mod error;
pub mod health_check;
mod init;
pub mod job;
pub mod job_cli;
pub mod maintenance;
pub mod model_deployment;
pub mod model_training;
pub mod ops;
mod scheduler_alerts;
pub mod service_alerts;

pub use error::{Error, Result};
pub use init::{default_configs, write_default_configs};
pub use scheduler_alerts::SchedulerAlerts;
