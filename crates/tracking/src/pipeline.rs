//! `PipelineTracker`: every pipeline execution in `logs/pipeline_metrics.db`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Mutex, MutexGuard, PoisonError};

use chrono::{DateTime, Duration, Utc};
use recops_core::{Home, SharedClock, SystemClock, format_timestamp, parse_timestamp};
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::db;
use crate::error::{Error, Result};

/// Free-form JSON metadata of a run.
pub type Metadata = Map<String, Value>;

/// The spec's schema of `pipeline_runs` and its indexes (schema version 1).
pub const PIPELINE_SCHEMA: &str = "\
CREATE TABLE IF NOT EXISTS pipeline_runs (
    run_id TEXT PRIMARY KEY,
    pipeline_name TEXT NOT NULL,
    status TEXT NOT NULL,  -- 'running', 'success', 'failed', 'cancelled'
    started_at TEXT NOT NULL,
    finished_at TEXT,
    duration_seconds REAL,
    error_message TEXT,
    metadata TEXT  -- JSON
);

CREATE INDEX IF NOT EXISTS idx_pipeline_name_status ON pipeline_runs(pipeline_name, status);
CREATE INDEX IF NOT EXISTS idx_started_at ON pipeline_runs(started_at);
";

/// Status of a pipeline run, stored as the spec's strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    /// `running`
    Running,
    /// `success`
    Success,
    /// `failed`
    Failed,
    /// `cancelled`
    Cancelled,
}

impl RunStatus {
    /// The stored string.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Success => "success",
            RunStatus::Failed => "failed",
            RunStatus::Cancelled => "cancelled",
        }
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RunStatus {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "running" => Ok(RunStatus::Running),
            "success" => Ok(RunStatus::Success),
            "failed" => Ok(RunStatus::Failed),
            "cancelled" => Ok(RunStatus::Cancelled),
            other => Err(Error::InvalidInput {
                what: "run status",
                message: format!("{other:?}; expected one of running, success, failed, cancelled"),
            }),
        }
    }
}

/// One pipeline execution, as the spec's `PipelineRun` dataclass.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PipelineRun {
    /// `{pipeline_name}_{12 hex digits}`.
    pub run_id: String,
    /// The pipeline (`data_refresh`, `model_training`, `scheduler.health_check`, ...).
    pub pipeline_name: String,
    /// Current status.
    pub status: RunStatus,
    /// RFC 3339 start time.
    pub started_at: String,
    /// RFC 3339 end time, once finished.
    pub finished_at: Option<String>,
    /// Seconds from start to finish, once finished.
    pub duration_seconds: Option<f64>,
    /// Why the run failed (or was marked stale).
    pub error_message: Option<String>,
    /// Free-form metadata; `complete_run` merges its metadata into it.
    pub metadata: Metadata,
}

/// Counts and rates of one pipeline over a period, in the spec's shape.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PipelineStat {
    /// Runs that succeeded.
    pub success: u64,
    /// Runs that failed.
    pub failed: u64,
    /// Runs still running.
    pub running: u64,
    /// Runs cancelled (not counted in `success_rate`).
    pub cancelled: u64,
    /// Mean duration of the successful runs; `null` when there were none.
    pub avg_duration_seconds: Option<f64>,
    /// `success / (success + failed)`; `null` when no run has finished yet.
    pub success_rate: Option<f64>,
}

/// `get_stats(days)` result: `{period_days, stats_by_pipeline: {name: PipelineStat}}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PipelineStats {
    /// The period covered, in days back from now.
    pub period_days: u32,
    /// Per pipeline, by name.
    pub stats_by_pipeline: BTreeMap<String, PipelineStat>,
}

/// A table for people (`recops stats`): one row per pipeline with its counts, mean
/// duration and success rate, or a line saying there were no runs.
impl fmt::Display for PipelineStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.stats_by_pipeline.is_empty() {
            return writeln!(f, "No pipeline runs in this period.");
        }
        let width = self
            .stats_by_pipeline
            .keys()
            .map(String::len)
            .max()
            .unwrap_or(8)
            .max(8);
        writeln!(
            f,
            "{:<width$}  {:>7}  {:>6}  {:>7}  {:>9}  {:>12}  {:>12}",
            "PIPELINE", "SUCCESS", "FAILED", "RUNNING", "CANCELLED", "AVG DURATION", "SUCCESS RATE"
        )?;
        for (name, s) in &self.stats_by_pipeline {
            let avg = s
                .avg_duration_seconds
                .map(|d| format!("{d:.1} s"))
                .unwrap_or_else(|| "-".into());
            let rate = s
                .success_rate
                .map(|r| format!("{:.1}%", r * 100.0))
                .unwrap_or_else(|| "-".into());
            writeln!(
                f,
                "{name:<width$}  {:>7}  {:>6}  {:>7}  {:>9}  {avg:>12}  {rate:>12}",
                s.success, s.failed, s.running, s.cancelled
            )?;
        }
        Ok(())
    }
}

/// `(pipeline_name, status, count, mean duration_seconds)` of one group of runs.
pub type StatusCount = (String, String, i64, Option<f64>);

/// Which runs [`PipelineStore::list`] returns: every set field narrows the list;
/// runs come newest first (`started_at`, then `run_id`, descending).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunQuery {
    /// One pipeline.
    pub pipeline_name: Option<String>,
    /// One status.
    pub status: Option<RunStatus>,
    /// Started at or after this RFC 3339 time.
    pub started_from: Option<String>,
    /// Started before this RFC 3339 time.
    pub started_before: Option<String>,
    /// Keyset cursor: only runs ordered after `(started_at, run_id)` (older ones).
    pub after: Option<(String, String)>,
    /// At most this many runs.
    pub limit: usize,
}

/// The few columns of one run that daily trends need.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunPoint {
    /// The pipeline.
    pub pipeline_name: String,
    /// RFC 3339 start.
    pub started_at: String,
    /// Status.
    pub status: RunStatus,
    /// Seconds, once finished.
    pub duration_seconds: Option<f64>,
}

/// When one pipeline last succeeded and last ran: what a dead-man alert needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PipelineFreshness {
    /// The pipeline.
    pub pipeline_name: String,
    /// `finished_at` of its newest successful run (newest by start).
    pub last_success: Option<String>,
    /// `started_at` and status of its newest run.
    pub last_run: Option<(String, RunStatus)>,
}

/// Where pipeline runs are kept: one implementation per backend, both with the spec's
/// `pipeline_runs` table ([`SqlitePipelineStore`] in `logs/pipeline_metrics.db`,
/// [`PgPipelineStore`](crate::PgPipelineStore) in PostgreSQL). [`PipelineTracker`]
/// adds the rules (names, ids, clock) on top; callers use the tracker.
pub trait PipelineStore: Send + Sync + fmt::Debug {
    /// The file or URL, for messages.
    fn location(&self) -> String;
    /// Inserts a new run.
    fn insert(&self, run: &PipelineRun) -> Result<()>;
    /// In one transaction: checks the run exists and is running, then sets its final
    /// `status`, `finished_at`, duration, `error` and merges `extra` into its metadata.
    fn finish(
        &self,
        run_id: &str,
        status: RunStatus,
        now: DateTime<Utc>,
        error: Option<&str>,
        extra: Metadata,
    ) -> Result<()>;
    /// The run with this id.
    fn get(&self, run_id: &str) -> Result<Option<PipelineRun>>;
    /// Newest first, optionally of one pipeline and/or status.
    fn recent(
        &self,
        pipeline_name: Option<&str>,
        limit: usize,
        status: Option<RunStatus>,
    ) -> Result<Vec<PipelineRun>>;
    /// `(pipeline_name, status, count, mean duration)` of the runs started at or
    /// after `cutoff` (an RFC 3339 timestamp).
    fn counts_since(&self, cutoff: &str) -> Result<Vec<StatusCount>>;
    /// Whether a run of this pipeline is running.
    fn is_running(&self, pipeline_name: &str) -> Result<bool>;
    /// Marks runs running since before `cutoff` as failed with `message`; returns
    /// their `(run_id, started_at)`.
    fn fail_stale(
        &self,
        cutoff: DateTime<Utc>,
        now: DateTime<Utc>,
        message: &str,
    ) -> Result<Vec<(String, String)>>;
    /// Deletes finished runs started before `cutoff`.
    fn prune_finished_before(&self, cutoff: DateTime<Utc>) -> Result<usize>;
    /// Up to `limit` runs with `run_id > after`, by `run_id` (for copying a store).
    fn export(&self, after: Option<&str>, limit: usize) -> Result<Vec<PipelineRun>>;
    /// Inserts the runs whose id is not there yet, as they are; returns how many.
    fn import(&self, runs: &[PipelineRun]) -> Result<usize>;
    /// Per pipeline, by name: its newest success and newest run (index lookups per
    /// pipeline, never a scan of every run).
    fn freshness(&self) -> Result<Vec<PipelineFreshness>>;
    /// The pipeline names, sorted (a loose index scan: one lookup per name).
    fn names(&self) -> Result<Vec<String>>;
    /// The runs `query` selects, newest first.
    fn list(&self, query: &RunQuery) -> Result<Vec<PipelineRun>>;
    /// Name, start, status and duration of the runs started at or after `cutoff`
    /// (RFC 3339), by start (at most `limit`): the rows daily trends bucket.
    fn points_since(&self, cutoff: &str, limit: usize) -> Result<Vec<RunPoint>>;
}

/// Tracks pipeline runs in the configured store: SQLite (`logs/pipeline_metrics.db`,
/// WAL mode) by default, PostgreSQL when `storage.url` says so.
///
/// Safe to share between threads, and several processes may write the same database at
/// once: writes wait for each other (busy timeout, row locks) instead of failing.
#[derive(Debug)]
pub struct PipelineTracker {
    store: Box<dyn PipelineStore>,
    clock: SharedClock,
}

impl PipelineTracker {
    /// Opens the tracker of `home` with the system clock, in the store `storage.url`
    /// names (`logs/pipeline_metrics.db` by default).
    pub fn open(home: &Home) -> Result<Self> {
        Self::open_home(home, SystemClock::shared())
    }

    /// [`open`](Self::open) with a clock.
    pub fn open_home(home: &Home, clock: SharedClock) -> Result<Self> {
        let store: Box<dyn PipelineStore> = match crate::Storage::of(home)? {
            crate::Storage::Embedded => Box::new(SqlitePipelineStore::open(&home.pipeline_db())?),
            crate::Storage::Postgres(db) => Box::new(crate::PgPipelineStore::open(&db)?),
        };
        Ok(Self::with_store(store, clock))
    }

    /// Opens (creating or migrating) the SQLite database at `path`.
    pub fn open_path(path: &Path, clock: SharedClock) -> Result<Self> {
        Ok(Self::with_store(
            Box::new(SqlitePipelineStore::open(path)?),
            clock,
        ))
    }

    /// A tracker over any store.
    pub fn with_store(store: Box<dyn PipelineStore>, clock: SharedClock) -> Self {
        PipelineTracker { store, clock }
    }

    /// The database file or URL, for messages.
    pub fn location(&self) -> String {
        self.store.location()
    }

    /// The store underneath.
    pub fn store(&self) -> &dyn PipelineStore {
        self.store.as_ref()
    }

    /// Starts tracking a run of `pipeline_name` and returns its `run_id`.
    /// `metadata` must be a JSON object (or null).
    pub fn start_run(&self, pipeline_name: &str, metadata: Value) -> Result<String> {
        let name = pipeline_name.trim();
        if name.is_empty() || name.len() > 200 {
            return Err(Error::InvalidInput {
                what: "pipeline name",
                message: format!("{pipeline_name:?}; expected 1 to 200 characters"),
            });
        }
        let metadata = as_object(metadata)?;
        let run_id = format!(
            "{name}_{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        );
        self.store.insert(&PipelineRun {
            run_id: run_id.clone(),
            pipeline_name: name.to_owned(),
            status: RunStatus::Running,
            started_at: format_timestamp(self.clock.now()),
            finished_at: None,
            duration_seconds: None,
            error_message: None,
            metadata,
        })?;
        Ok(run_id)
    }

    /// Marks a running run as `success`, merging `metadata` (an object or null) into
    /// the run's metadata.
    pub fn complete_run(&self, run_id: &str, metadata: Value) -> Result<()> {
        let extra = as_object(metadata)?;
        self.finish(run_id, RunStatus::Success, None, extra)
    }

    /// Marks a running run as `failed` with `error_message`.
    pub fn fail_run(&self, run_id: &str, error_message: &str) -> Result<()> {
        self.finish(
            run_id,
            RunStatus::Failed,
            Some(error_message),
            Metadata::new(),
        )
    }

    /// [`fail_run`](Self::fail_run) that also merges `metadata` (counts reached before
    /// the failure, the reason code, ...).
    pub fn fail_run_with(&self, run_id: &str, error_message: &str, metadata: Value) -> Result<()> {
        let extra = as_object(metadata)?;
        self.finish(run_id, RunStatus::Failed, Some(error_message), extra)
    }

    /// Marks a running run as `cancelled`.
    pub fn cancel_run(&self, run_id: &str) -> Result<()> {
        self.finish(run_id, RunStatus::Cancelled, None, Metadata::new())
    }

    fn finish(
        &self,
        run_id: &str,
        status: RunStatus,
        error: Option<&str>,
        extra: Metadata,
    ) -> Result<()> {
        self.store
            .finish(run_id, status, self.clock.now(), error, extra)
    }

    /// Deletes finished runs (not `running`) started before `cutoff`; returns how many.
    pub fn prune_finished_before(&self, cutoff: DateTime<Utc>) -> Result<usize> {
        self.store.prune_finished_before(cutoff)
    }

    /// The run with this id, if any.
    pub fn get_run(&self, run_id: &str) -> Result<Option<PipelineRun>> {
        self.store.get(run_id)
    }

    /// The newest runs first, optionally of one pipeline and/or one status.
    pub fn get_recent_runs(
        &self,
        pipeline_name: Option<&str>,
        limit: usize,
        status: Option<RunStatus>,
    ) -> Result<Vec<PipelineRun>> {
        self.store.recent(pipeline_name, limit, status)
    }

    /// Counts per pipeline and status over the last `days` days (by start time),
    /// with success rates and mean successful duration, in the spec's shape.
    pub fn get_stats(&self, days: u32) -> Result<PipelineStats> {
        let cutoff = format_timestamp(self.clock.now() - Duration::days(i64::from(days)));
        let rows = self.store.counts_since(&cutoff)?;
        let mut by: BTreeMap<String, PipelineStat> = BTreeMap::new();
        for (name, status, count, avg) in rows {
            let s = by.entry(name).or_default();
            let count = u64::try_from(count).unwrap_or(0);
            match status.parse::<RunStatus>() {
                Ok(RunStatus::Success) => {
                    s.success += count;
                    s.avg_duration_seconds = avg;
                }
                Ok(RunStatus::Failed) => s.failed += count,
                Ok(RunStatus::Running) => s.running += count,
                Ok(RunStatus::Cancelled) => s.cancelled += count,
                Err(_) => {}
            }
        }
        for s in by.values_mut() {
            let finished = s.success + s.failed;
            s.success_rate = (finished > 0).then(|| s.success as f64 / finished as f64);
        }
        Ok(PipelineStats {
            period_days: days,
            stats_by_pipeline: by,
        })
    }

    /// Whether a run of `pipeline_name` is currently marked running.
    pub fn is_pipeline_running(&self, pipeline_name: &str) -> Result<bool> {
        self.store.is_running(pipeline_name)
    }

    /// Marks runs that have been `running` for more than `max_running_hours` as
    /// `failed` (their process most likely died) and returns how many there were.
    pub fn cleanup_stale_runs(&self, max_running_hours: f64) -> Result<usize> {
        let now = self.clock.now();
        let cutoff = now - Duration::milliseconds((max_running_hours * 3_600_000.0) as i64);
        let message = format!(
            "stale run: still running after more than {max_running_hours} hours; marked failed by cleanup"
        );
        let stale = self.store.fail_stale(cutoff, now, &message)?;
        for (run_id, started_at) in &stale {
            tracing::warn!(run_id = %run_id, started_at = %started_at, "stale pipeline run marked failed");
        }
        Ok(stale.len())
    }
}

/// The checks and the new metadata of finishing a run, shared by the backends:
/// `current` is the stored status, `metadata` the stored metadata text.
pub(crate) fn finish_values(
    run_id: &str,
    current: String,
    started_at: &str,
    metadata: Option<&str>,
    now: DateTime<Utc>,
    extra: Metadata,
) -> Result<(Option<f64>, String)> {
    if current != RunStatus::Running.as_str() {
        return Err(Error::RunAlreadyFinished {
            run_id: run_id.to_owned(),
            status: current,
        });
    }
    let mut meta = parse_metadata(metadata);
    meta.extend(extra);
    Ok((
        duration_since(started_at, now),
        Value::Object(meta).to_string(),
    ))
}

/// [`PipelineStore`] in SQLite: `logs/pipeline_metrics.db`, WAL mode.
#[derive(Debug)]
pub struct SqlitePipelineStore {
    conn: Mutex<Connection>,
    path: PathBuf,
}

impl SqlitePipelineStore {
    /// Opens (creating or migrating) the database at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        let conn = db::open(path, &[PIPELINE_SCHEMA])?;
        Ok(SqlitePipelineStore {
            conn: Mutex::new(conn),
            path: path.to_path_buf(),
        })
    }

    /// Opens the database at `path` read-only (for readers such as the dashboard: it
    /// never creates, migrates or locks the file, and waits at most `busy` for a
    /// writer). `None` when the file or its table does not exist yet.
    pub fn open_read_only(path: &Path, busy: std::time::Duration) -> Result<Option<Self>> {
        let conn = db::open_read_only(path, busy, "pipeline_runs")?;
        Ok(conn.map(|conn| SqlitePipelineStore {
            conn: Mutex::new(conn),
            path: path.to_path_buf(),
        }))
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The pipeline names, by a loose scan of the (pipeline_name, status) index: one
/// index search per name instead of a scan of every run (SQL valid in both backends).
pub(crate) const PIPELINE_NAMES: &str = "WITH RECURSIVE n(name) AS (SELECT min(pipeline_name) FROM pipeline_runs UNION ALL \
     SELECT (SELECT min(pipeline_name) FROM pipeline_runs WHERE pipeline_name > n.name) \
     FROM n WHERE name IS NOT NULL) SELECT name FROM n WHERE name IS NOT NULL";

/// Builds a [`PipelineFreshness`] from its stored columns.
pub(crate) fn freshness_of(
    pipeline_name: String,
    last_success: Option<Option<String>>,
    last_run: Option<(String, String)>,
) -> Result<PipelineFreshness> {
    Ok(PipelineFreshness {
        pipeline_name,
        last_success: last_success.flatten(),
        last_run: match last_run {
            Some((at, status)) => Some((at, status.parse()?)),
            None => None,
        },
    })
}

/// The filter of [`PipelineStore::list`] over numbered parameters 1-8 (pipeline,
/// status, from, before, after-started_at, after-run_id, limit, upper bound). `?3` and
/// `?8` bound `started_at` as plain range constraints, so the index walk starts at the
/// cursor (or the end of the range) and stops at the start of the range; the exact
/// conditions follow. Valid in SQLite and, with `$n`, PostgreSQL.
const LIST_FILTER: &str = "started_at >= coalesce(?3, '') \
     AND started_at <= coalesce(?8, '~') \
     AND (?1 IS NULL OR pipeline_name = ?1) AND (?2 IS NULL OR status = ?2) \
     AND (?4 IS NULL OR started_at < ?4) \
     AND (?5 IS NULL OR (started_at, run_id) < (?5, ?6)) \
     ORDER BY started_at DESC, run_id DESC LIMIT ?7";

/// The inclusive upper bound of `started_at` a [`RunQuery`] implies: the lower of its
/// `started_before` and its cursor's start (`None`: unbounded).
pub(crate) fn list_upper_bound(q: &RunQuery) -> Option<String> {
    match (
        q.started_before.as_deref(),
        q.after.as_ref().map(|(at, _)| at.as_str()),
    ) {
        (Some(a), Some(b)) => Some(a.min(b).to_owned()),
        (a, b) => a.or(b).map(str::to_owned),
    }
}

impl PipelineStore for SqlitePipelineStore {
    fn names(&self) -> Result<Vec<String>> {
        self.conn()
            .prepare_cached(PIPELINE_NAMES)
            .and_then(|mut st| st.query_map([], |r| r.get(0))?.collect())
            .map_err(db::on(&self.path))
    }

    fn list(&self, q: &RunQuery) -> Result<Vec<PipelineRun>> {
        // Without statistics (the stores never run ANALYZE) SQLite often prefers the
        // (pipeline_name, status) index and sorts every run of a pipeline: walk the
        // started_at index backwards and stop after `limit`, except for the running
        // runs of one pipeline (few: a lookup of that index).
        let index = if q.pipeline_name.is_some() && q.status == Some(RunStatus::Running) {
            "idx_pipeline_name_status"
        } else {
            "idx_started_at"
        };
        let sql = match index {
            "idx_pipeline_name_status" => format!(
                "{SELECT_RUN} INDEXED BY {index} WHERE pipeline_name = ?1 AND status = ?2 \
                 AND {LIST_FILTER}"
            ),
            _ => format!("{SELECT_RUN} INDEXED BY {index} WHERE {LIST_FILTER}"),
        };
        let conn = self.conn();
        let limit = i64::try_from(q.limit).unwrap_or(i64::MAX);
        let (after_at, after_id) = match &q.after {
            Some((at, id)) => (Some(at.as_str()), Some(id.as_str())),
            None => (None, None),
        };
        let mut st = conn.prepare_cached(&sql).map_err(db::on(&self.path))?;
        st.query_map(
            params![
                q.pipeline_name,
                q.status.map(RunStatus::as_str),
                q.started_from,
                q.started_before,
                after_at,
                after_id,
                limit,
                list_upper_bound(q)
            ],
            read_run,
        )
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
        .map_err(db::on(&self.path))
    }

    fn points_since(&self, cutoff: &str, limit: usize) -> Result<Vec<RunPoint>> {
        let conn = self.conn();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut st = conn
            .prepare_cached(
                "SELECT pipeline_name, started_at, status, duration_seconds \
                 FROM pipeline_runs INDEXED BY idx_started_at WHERE started_at >= ?1 \
                 ORDER BY started_at LIMIT ?2",
            )
            .map_err(db::on(&self.path))?;
        let rows = st
            .query_map(params![cutoff, limit], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Option<f64>>(3)?,
                ))
            })
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(db::on(&self.path))?;
        rows.into_iter()
            .map(|(pipeline_name, started_at, status, duration_seconds)| {
                Ok(RunPoint {
                    pipeline_name,
                    started_at,
                    status: status.parse()?,
                    duration_seconds,
                })
            })
            .collect()
    }

    fn freshness(&self) -> Result<Vec<PipelineFreshness>> {
        let conn = self.conn();
        let on = db::on(&self.path);
        let names: Vec<String> = conn
            .prepare_cached(PIPELINE_NAMES)
            .and_then(|mut st| st.query_map([], |r| r.get(0))?.collect())
            .map_err(&on)?;
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            // Without statistics (the stores never run ANALYZE) SQLite may pick the
            // started_at index and walk every run: name the (pipeline_name, status) one.
            let last_success: Option<Option<String>> = conn
                .prepare_cached(
                    "SELECT finished_at FROM pipeline_runs INDEXED BY idx_pipeline_name_status \
                     WHERE pipeline_name = ?1 AND status = 'success' \
                     ORDER BY started_at DESC LIMIT 1",
                )
                .and_then(|mut st| st.query_row([&name], |r| r.get(0)).optional())
                .map_err(&on)?;
            let last_run: Option<(String, String)> = conn
                .prepare_cached(
                    "SELECT started_at, status FROM pipeline_runs WHERE pipeline_name = ?1 \
                     ORDER BY started_at DESC, rowid DESC LIMIT 1",
                )
                .and_then(|mut st| {
                    st.query_row([&name], |r| Ok((r.get(0)?, r.get(1)?)))
                        .optional()
                })
                .map_err(&on)?;
            out.push(freshness_of(name, last_success, last_run)?);
        }
        Ok(out)
    }

    fn location(&self) -> String {
        self.path.display().to_string()
    }

    fn insert(&self, run: &PipelineRun) -> Result<()> {
        self.conn()
            .prepare_cached(
                "INSERT INTO pipeline_runs (run_id, pipeline_name, status, started_at, finished_at, \
                 duration_seconds, error_message, metadata) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )
            .and_then(|mut st| {
                st.execute(params![
                    run.run_id,
                    run.pipeline_name,
                    run.status.as_str(),
                    run.started_at,
                    run.finished_at,
                    run.duration_seconds,
                    run.error_message,
                    Value::Object(run.metadata.clone()).to_string()
                ])
            })
            .map_err(db::on(&self.path))?;
        Ok(())
    }

    fn finish(
        &self,
        run_id: &str,
        status: RunStatus,
        now: DateTime<Utc>,
        error: Option<&str>,
        extra: Metadata,
    ) -> Result<()> {
        let mut conn = self.conn();
        let on = db::on(&self.path);
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(&on)?;
        let row: Option<(String, String, Option<String>)> = tx
            .prepare_cached(
                "SELECT status, started_at, metadata FROM pipeline_runs WHERE run_id = ?1",
            )
            .and_then(|mut st| {
                st.query_row([run_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                    .optional()
            })
            .map_err(&on)?;
        let Some((current, started_at, metadata)) = row else {
            return Err(Error::RunNotFound {
                run_id: run_id.to_owned(),
            });
        };
        let (duration, meta) = finish_values(
            run_id,
            current,
            &started_at,
            metadata.as_deref(),
            now,
            extra,
        )?;
        tx.prepare_cached(
            "UPDATE pipeline_runs SET status = ?1, finished_at = ?2, duration_seconds = ?3, \
             error_message = ?4, metadata = ?5 WHERE run_id = ?6",
        )
        .and_then(|mut st| {
            st.execute(params![
                status.as_str(),
                format_timestamp(now),
                duration,
                error,
                meta,
                run_id
            ])
        })
        .map_err(&on)?;
        tx.commit().map_err(&on)
    }

    fn get(&self, run_id: &str) -> Result<Option<PipelineRun>> {
        let conn = self.conn();
        conn.prepare_cached(&format!("{SELECT_RUN} WHERE run_id = ?1"))
            .and_then(|mut st| st.query_row([run_id], read_run).optional())
            .map_err(db::on(&self.path))
    }

    fn recent(
        &self,
        pipeline_name: Option<&str>,
        limit: usize,
        status: Option<RunStatus>,
    ) -> Result<Vec<PipelineRun>> {
        let conn = self.conn();
        let sql = format!(
            "{SELECT_RUN} WHERE (?1 IS NULL OR pipeline_name = ?1) AND (?2 IS NULL OR status = ?2) \
             ORDER BY started_at DESC, rowid DESC LIMIT ?3"
        );
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut st = conn.prepare_cached(&sql).map_err(db::on(&self.path))?;
        let rows = st
            .query_map(
                params![pipeline_name, status.map(RunStatus::as_str), limit],
                read_run,
            )
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(db::on(&self.path))?;
        Ok(rows)
    }

    fn counts_since(&self, cutoff: &str) -> Result<Vec<StatusCount>> {
        let conn = self.conn();
        let mut st = conn
            .prepare_cached(
                "SELECT pipeline_name, status, COUNT(*), AVG(duration_seconds) FROM pipeline_runs \
                 INDEXED BY idx_started_at WHERE started_at >= ?1 GROUP BY pipeline_name, status",
            )
            .map_err(db::on(&self.path))?;
        st.query_map([cutoff], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, Option<f64>>(3)?,
            ))
        })
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
        .map_err(db::on(&self.path))
    }

    fn is_running(&self, pipeline_name: &str) -> Result<bool> {
        let conn = self.conn();
        conn.prepare_cached(
            "SELECT EXISTS(SELECT 1 FROM pipeline_runs WHERE pipeline_name = ?1 AND status = 'running')",
        )
        .and_then(|mut st| st.query_row([pipeline_name], |r| r.get(0)))
        .map_err(db::on(&self.path))
    }

    fn fail_stale(
        &self,
        cutoff: DateTime<Utc>,
        now: DateTime<Utc>,
        message: &str,
    ) -> Result<Vec<(String, String)>> {
        let mut conn = self.conn();
        let on = db::on(&self.path);
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(&on)?;
        let stale: Vec<(String, String)> = tx
            .prepare_cached(
                "SELECT run_id, started_at FROM pipeline_runs WHERE status = 'running' AND started_at < ?1",
            )
            .and_then(|mut st| {
                st.query_map([format_timestamp(cutoff)], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(&on)?;
        for (run_id, started_at) in &stale {
            tx.execute(
                "UPDATE pipeline_runs SET status = 'failed', finished_at = ?1, duration_seconds = ?2, \
                 error_message = ?3 WHERE run_id = ?4",
                params![format_timestamp(now), duration_since(started_at, now), message, run_id],
            )
            .map_err(&on)?;
        }
        tx.commit().map_err(&on)?;
        Ok(stale)
    }

    fn prune_finished_before(&self, cutoff: DateTime<Utc>) -> Result<usize> {
        self.conn()
            .execute(
                "DELETE FROM pipeline_runs WHERE status != 'running' AND started_at < ?1",
                [format_timestamp(cutoff)],
            )
            .map_err(db::on(&self.path))
    }

    fn export(&self, after: Option<&str>, limit: usize) -> Result<Vec<PipelineRun>> {
        let conn = self.conn();
        let sql =
            format!("{SELECT_RUN} WHERE (?1 IS NULL OR run_id > ?1) ORDER BY run_id LIMIT ?2");
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut st = conn.prepare_cached(&sql).map_err(db::on(&self.path))?;
        st.query_map(params![after, limit], read_run)
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(db::on(&self.path))
    }

    fn import(&self, runs: &[PipelineRun]) -> Result<usize> {
        let mut conn = self.conn();
        let on = db::on(&self.path);
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(&on)?;
        let mut n = 0;
        {
            let mut st = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO pipeline_runs (run_id, pipeline_name, status, started_at, \
                     finished_at, duration_seconds, error_message, metadata) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )
                .map_err(&on)?;
            for run in runs {
                n += st
                    .execute(params![
                        run.run_id,
                        run.pipeline_name,
                        run.status.as_str(),
                        run.started_at,
                        run.finished_at,
                        run.duration_seconds,
                        run.error_message,
                        Value::Object(run.metadata.clone()).to_string()
                    ])
                    .map_err(&on)?;
            }
        }
        tx.commit().map_err(&on)?;
        Ok(n)
    }
}

const SELECT_RUN: &str = "SELECT run_id, pipeline_name, status, started_at, finished_at, \
                          duration_seconds, error_message, metadata FROM pipeline_runs";

fn read_run(r: &Row<'_>) -> rusqlite::Result<PipelineRun> {
    let status: String = r.get(2)?;
    let status = status.parse::<RunStatus>().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(2, rusqlite::types::Type::Text, Box::new(e))
    })?;
    Ok(PipelineRun {
        run_id: r.get(0)?,
        pipeline_name: r.get(1)?,
        status,
        started_at: r.get(3)?,
        finished_at: r.get(4)?,
        duration_seconds: r.get(5)?,
        error_message: r.get(6)?,
        metadata: parse_metadata(r.get::<_, Option<String>>(7)?.as_deref()),
    })
}

fn as_object(v: Value) -> Result<Metadata> {
    match v {
        Value::Null => Ok(Metadata::new()),
        Value::Object(m) => Ok(m),
        other => Err(Error::InvalidInput {
            what: "metadata",
            message: format!("expected a JSON object, got {other}"),
        }),
    }
}

pub(crate) fn parse_metadata(text: Option<&str>) -> Metadata {
    match text.map(serde_json::from_str::<Value>) {
        Some(Ok(Value::Object(m))) => m,
        Some(Ok(Value::Null)) | None => Metadata::new(),
        Some(Ok(other)) => Metadata::from_iter([("value".to_owned(), other)]),
        Some(Err(_)) => Metadata::from_iter([(
            "unparsed_metadata".to_owned(),
            Value::String(text.unwrap_or_default().to_owned()),
        )]),
    }
}

pub(crate) fn duration_since(started_at: &str, now: DateTime<Utc>) -> Option<f64> {
    parse_timestamp(started_at).map(|s| (now - s).num_microseconds().unwrap_or(0) as f64 / 1e6)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use recops_core::FixedClock;
    use serde_json::json;

    type Fixture = (Box<dyn std::any::Any>, FixedClock, PipelineTracker);
    type Maker = fn() -> Fixture;

    fn start_clock() -> FixedClock {
        FixedClock::new(Utc.with_ymd_and_hms(2025, 1, 15, 10, 0, 0).unwrap())
    }

    fn sqlite() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let clock = start_clock();
        let t = PipelineTracker::open_path(
            &dir.path().join("logs/pipeline_metrics.db"),
            clock.shared(),
        )
        .unwrap();
        (Box::new(dir), clock, t)
    }

    fn postgres() -> Fixture {
        let pg = recops_testkit::PgCluster::shared().unwrap();
        let db = crate::PgDatabase::connect_new(&pg.fresh_database()).unwrap();
        let clock = start_clock();
        let t = PipelineTracker::with_store(
            Box::new(crate::PgPipelineStore::open(&db).unwrap()),
            clock.shared(),
        );
        (Box::new(db), clock, t)
    }

    recops_testkit::on_both_backends!(
        on_sqlite: sqlite, postgres;
        start_complete_records_duration_and_merges_metadata,
        fail_and_cancel_set_status_and_error,
        finishing_a_missing_or_finished_run_is_an_error,
        bad_arguments_are_refused,
        recent_runs_filter_order_and_limit,
        stats_count_rates_and_mean_duration_within_the_period,
        cleanup_marks_only_runs_older_than_the_limit,
        prune_and_copy_between_stores,
        freshness_gives_the_newest_success_and_run_per_pipeline,
        list_filters_pages_by_keyset_and_points_cover_the_window,
    );

    fn list_filters_pages_by_keyset_and_points_cover_the_window(tracker: Maker) {
        let (_d, clock, t) = tracker();
        let mut ids = Vec::new();
        for i in 0..5 {
            let name = if i % 2 == 0 { "a" } else { "b" };
            let id = t.start_run(name, Value::Null).unwrap();
            if i == 3 {
                t.fail_run(&id, "x").unwrap();
            } else {
                t.complete_run(&id, Value::Null).unwrap();
            }
            ids.push(id);
            clock.advance(Duration::hours(1));
        }
        let s = t.store();
        assert_eq!(s.names().unwrap(), vec!["a".to_owned(), "b".to_owned()]);
        let ids_of = |runs: Vec<PipelineRun>| -> Vec<String> {
            runs.into_iter().map(|r| r.run_id).collect()
        };
        let all = |limit| RunQuery {
            limit,
            ..RunQuery::default()
        };
        let first = s.list(&all(2)).unwrap();
        assert_eq!(ids_of(first.clone()), vec![ids[4].clone(), ids[3].clone()]);
        let last = first.last().unwrap();
        let next = RunQuery {
            after: Some((last.started_at.clone(), last.run_id.clone())),
            ..all(10)
        };
        assert_eq!(
            ids_of(s.list(&next).unwrap()),
            vec![ids[2].clone(), ids[1].clone(), ids[0].clone()]
        );
        let a_success = RunQuery {
            pipeline_name: Some("a".into()),
            status: Some(RunStatus::Success),
            ..all(10)
        };
        assert_eq!(
            ids_of(s.list(&a_success).unwrap()),
            vec![ids[4].clone(), ids[2].clone(), ids[0].clone()]
        );
        let failed = RunQuery {
            status: Some(RunStatus::Failed),
            ..all(10)
        };
        assert_eq!(ids_of(s.list(&failed).unwrap()), vec![ids[3].clone()]);
        let started = |i: usize| t.get_run(&ids[i]).unwrap().unwrap().started_at;
        let range = RunQuery {
            started_from: Some(started(1)),
            started_before: Some(started(3)),
            ..all(10)
        };
        assert_eq!(
            ids_of(s.list(&range).unwrap()),
            vec![ids[2].clone(), ids[1].clone()]
        );
        let range_after = RunQuery {
            after: Some((started(2), ids[2].clone())),
            ..range.clone()
        };
        assert_eq!(ids_of(s.list(&range_after).unwrap()), vec![ids[1].clone()]);
        let running_a = RunQuery {
            pipeline_name: Some("a".into()),
            status: Some(RunStatus::Running),
            ..all(10)
        };
        assert!(s.list(&running_a).unwrap().is_empty());
        let points = s.points_since(&started(2), 10).unwrap();
        assert_eq!(
            points
                .iter()
                .map(|p| (p.pipeline_name.as_str(), p.status))
                .collect::<Vec<_>>(),
            vec![
                ("a", RunStatus::Success),
                ("b", RunStatus::Failed),
                ("a", RunStatus::Success)
            ]
        );
        assert_eq!(points[0].started_at, started(2));
        assert!(points[0].duration_seconds.is_some());
        assert_eq!(s.points_since(&started(2), 1).unwrap().len(), 1);
    }

    fn freshness_gives_the_newest_success_and_run_per_pipeline(tracker: Maker) {
        let (_d, clock, t) = tracker();
        assert_eq!(t.store().freshness().unwrap(), vec![]);
        let ok = t.start_run("data_refresh", Value::Null).unwrap();
        clock.advance(Duration::minutes(5));
        t.complete_run(&ok, Value::Null).unwrap();
        let success_end = t.get_run(&ok).unwrap().unwrap().finished_at.unwrap();
        clock.advance(Duration::days(1));
        let bad = t.start_run("data_refresh", Value::Null).unwrap();
        let bad_start = t.get_run(&bad).unwrap().unwrap().started_at;
        t.fail_run(&bad, "disk full").unwrap();
        let running = t.start_run("b_training", Value::Null).unwrap();
        let running_start = t.get_run(&running).unwrap().unwrap().started_at;
        assert_eq!(
            t.store().freshness().unwrap(),
            vec![
                PipelineFreshness {
                    pipeline_name: "b_training".into(),
                    last_success: None,
                    last_run: Some((running_start, RunStatus::Running)),
                },
                PipelineFreshness {
                    pipeline_name: "data_refresh".into(),
                    last_success: Some(success_end),
                    last_run: Some((bad_start, RunStatus::Failed)),
                },
            ]
        );
    }

    fn prune_and_copy_between_stores(tracker: Maker) {
        let (_d, clock, t) = tracker();
        let old = t.start_run("a", json!({"k": "v"})).unwrap();
        t.complete_run(&old, Value::Null).unwrap();
        clock.advance(Duration::days(2));
        let live = t.start_run("a", Value::Null).unwrap();
        let young = t.start_run("b", Value::Null).unwrap();
        t.fail_run(&young, "x").unwrap();
        let all = t.store().export(None, 100).unwrap();
        assert_eq!(all.len(), 3);
        assert!(all.windows(2).all(|w| w[0].run_id < w[1].run_id));
        assert_eq!(
            t.store().export(Some(&all[0].run_id), 1).unwrap(),
            vec![all[1].clone()]
        );
        // Import into another store of the same kind: new rows only, unchanged.
        let (_d2, _c2, other) = tracker();
        assert_eq!(other.store().import(&all[..2]).unwrap(), 2);
        assert_eq!(other.store().import(&all).unwrap(), 1);
        assert_eq!(other.store().export(None, 100).unwrap(), all);
        // Pruning keeps running runs and young ones.
        let cut = recops_core::Clock::now(&clock) - Duration::days(1);
        assert_eq!(t.prune_finished_before(cut).unwrap(), 1);
        assert!(t.get_run(&old).unwrap().is_none());
        assert!(t.get_run(&live).unwrap().is_some());
    }

    fn start_complete_records_duration_and_merges_metadata(tracker: Maker) {
        let (_d, clock, t) = tracker();
        let id = t.start_run("data_refresh", json!({"force": true})).unwrap();
        assert!(id.starts_with("data_refresh_") && id.len() == "data_refresh_".len() + 12);
        assert!(t.is_pipeline_running("data_refresh").unwrap());
        clock.advance(Duration::milliseconds(45_200));
        t.complete_run(&id, json!({"records_processed": 1000}))
            .unwrap();
        let run = t.get_run(&id).unwrap().unwrap();
        assert_eq!(run.status, RunStatus::Success);
        assert_eq!(run.duration_seconds, Some(45.2));
        assert_eq!(run.started_at, "2025-01-15T10:00:00.000000+00:00");
        assert_eq!(
            run.finished_at.as_deref(),
            Some("2025-01-15T10:00:45.200000+00:00")
        );
        assert_eq!(run.metadata["force"], json!(true));
        assert_eq!(run.metadata["records_processed"], json!(1000));
        assert!(!t.is_pipeline_running("data_refresh").unwrap());
    }

    fn fail_and_cancel_set_status_and_error(tracker: Maker) {
        let (_d, _c, t) = tracker();
        let a = t.start_run("model_training", Value::Null).unwrap();
        let b = t.start_run("model_training", Value::Null).unwrap();
        t.fail_run(&a, "NaN in factors").unwrap();
        t.cancel_run(&b).unwrap();
        let a = t.get_run(&a).unwrap().unwrap();
        assert_eq!(a.status, RunStatus::Failed);
        assert_eq!(a.error_message.as_deref(), Some("NaN in factors"));
        assert_eq!(t.get_run(&b).unwrap().unwrap().status, RunStatus::Cancelled);
    }

    fn finishing_a_missing_or_finished_run_is_an_error(tracker: Maker) {
        let (_d, _c, t) = tracker();
        let err = t
            .complete_run("nope_000000000000", Value::Null)
            .unwrap_err();
        assert!(matches!(err, Error::RunNotFound { .. }), "{err}");
        let id = t.start_run("x", Value::Null).unwrap();
        t.complete_run(&id, Value::Null).unwrap();
        for err in [
            t.complete_run(&id, Value::Null).unwrap_err(),
            t.fail_run(&id, "late").unwrap_err(),
            t.cancel_run(&id).unwrap_err(),
        ] {
            assert!(
                matches!(&err, Error::RunAlreadyFinished { status, .. } if status == "success"),
                "{err}"
            );
        }
        assert!(t.get_run("nope").unwrap().is_none());
    }

    fn bad_arguments_are_refused(tracker: Maker) {
        let (_d, _c, t) = tracker();
        assert!(t.start_run("", Value::Null).is_err());
        assert!(t.start_run("x", json!([1, 2])).is_err());
    }

    fn recent_runs_filter_order_and_limit(tracker: Maker) {
        let (_d, clock, t) = tracker();
        let mut ids = Vec::new();
        for i in 0..5 {
            let name = if i % 2 == 0 { "a" } else { "b" };
            let id = t.start_run(name, json!({"i": i})).unwrap();
            if i < 3 {
                t.complete_run(&id, Value::Null).unwrap();
            }
            ids.push(id);
            clock.advance(Duration::seconds(1));
        }
        let all = t.get_recent_runs(None, 10, None).unwrap();
        assert_eq!(
            all.iter().map(|r| r.run_id.clone()).collect::<Vec<_>>(),
            ids.iter().rev().cloned().collect::<Vec<_>>()
        );
        let a = t.get_recent_runs(Some("a"), 10, None).unwrap();
        assert_eq!(a.len(), 3);
        let a_ok = t
            .get_recent_runs(Some("a"), 10, Some(RunStatus::Success))
            .unwrap();
        assert_eq!(a_ok.len(), 2);
        let limited = t
            .get_recent_runs(None, 2, Some(RunStatus::Running))
            .unwrap();
        assert_eq!(limited.len(), 2);
        assert_eq!(limited[0].run_id, ids[4]);
    }

    fn stats_count_rates_and_mean_duration_within_the_period(tracker: Maker) {
        let (_d, clock, t) = tracker();
        // An old run outside the 7-day window.
        let old = t.start_run("data_refresh", Value::Null).unwrap();
        t.fail_run(&old, "old").unwrap();
        clock.advance(Duration::days(10));
        // 5 successes of 40, 42, 44, 46, 48 s; 1 failure; 1 running.
        for k in 0..5 {
            let id = t.start_run("data_refresh", Value::Null).unwrap();
            clock.advance(Duration::seconds(40 + 2 * k));
            t.complete_run(&id, Value::Null).unwrap();
        }
        let f = t.start_run("data_refresh", Value::Null).unwrap();
        clock.advance(Duration::seconds(500));
        t.fail_run(&f, "boom").unwrap();
        t.start_run("data_refresh", Value::Null).unwrap();
        let c = t.start_run("drift_detection", Value::Null).unwrap();
        t.cancel_run(&c).unwrap();

        let stats = t.get_stats(7).unwrap();
        assert_eq!(stats.period_days, 7);
        let s = &stats.stats_by_pipeline["data_refresh"];
        assert_eq!((s.success, s.failed, s.running, s.cancelled), (5, 1, 1, 0));
        assert_eq!(s.avg_duration_seconds, Some(44.0));
        assert!((s.success_rate.unwrap() - 5.0 / 6.0).abs() < 1e-12);
        let d = &stats.stats_by_pipeline["drift_detection"];
        assert_eq!(d.cancelled, 1);
        assert_eq!(d.success_rate, None);
        assert_eq!(d.avg_duration_seconds, None);
        // The JSON shape of the spec.
        let v = serde_json::to_value(&stats).unwrap();
        assert_eq!(v["stats_by_pipeline"]["data_refresh"]["success"], json!(5));
        assert!(v["stats_by_pipeline"]["data_refresh"]["success_rate"].is_f64());
        // With a 30-day window the old failure counts too.
        let s30 = &t.get_stats(30).unwrap().stats_by_pipeline["data_refresh"];
        assert_eq!(s30.failed, 2);
    }

    fn cleanup_marks_only_runs_older_than_the_limit(tracker: Maker) {
        let (_d, clock, t) = tracker();
        let old = t.start_run("model_training", Value::Null).unwrap();
        clock.advance(Duration::hours(20));
        let young = t.start_run("model_training", Value::Null).unwrap();
        clock.advance(Duration::hours(5));
        assert_eq!(t.cleanup_stale_runs(24.0).unwrap(), 1);
        let old = t.get_run(&old).unwrap().unwrap();
        assert_eq!(old.status, RunStatus::Failed);
        assert_eq!(old.duration_seconds, Some(25.0 * 3600.0));
        assert!(old.error_message.unwrap().contains("stale"));
        assert_eq!(
            t.get_run(&young).unwrap().unwrap().status,
            RunStatus::Running
        );
        assert_eq!(t.cleanup_stale_runs(24.0).unwrap(), 0);
    }

    #[test]
    fn schema_matches_the_spec_ddl() {
        let dir = tempfile::tempdir().unwrap();
        let t = SqlitePipelineStore::open(&dir.path().join("p.db")).unwrap();
        // The spec's DDL, verbatim, in a fresh database.
        let spec = Connection::open_in_memory().unwrap();
        spec.execute_batch(
            "CREATE TABLE pipeline_runs (
                run_id TEXT PRIMARY KEY,
                pipeline_name TEXT NOT NULL,
                status TEXT NOT NULL,
                started_at TEXT NOT NULL,
                finished_at TEXT,
                duration_seconds REAL,
                error_message TEXT,
                metadata TEXT
            );
            CREATE INDEX idx_pipeline_name_status ON pipeline_runs(pipeline_name, status);
            CREATE INDEX idx_started_at ON pipeline_runs(started_at);",
        )
        .unwrap();
        let ours = t.conn();
        let describe = |c: &Connection| {
            let cols: Vec<(String, String, i64, i64)> = c
                .prepare("PRAGMA table_info(pipeline_runs)")
                .unwrap()
                .query_map([], |r| Ok((r.get(1)?, r.get(2)?, r.get(3)?, r.get(5)?)))
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap();
            let mut idx: Vec<(String, String)> = c
                .prepare(
                    "SELECT il.name, group_concat(ii.name, ',') FROM pragma_index_list('pipeline_runs') il \
                     JOIN pragma_index_info(il.name) ii WHERE il.origin = 'c' GROUP BY il.name",
                )
                .unwrap()
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap();
            idx.sort();
            (cols, idx)
        };
        assert_eq!(describe(&ours), describe(&spec));
        let (_, idx) = describe(&ours);
        assert_eq!(
            idx,
            vec![
                (
                    "idx_pipeline_name_status".to_owned(),
                    "pipeline_name,status".to_owned()
                ),
                ("idx_started_at".to_owned(), "started_at".to_owned())
            ]
        );
    }

    #[test]
    fn a_database_made_by_the_python_tracker_is_migrated_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pipeline_metrics.db");
        {
            let c = Connection::open(&path).unwrap();
            c.execute_batch(
                "CREATE TABLE pipeline_runs (run_id TEXT PRIMARY KEY, pipeline_name TEXT NOT NULL,
                 status TEXT NOT NULL, started_at TEXT NOT NULL, finished_at TEXT,
                 duration_seconds REAL, error_message TEXT, metadata TEXT);
                 INSERT INTO pipeline_runs VALUES ('data_refresh_abc', 'data_refresh', 'success',
                 '2025-01-15T10:00:00.123456', '2025-01-15T10:00:45.323456', 45.2, NULL, '{\"force\": true}');",
            )
            .unwrap();
        }
        let t = SqlitePipelineStore::open(&path).unwrap();
        let run = t.get("data_refresh_abc").unwrap().unwrap();
        assert_eq!(run.duration_seconds, Some(45.2));
        assert_eq!(run.metadata["force"], json!(true));
        let v: i64 = t
            .conn()
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, 1);
        let n: i64 = t
            .conn()
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name LIKE 'idx_%'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(n, 2);
    }
}
