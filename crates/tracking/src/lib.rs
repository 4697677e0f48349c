//! recops-tracking: the records every job, the dashboard and the health checks read.
//!
//! - [`PipelineTracker`] over `logs/pipeline_metrics.db`: the spec's `pipeline_runs`
//!   table and its nine methods (`start_run`, `complete_run`, `fail_run`, `cancel_run`,
//!   `get_run`, `get_recent_runs`, `get_stats`, `is_pipeline_running`,
//!   `cleanup_stale_runs`).
//! - [`PipelineLock`]: one run of a pipeline at a time, across processes; an OS file
//!   lock, so a killed process never leaves it stuck; stale after 24 h.
//! - [`TrainingTracker`] over `logs/training_metrics.db`: `training_runs` and
//!   `iteration_metrics` as the spec.
//! - [`ServiceMetricsStore`] over `logs/service_metrics.db`: per-minute request rollups
//!   of the recommender and [`WindowMetrics`] for the alert rules.
//!
//! All databases are SQLite in WAL mode with a busy timeout, so the scheduler's job
//! processes write at once without "database is locked"; each keeps a `user_version`
//! and migrates older files on open; a file that is not SQLite is refused, untouched.
//!
//! ```
//! use recops_core::Home;
//! use recops_tracking::{PipelineTracker, RunStatus};
//! use serde_json::json;
//!
//! let dir = tempfile::tempdir()?;
//! let tracker = PipelineTracker::open(&Home::new(dir.path()))?;
//! let run_id = tracker.start_run("data_refresh", json!({"force": true}))?;
//! tracker.complete_run(&run_id, json!({"records_processed": 1000}))?;
//! assert_eq!(tracker.get_run(&run_id)?.unwrap().status, RunStatus::Success);
//! let stats = tracker.get_stats(7)?;
//! assert_eq!(stats.stats_by_pipeline["data_refresh"].success_rate, Some(1.0));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod db;
mod error;
mod histogram;
mod lock;
mod pipeline;
mod service;
mod training;

pub use error::{Error, Result};
pub use histogram::LatencyHistogram;
pub use lock::{LockHolder, LockOptions, PipelineLock};
pub use pipeline::{
    Metadata, PIPELINE_SCHEMA, PipelineRun, PipelineStat, PipelineStats, PipelineTracker, RunStatus,
};
pub use service::{
    MinuteRollup, SERVICE_SCHEMA, ServiceMetricsStore, WindowMetrics, truncate_minute,
};
pub use training::{
    CHAMPION_SCHEMA, ChampionDecision, ChampionRecord, IterationMetric, IterationRecord,
    NewTrainingRun, RegistryStatus, TRAINING_SCHEMA, TrainingOutcome, TrainingRun, TrainingStatus,
    TrainingTracker,
};
