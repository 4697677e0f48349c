//! recops-automation: the jobs of the spec's `automation/` package, one module per job.
//!
//! Every job follows the same shape: take its [`PipelineLock`](recops_tracking::PipelineLock),
//! record a run in the [`PipelineTracker`](recops_tracking::PipelineTracker), do the work
//! through the component crates, alert on completion or failure, and return a
//! serialisable result that the job's binary prints as JSON.
//!
//! - [`data_refresh`]: staging files -> processed interactions and training matrix
//!   (spec Component 7).
//! - [`model_training`]: train ALS and BPR, register the ones that beat the popularity
//!   baseline, alert on degradation (spec Component 2).
//! - [`SchedulerAlerts`] delivers the scheduler's `job_overdue` alerts through
//!   recops-alerting (the scheduler itself depends on tracking only).
//!
//! More modules arrive with their issues: `model_deployment`, `drift_detection`,
//! `health_check`, `bert_embeddings`.
//!
//! ```
//! use recops_automation::data_refresh::{JobStatus, refresh_data};
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
pub mod data_refresh;
mod error;
pub mod model_training;
mod scheduler_alerts;

pub use error::{Error, Result};
pub use scheduler_alerts::SchedulerAlerts;
