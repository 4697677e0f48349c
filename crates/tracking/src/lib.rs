//! recops-tracking: the records every job, the dashboard and the health checks read.
//!
//! - [`PipelineTracker`] over `logs/pipeline_metrics.db`: the spec's `pipeline_runs`
//!   table and its nine methods (`start_run`, `complete_run`, `fail_run`, `cancel_run`,
//!   `get_run`, `get_recent_runs`, `get_stats`, `is_pipeline_running`,
//!   `cleanup_stale_runs`).
//! - [`PipelineLock`]: one run of a pipeline at a time, across processes; an OS file
//!   lock, so a killed process never leaves it stuck; stale after 24 h. In PostgreSQL
//!   mode a session advisory lock on a connection of its own ([`PG_LOCK_NAMESPACE`],
//!   [`pg_lock_key`]), so jobs on different hosts exclude each other.
//! - [`TrainingTracker`] over `logs/training_metrics.db`: `training_runs` and
//!   `iteration_metrics` as the spec.
//! - [`ServiceMetricsStore`] over `logs/service_metrics.db`: per-minute request rollups
//!   of the recommender and [`WindowMetrics`] for the alert rules.
//!
//! All databases are SQLite in WAL mode with a busy timeout, so the scheduler's job
//! processes write at once without "database is locked"; each keeps a `user_version`
//! and migrates older files on open; a file that is not SQLite is refused, untouched.
//!
//! **Backends.** Each store is a trait with two implementations: [`PipelineStore`]
//! ([`SqlitePipelineStore`], [`PgPipelineStore`]), [`TrainingStore`]
//! ([`SqliteTrainingStore`], [`PgTrainingStore`]) and [`RollupStore`]
//! ([`SqliteRollupStore`], [`PgRollupStore`]). `open(home)` picks the one
//! `storage.url` / `RECOPS_STORAGE_URL` names ([`Storage`]); PostgreSQL tables keep the
//! spec's names and columns, migrate by version (`recops_schema_migrations`), and
//! writes retry on serialization failures ([`PgDatabase`]: `postgres` + `r2d2` pool,
//! password from `PGPASSWORD`; public, so stores of other crates such as recops-alerting's
//! alert state use the same pool, migrations and retries). [`migrate_home`] copies a
//! home's history between backends, verified by counts and checksums (`recops storage
//! migrate`), each table through the generic [`copy_table`], which other crates' stores
//! use for their own step. Readers
//! (the dashboard) open stores without writing: `open_read_only` for the SQLite files,
//! `open_existing` for PostgreSQL (never migrates). See docs/storage.md.
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
mod lock_pg;
mod migrate;
mod pg;
mod pipeline;
mod pipeline_pg;
mod service;
mod service_pg;
mod storage;
mod training;
mod training_pg;

pub use db::open_read_only;
pub use error::{Error, Result};
pub use histogram::LatencyHistogram;
pub use lock::{LockHolder, LockOptions, PipelineLock};
pub use lock_pg::{PG_LOCK_MIGRATIONS, PG_LOCK_NAMESPACE, pg_lock_key};
pub use migrate::{
    BATCH, MigrationReport, Progress, Stores, TableCopy, copy_stores, copy_table, migrate_home,
};
pub use pg::{CONNECT_TIMEOUT as PG_CONNECT_TIMEOUT, PASSWORD_ENV, PgDatabase};
pub use pipeline::{
    Metadata, PIPELINE_SCHEMA, PipelineFreshness, PipelineRun, PipelineStat, PipelineStats,
    PipelineStore, PipelineTracker, RunPoint, RunQuery, RunStatus, SqlitePipelineStore,
    StatusCount,
};
pub use pipeline_pg::{PG_PIPELINE_MIGRATIONS, PgPipelineStore};
pub use service::{
    InstanceReport, MinuteRollup, MinuteSummary, RollupStore, SERVICE_MIGRATIONS, SERVICE_SCHEMA,
    SERVICE_SCHEMA_V2, ServiceMetricsStore, SqliteRollupStore, WindowMetrics, truncate_minute,
};
pub use service_pg::{PG_SERVICE_MIGRATIONS, PgRollupStore};
pub use storage::Storage;
pub use training::{
    CHAMPION_SCHEMA, ChampionDecision, ChampionRecord, EvaluationPoint, IterationMetric,
    IterationRecord, NewTrainingRun, RegistryStatus, SqliteTrainingStore, TRAINING_SCHEMA,
    TrainingOutcome, TrainingQuery, TrainingRun, TrainingStatus, TrainingStore, TrainingTracker,
};
pub use training_pg::{PG_TRAINING_MIGRATIONS, PgTrainingStore};
