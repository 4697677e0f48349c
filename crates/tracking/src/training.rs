//! `TrainingTracker`: training runs and their iterations in `logs/training_metrics.db`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Mutex, MutexGuard, PoisonError};

use chrono::{DateTime, Utc};
use recops_core::{Home, SharedClock, SystemClock, format_timestamp};
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::db;
use crate::error::{Error, Result};

/// The spec's schema of `training_runs` and `iteration_metrics` (schema version 1),
/// plus an index to read one run's iterations quickly.
pub const TRAINING_SCHEMA: &str = "\
CREATE TABLE IF NOT EXISTS training_runs (
    run_id TEXT PRIMARY KEY,
    model_type TEXT,  -- 'als' or 'bpr'
    started_at TIMESTAMP,
    completed_at TIMESTAMP,
    status TEXT,  -- 'running', 'completed', 'failed'
    hyperparameters TEXT,  -- JSON
    recall_at_10 REAL,
    ndcg_at_10 REAL,
    coverage REAL,
    baseline_recall_at_10 REAL,
    improvement_pct REAL,
    training_time_seconds REAL,
    data_version TEXT,
    git_commit TEXT,
    artifacts_path TEXT,
    model_id TEXT,  -- Registry model_id
    registered_at TIMESTAMP,
    registry_status TEXT  -- 'active', 'archived', 'failed'
);

CREATE TABLE IF NOT EXISTS iteration_metrics (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT,
    iteration INT,
    timestamp TIMESTAMP,
    loss REAL,
    validation_recall REAL,
    validation_ndcg REAL,
    wall_time_seconds REAL,
    FOREIGN KEY (run_id) REFERENCES training_runs(run_id)
);

CREATE INDEX IF NOT EXISTS idx_iteration_metrics_run ON iteration_metrics(run_id, iteration);
";

/// Schema version 2: the champion rule's comparisons (issue 22). One row per
/// registered model: the champion it was compared with, both ndcg@10 on the new
/// model's evaluation split, and the decision.
pub const CHAMPION_SCHEMA: &str = "\
CREATE TABLE IF NOT EXISTS champion_comparisons (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT,  -- the new model's training run
    model_id TEXT,  -- the new model
    compared_at TIMESTAMP,
    data_version TEXT,  -- the split both were evaluated on
    champion_id TEXT,  -- NULL: the new model is the first champion
    champion_ndcg_at_10 REAL,  -- re-evaluated on the new model's split (NULL: not readable)
    champion_stored_ndcg_at_10 REAL,  -- from its own, older split
    new_ndcg_at_10 REAL,
    decision TEXT,  -- 'promoted' or 'kept'
    summary TEXT,
    FOREIGN KEY (run_id) REFERENCES training_runs(run_id)
);

CREATE INDEX IF NOT EXISTS idx_champion_comparisons_model ON champion_comparisons(model_id);
";

/// The columns of `champion_comparisons` in the order both backends read and write.
pub(crate) const CHAMPION_COLUMNS: &str = "run_id, model_id, compared_at, data_version, \
    champion_id, champion_ndcg_at_10, champion_stored_ndcg_at_10, new_ndcg_at_10, decision, summary";

/// The champion rule's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChampionDecision {
    /// `promoted`: the new model became `current_best`.
    Promoted,
    /// `kept`: the champion stayed.
    Kept,
}

/// A row of `champion_comparisons` (`id` and `compared_at` are set when recorded).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChampionRecord {
    /// The new model's training run.
    pub run_id: String,
    /// The new model.
    pub model_id: String,
    /// RFC 3339 time of the comparison (ignored by `record_champion_comparison`).
    #[serde(default)]
    pub compared_at: String,
    /// The data version of the split both were evaluated on.
    pub data_version: Option<String>,
    /// The champion before (none: the new model is the first).
    pub champion_id: Option<String>,
    /// The champion's ndcg@10 re-evaluated on the new model's split.
    pub champion_ndcg_at_10: Option<f64>,
    /// The champion's stored ndcg@10 (its own split).
    pub champion_stored_ndcg_at_10: Option<f64>,
    /// The new model's ndcg@10.
    pub new_ndcg_at_10: f64,
    /// The decision.
    pub decision: ChampionDecision,
    /// One line with the numbers.
    pub summary: String,
}

/// Status of a training run: `running`, `completed`, `failed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TrainingStatus {
    /// `running`
    Running,
    /// `completed`
    Completed,
    /// `failed`
    Failed,
}

/// Registry status recorded on a training run: `active`, `archived`, `failed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RegistryStatus {
    /// `active`: registered and usable.
    Active,
    /// `archived`: registered, then archived.
    Archived,
    /// `failed`: registration failed or was refused (did not beat the baseline).
    Failed,
}

macro_rules! string_enum {
    ($t:ty, $what:literal, { $($v:ident => $s:literal),+ $(,)? }) => {
        impl $t {
            /// The stored string.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$v => $s),+ }
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl FromStr for $t {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self> {
                match s {
                    $($s => Ok(Self::$v),)+
                    other => Err(Error::InvalidInput {
                        what: $what,
                        message: format!("{other:?}; expected one of {}", [$($s),+].join(", ")),
                    }),
                }
            }
        }
    };
}

string_enum!(TrainingStatus, "training status", {
    Running => "running", Completed => "completed", Failed => "failed",
});
string_enum!(ChampionDecision, "champion decision", {
    Promoted => "promoted", Kept => "kept",
});
string_enum!(RegistryStatus, "registry status", {
    Active => "active", Archived => "archived", Failed => "failed",
});

/// What is known when a training run starts.
#[derive(Debug, Clone, PartialEq)]
pub struct NewTrainingRun {
    /// `als` or `bpr`.
    pub model_type: String,
    /// The hyperparameters, stored as JSON.
    pub hyperparameters: Value,
    /// The `data_version` of the training data.
    pub data_version: Option<String>,
    /// The git commit of the code, when known.
    pub git_commit: Option<String>,
}

/// One training iteration (epoch).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct IterationRecord {
    /// 1-based iteration number.
    pub iteration: u32,
    /// Training loss, when computed.
    pub loss: Option<f64>,
    /// Validation recall@10, when evaluated.
    pub validation_recall: Option<f64>,
    /// Validation ndcg@10, when evaluated.
    pub validation_ndcg: Option<f64>,
    /// Seconds the iteration took.
    pub wall_time_seconds: f64,
}

/// The evaluation of a finished training run.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TrainingOutcome {
    /// recall@10 on the evaluation split.
    pub recall_at_10: f64,
    /// ndcg@10 on the evaluation split.
    pub ndcg_at_10: f64,
    /// coverage@10.
    pub coverage: f64,
    /// The popularity baseline's recall@10 on the same split.
    pub baseline_recall_at_10: f64,
    /// Improvement over the baseline in percent.
    pub improvement_pct: f64,
    /// Seconds of training.
    pub training_time_seconds: f64,
    /// Where the model files are.
    pub artifacts_path: Option<String>,
}

/// A row of `training_runs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingRun {
    /// Run id.
    pub run_id: String,
    /// `als` or `bpr`.
    pub model_type: Option<String>,
    /// RFC 3339 start.
    pub started_at: Option<String>,
    /// RFC 3339 end.
    pub completed_at: Option<String>,
    /// Status.
    pub status: Option<TrainingStatus>,
    /// Hyperparameters (JSON).
    pub hyperparameters: Value,
    /// recall@10.
    pub recall_at_10: Option<f64>,
    /// ndcg@10.
    pub ndcg_at_10: Option<f64>,
    /// coverage@10.
    pub coverage: Option<f64>,
    /// Baseline recall@10.
    pub baseline_recall_at_10: Option<f64>,
    /// Improvement over the baseline, percent.
    pub improvement_pct: Option<f64>,
    /// Training seconds.
    pub training_time_seconds: Option<f64>,
    /// Data version trained on.
    pub data_version: Option<String>,
    /// Code version.
    pub git_commit: Option<String>,
    /// Model files.
    pub artifacts_path: Option<String>,
    /// Registry model id, once registered.
    pub model_id: Option<String>,
    /// When registered.
    pub registered_at: Option<String>,
    /// Registry status.
    pub registry_status: Option<RegistryStatus>,
}

/// Which runs [`TrainingStore::page`] returns, newest first (`started_at`, then
/// `run_id`, descending).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TrainingQuery {
    /// One model type.
    pub model_type: Option<String>,
    /// One status.
    pub status: Option<TrainingStatus>,
    /// Keyset cursor: only runs ordered after `(started_at, run_id)` (older ones).
    pub after: Option<(String, String)>,
    /// At most this many runs.
    pub limit: usize,
}

/// The evaluation of one completed run: what the evaluation trend draws.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvaluationPoint {
    /// RFC 3339 start.
    pub started_at: String,
    /// recall@10.
    pub recall_at_10: Option<f64>,
    /// Baseline recall@10.
    pub baseline_recall_at_10: Option<f64>,
    /// ndcg@10.
    pub ndcg_at_10: Option<f64>,
}

/// A row of `iteration_metrics`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IterationMetric {
    /// Row id.
    pub id: i64,
    /// The training run.
    pub run_id: String,
    /// Iteration number.
    pub iteration: u32,
    /// RFC 3339 time it was logged.
    pub timestamp: String,
    /// Loss.
    pub loss: Option<f64>,
    /// Validation recall@10.
    pub validation_recall: Option<f64>,
    /// Validation ndcg@10.
    pub validation_ndcg: Option<f64>,
    /// Seconds of the iteration.
    pub wall_time_seconds: Option<f64>,
}

/// Where training runs and their iterations are kept: the spec's `training_runs` and
/// `iteration_metrics` tables in SQLite ([`SqliteTrainingStore`],
/// `logs/training_metrics.db`) or PostgreSQL ([`PgTrainingStore`](crate::PgTrainingStore)).
/// [`TrainingTracker`] adds ids, names and the clock; callers use the tracker.
pub trait TrainingStore: Send + Sync + fmt::Debug {
    /// The file or URL, for messages.
    fn location(&self) -> String;
    /// Inserts a new run row as it is.
    fn insert(&self, run: &TrainingRun) -> Result<()>;
    /// Adds an iteration to a running run (checked in the same transaction).
    fn log_iteration(&self, run_id: &str, it: &IterationRecord, at: &str) -> Result<()>;
    /// Marks a running run `completed` with its evaluation.
    fn complete(&self, run_id: &str, outcome: &TrainingOutcome, at: &str) -> Result<()>;
    /// Marks a running run `failed`.
    fn fail(&self, run_id: &str, at: &str) -> Result<()>;
    /// Sets model id, registration time and registry status; false when no such run.
    fn attach_registry(
        &self,
        run_id: &str,
        model_id: &str,
        at: &str,
        status: RegistryStatus,
    ) -> Result<bool>;
    /// Sets the registry status of the runs of `model_id`; returns how many.
    fn set_registry_status(&self, model_id: &str, status: RegistryStatus) -> Result<usize>;
    /// The run with this id.
    fn get(&self, run_id: &str) -> Result<Option<TrainingRun>>;
    /// Newest first, optionally of one model type.
    fn list(&self, model_type: Option<&str>, limit: usize) -> Result<Vec<TrainingRun>>;
    /// Deletes finished runs (and iterations) started before `cutoff` whose model is
    /// not active; returns how many runs.
    fn prune_finished_before(&self, cutoff: &str) -> Result<usize>;
    /// The iterations of a run in order.
    fn iterations(&self, run_id: &str) -> Result<Vec<IterationMetric>>;
    /// The runs `query` selects, newest first (keyset pagination).
    fn page(&self, query: &TrainingQuery) -> Result<Vec<TrainingRun>>;
    /// The evaluations of the newest `limit` completed runs, oldest first (four
    /// columns, no hyperparameters).
    fn evaluations(&self, limit: usize) -> Result<Vec<EvaluationPoint>>;
    /// Up to `limit` runs with `run_id > after`, by `run_id` (for copying a store).
    fn export(&self, after: Option<&str>, limit: usize) -> Result<Vec<TrainingRun>>;
    /// Inserts `run` and its iterations (as they are) unless the run id exists;
    /// returns whether it was inserted.
    fn import(&self, run: &TrainingRun, iterations: &[IterationMetric]) -> Result<bool>;
    /// Records the champion rule's comparison for a registered model, at `at`.
    fn record_champion(&self, c: &ChampionRecord, at: &str) -> Result<()>;
    /// The champion comparisons of `model_id` (as the new model), oldest first.
    fn champion_comparisons(&self, model_id: &str) -> Result<Vec<ChampionRecord>>;
}

/// Records training runs and every iteration, in the configured store (SQLite
/// `logs/training_metrics.db` by default, PostgreSQL when `storage.url` says so).
#[derive(Debug)]
pub struct TrainingTracker {
    store: Box<dyn TrainingStore>,
    clock: SharedClock,
}

impl TrainingTracker {
    /// Opens the tracker of `home` with the system clock, in its configured store.
    pub fn open(home: &Home) -> Result<Self> {
        Self::open_home(home, SystemClock::shared())
    }

    /// [`open`](Self::open) with a clock.
    pub fn open_home(home: &Home, clock: SharedClock) -> Result<Self> {
        let store: Box<dyn TrainingStore> = match crate::Storage::of(home)? {
            crate::Storage::Embedded => Box::new(SqliteTrainingStore::open(&home.training_db())?),
            crate::Storage::Postgres(db) => Box::new(crate::PgTrainingStore::open(&db)?),
        };
        Ok(Self::with_store(store, clock))
    }

    /// Opens (creating or migrating) the SQLite database at `path`.
    pub fn open_path(path: &Path, clock: SharedClock) -> Result<Self> {
        Ok(Self::with_store(
            Box::new(SqliteTrainingStore::open(path)?),
            clock,
        ))
    }

    /// A tracker over any store.
    pub fn with_store(store: Box<dyn TrainingStore>, clock: SharedClock) -> Self {
        TrainingTracker { store, clock }
    }

    /// The database file or URL, for messages.
    pub fn location(&self) -> String {
        self.store.location()
    }

    /// The store underneath.
    pub fn store(&self) -> &dyn TrainingStore {
        self.store.as_ref()
    }

    fn now(&self) -> String {
        format_timestamp(self.clock.now())
    }

    /// Starts a run (`status = running`) and returns its id, `train_{model_type}_{12 hex}`.
    pub fn start_run(&self, run: &NewTrainingRun) -> Result<String> {
        recops_core::validate_name("model type", &run.model_type)?;
        let run_id = format!(
            "train_{}_{}",
            run.model_type,
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        );
        self.store.insert(&TrainingRun {
            run_id: run_id.clone(),
            model_type: Some(run.model_type.clone()),
            started_at: Some(self.now()),
            completed_at: None,
            status: Some(TrainingStatus::Running),
            hyperparameters: run.hyperparameters.clone(),
            recall_at_10: None,
            ndcg_at_10: None,
            coverage: None,
            baseline_recall_at_10: None,
            improvement_pct: None,
            training_time_seconds: None,
            data_version: run.data_version.clone(),
            git_commit: run.git_commit.clone(),
            artifacts_path: None,
            model_id: None,
            registered_at: None,
            registry_status: None,
        })?;
        Ok(run_id)
    }

    /// Records one iteration of a running run.
    pub fn log_iteration(&self, run_id: &str, it: &IterationRecord) -> Result<()> {
        self.store.log_iteration(run_id, it, &self.now())
    }

    /// Marks a running run `completed` with its evaluation.
    pub fn complete_run(&self, run_id: &str, outcome: &TrainingOutcome) -> Result<()> {
        self.store.complete(run_id, outcome, &self.now())
    }

    /// Marks a running run `failed`. (The spec's table has no error column: the reason
    /// goes to the pipeline run and the training log.)
    pub fn fail_run(&self, run_id: &str) -> Result<()> {
        self.store.fail(run_id, &self.now())
    }

    /// Records the registry outcome of a run: its model id, status and the time now.
    pub fn attach_registry(
        &self,
        run_id: &str,
        model_id: &str,
        status: RegistryStatus,
    ) -> Result<()> {
        if !self
            .store
            .attach_registry(run_id, model_id, &self.now(), status)?
        {
            return Err(Error::RunNotFound {
                run_id: run_id.to_owned(),
            });
        }
        Ok(())
    }

    /// Updates the registry status of every run that produced `model_id` (when a model
    /// is archived). Returns the number of rows changed.
    pub fn set_registry_status(&self, model_id: &str, status: RegistryStatus) -> Result<usize> {
        self.store.set_registry_status(model_id, status)
    }

    /// The run with this id.
    pub fn get_run(&self, run_id: &str) -> Result<Option<TrainingRun>> {
        self.store.get(run_id)
    }

    /// Runs, newest first, optionally of one model type.
    pub fn list_runs(&self, model_type: Option<&str>, limit: usize) -> Result<Vec<TrainingRun>> {
        self.store.list(model_type, limit)
    }

    /// Deletes training runs that finished before `cutoff` and their iterations, except
    /// runs whose model is still active in the registry; returns how many runs.
    pub fn prune_finished_before(&self, cutoff: DateTime<Utc>) -> Result<usize> {
        self.store.prune_finished_before(&format_timestamp(cutoff))
    }

    /// Records the champion rule's comparison for a registered model (the time is the
    /// tracker's clock).
    pub fn record_champion_comparison(&self, c: &ChampionRecord) -> Result<()> {
        self.store.record_champion(c, &self.now())
    }

    /// The champion comparisons of `model_id` (as the new model), oldest first.
    pub fn champion_comparisons(&self, model_id: &str) -> Result<Vec<ChampionRecord>> {
        self.store.champion_comparisons(model_id)
    }

    /// The iterations of a run, in order.
    pub fn iterations(&self, run_id: &str) -> Result<Vec<IterationMetric>> {
        self.store.iterations(run_id)
    }
}

/// Checks a stored training status allows one more write.
pub(crate) fn check_running(run_id: &str, status: Option<Option<String>>) -> Result<()> {
    match status {
        None => Err(Error::RunNotFound {
            run_id: run_id.to_owned(),
        }),
        Some(Some(s)) if s == TrainingStatus::Running.as_str() => Ok(()),
        Some(s) => Err(Error::RunAlreadyFinished {
            run_id: run_id.to_owned(),
            status: s.unwrap_or_default(),
        }),
    }
}

/// The SQL deciding which runs `prune_finished_before` deletes (`$1`/`?1` = cutoff).
pub(crate) const PRUNABLE: &str = "started_at < ?1 AND status != 'running' \
     AND (registry_status IS NULL OR registry_status != 'active')";

/// [`TrainingStore`] in SQLite: `logs/training_metrics.db`.
#[derive(Debug)]
pub struct SqliteTrainingStore {
    conn: Mutex<Connection>,
    path: PathBuf,
}

impl SqliteTrainingStore {
    /// Opens (creating or migrating) the database at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        let conn = db::open(path, &[TRAINING_SCHEMA, CHAMPION_SCHEMA])?;
        Ok(SqliteTrainingStore {
            conn: Mutex::new(conn),
            path: path.to_path_buf(),
        })
    }

    /// Opens the database at `path` read-only (for readers such as the dashboard: it
    /// never creates, migrates or locks the file, and waits at most `busy` for a
    /// writer). `None` when the file or its table does not exist yet.
    pub fn open_read_only(path: &Path, busy: std::time::Duration) -> Result<Option<Self>> {
        let conn = db::open_read_only(path, busy, "training_runs")?;
        Ok(conn.map(|conn| SqliteTrainingStore {
            conn: Mutex::new(conn),
            path: path.to_path_buf(),
        }))
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The newest `$1` completed runs' evaluations, oldest first (both backends; SQLite
/// reads `$1` as `?1`).
pub(crate) const EVALUATIONS: &str = "SELECT started_at, recall_at_10, baseline_recall_at_10, \
    ndcg_at_10 FROM (SELECT started_at, run_id, recall_at_10, baseline_recall_at_10, ndcg_at_10 \
    FROM training_runs WHERE status = 'completed' AND started_at IS NOT NULL \
    ORDER BY started_at DESC, run_id DESC LIMIT $1) AS newest ORDER BY started_at, run_id";

const INSERT_TRAINING: &str = "INSERT INTO training_runs (run_id, model_type, started_at, \
    completed_at, status, hyperparameters, recall_at_10, ndcg_at_10, coverage, \
    baseline_recall_at_10, improvement_pct, training_time_seconds, data_version, git_commit, \
    artifacts_path, model_id, registered_at, registry_status) VALUES \
    (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)";

fn insert_sqlite(c: &Connection, run: &TrainingRun, or_ignore: bool) -> rusqlite::Result<usize> {
    let sql = if or_ignore {
        INSERT_TRAINING.replacen("INSERT INTO", "INSERT OR IGNORE INTO", 1)
    } else {
        INSERT_TRAINING.to_owned()
    };
    c.prepare_cached(&sql)?.execute(params![
        run.run_id,
        run.model_type,
        run.started_at,
        run.completed_at,
        run.status.map(TrainingStatus::as_str),
        run.hyperparameters.to_string(),
        run.recall_at_10,
        run.ndcg_at_10,
        run.coverage,
        run.baseline_recall_at_10,
        run.improvement_pct,
        run.training_time_seconds,
        run.data_version,
        run.git_commit,
        run.artifacts_path,
        run.model_id,
        run.registered_at,
        run.registry_status.map(RegistryStatus::as_str),
    ])
}

impl TrainingStore for SqliteTrainingStore {
    fn location(&self) -> String {
        self.path.display().to_string()
    }

    fn insert(&self, run: &TrainingRun) -> Result<()> {
        insert_sqlite(&self.conn(), run, false).map_err(db::on(&self.path))?;
        Ok(())
    }

    fn log_iteration(&self, run_id: &str, it: &IterationRecord, at: &str) -> Result<()> {
        let mut conn = self.conn();
        let on = db::on(&self.path);
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(&on)?;
        require_running(&tx, run_id, &self.path)?;
        tx.prepare_cached(
            "INSERT INTO iteration_metrics (run_id, iteration, timestamp, loss, validation_recall, \
             validation_ndcg, wall_time_seconds) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )
        .and_then(|mut st| {
            st.execute(params![
                run_id,
                it.iteration,
                at,
                it.loss,
                it.validation_recall,
                it.validation_ndcg,
                it.wall_time_seconds
            ])
        })
        .map_err(&on)?;
        tx.commit().map_err(&on)
    }

    fn complete(&self, run_id: &str, outcome: &TrainingOutcome, at: &str) -> Result<()> {
        let mut conn = self.conn();
        let on = db::on(&self.path);
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(&on)?;
        require_running(&tx, run_id, &self.path)?;
        tx.execute(
            "UPDATE training_runs SET status = 'completed', completed_at = ?1, recall_at_10 = ?2, \
             ndcg_at_10 = ?3, coverage = ?4, baseline_recall_at_10 = ?5, improvement_pct = ?6, \
             training_time_seconds = ?7, artifacts_path = ?8 WHERE run_id = ?9",
            params![
                at,
                outcome.recall_at_10,
                outcome.ndcg_at_10,
                outcome.coverage,
                outcome.baseline_recall_at_10,
                outcome.improvement_pct,
                outcome.training_time_seconds,
                outcome.artifacts_path,
                run_id
            ],
        )
        .map_err(&on)?;
        tx.commit().map_err(&on)
    }

    fn fail(&self, run_id: &str, at: &str) -> Result<()> {
        let mut conn = self.conn();
        let on = db::on(&self.path);
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(&on)?;
        require_running(&tx, run_id, &self.path)?;
        tx.execute(
            "UPDATE training_runs SET status = 'failed', completed_at = ?1 WHERE run_id = ?2",
            params![at, run_id],
        )
        .map_err(&on)?;
        tx.commit().map_err(&on)
    }

    fn attach_registry(
        &self,
        run_id: &str,
        model_id: &str,
        at: &str,
        status: RegistryStatus,
    ) -> Result<bool> {
        let n = self
            .conn()
            .execute(
                "UPDATE training_runs SET model_id = ?1, registered_at = ?2, registry_status = ?3 \
                 WHERE run_id = ?4",
                params![model_id, at, status.as_str(), run_id],
            )
            .map_err(db::on(&self.path))?;
        Ok(n > 0)
    }

    fn set_registry_status(&self, model_id: &str, status: RegistryStatus) -> Result<usize> {
        self.conn()
            .execute(
                "UPDATE training_runs SET registry_status = ?1 WHERE model_id = ?2",
                params![status.as_str(), model_id],
            )
            .map_err(db::on(&self.path))
    }

    fn get(&self, run_id: &str) -> Result<Option<TrainingRun>> {
        self.conn()
            .prepare_cached(&format!("{SELECT_TRAINING} WHERE run_id = ?1"))
            .and_then(|mut st| st.query_row([run_id], read_training).optional())
            .map_err(db::on(&self.path))
    }

    fn list(&self, model_type: Option<&str>, limit: usize) -> Result<Vec<TrainingRun>> {
        let conn = self.conn();
        let mut st = conn
            .prepare_cached(&format!(
                "{SELECT_TRAINING} WHERE (?1 IS NULL OR model_type = ?1) \
                 ORDER BY started_at DESC, rowid DESC LIMIT ?2"
            ))
            .map_err(db::on(&self.path))?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        st.query_map(params![model_type, limit], read_training)
            .and_then(|rows| rows.collect())
            .map_err(db::on(&self.path))
    }

    fn prune_finished_before(&self, cutoff: &str) -> Result<usize> {
        let mut conn = self.conn();
        let on = db::on(&self.path);
        let tx = conn.transaction().map_err(&on)?;
        for table in ["iteration_metrics", "champion_comparisons"] {
            tx.execute(
                &format!(
                    "DELETE FROM {table} WHERE run_id IN \
                     (SELECT run_id FROM training_runs WHERE {PRUNABLE})"
                ),
                [cutoff],
            )
            .map_err(&on)?;
        }
        let n = tx
            .execute(
                &format!("DELETE FROM training_runs WHERE {PRUNABLE}"),
                [cutoff],
            )
            .map_err(&on)?;
        tx.commit().map_err(&on)?;
        Ok(n)
    }

    fn evaluations(&self, limit: usize) -> Result<Vec<EvaluationPoint>> {
        let conn = self.conn();
        let mut st = conn
            .prepare_cached(EVALUATIONS.replace('$', "?").as_str())
            .map_err(db::on(&self.path))?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        st.query_map([limit], |r| {
            Ok(EvaluationPoint {
                started_at: r.get(0)?,
                recall_at_10: r.get(1)?,
                baseline_recall_at_10: r.get(2)?,
                ndcg_at_10: r.get(3)?,
            })
        })
        .and_then(|rows| rows.collect())
        .map_err(db::on(&self.path))
    }

    fn page(&self, q: &TrainingQuery) -> Result<Vec<TrainingRun>> {
        let conn = self.conn();
        let mut st = conn
            .prepare_cached(&format!(
                "{SELECT_TRAINING} WHERE (?1 IS NULL OR model_type = ?1) \
                 AND (?2 IS NULL OR status = ?2) \
                 AND (?3 IS NULL OR (started_at, run_id) < (?3, ?4)) \
                 ORDER BY started_at DESC, run_id DESC LIMIT ?5"
            ))
            .map_err(db::on(&self.path))?;
        let (at, id) = match &q.after {
            Some((at, id)) => (Some(at.as_str()), Some(id.as_str())),
            None => (None, None),
        };
        let limit = i64::try_from(q.limit).unwrap_or(i64::MAX);
        st.query_map(
            params![
                q.model_type,
                q.status.map(TrainingStatus::as_str),
                at,
                id,
                limit
            ],
            read_training,
        )
        .and_then(|rows| rows.collect())
        .map_err(db::on(&self.path))
    }

    fn iterations(&self, run_id: &str) -> Result<Vec<IterationMetric>> {
        let conn = self.conn();
        let mut st = conn
            .prepare_cached(
                "SELECT id, run_id, iteration, timestamp, loss, validation_recall, validation_ndcg, \
                 wall_time_seconds FROM iteration_metrics WHERE run_id = ?1 ORDER BY iteration, id",
            )
            .map_err(db::on(&self.path))?;
        st.query_map([run_id], |r| {
            Ok(IterationMetric {
                id: r.get(0)?,
                run_id: r.get(1)?,
                iteration: r.get(2)?,
                timestamp: r.get(3)?,
                loss: r.get(4)?,
                validation_recall: r.get(5)?,
                validation_ndcg: r.get(6)?,
                wall_time_seconds: r.get(7)?,
            })
        })
        .and_then(|rows| rows.collect())
        .map_err(db::on(&self.path))
    }

    fn export(&self, after: Option<&str>, limit: usize) -> Result<Vec<TrainingRun>> {
        let conn = self.conn();
        let mut st = conn
            .prepare_cached(&format!(
                "{SELECT_TRAINING} WHERE (?1 IS NULL OR run_id > ?1) ORDER BY run_id LIMIT ?2"
            ))
            .map_err(db::on(&self.path))?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        st.query_map(params![after, limit], read_training)
            .and_then(|rows| rows.collect())
            .map_err(db::on(&self.path))
    }

    fn import(&self, run: &TrainingRun, iterations: &[IterationMetric]) -> Result<bool> {
        let mut conn = self.conn();
        let on = db::on(&self.path);
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(&on)?;
        let inserted = insert_sqlite(&tx, run, true).map_err(&on)? > 0;
        if inserted {
            for it in iterations {
                tx.prepare_cached(
                    "INSERT INTO iteration_metrics (run_id, iteration, timestamp, loss, \
                     validation_recall, validation_ndcg, wall_time_seconds) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )
                .and_then(|mut st| {
                    st.execute(params![
                        it.run_id,
                        it.iteration,
                        it.timestamp,
                        it.loss,
                        it.validation_recall,
                        it.validation_ndcg,
                        it.wall_time_seconds
                    ])
                })
                .map_err(&on)?;
            }
        }
        tx.commit().map_err(&on)?;
        Ok(inserted)
    }

    fn record_champion(&self, c: &ChampionRecord, at: &str) -> Result<()> {
        self.conn()
            .execute(
                &format!(
                    "INSERT INTO champion_comparisons ({CHAMPION_COLUMNS}) VALUES \
                 (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
                ),
                params![
                    c.run_id,
                    c.model_id,
                    at,
                    c.data_version,
                    c.champion_id,
                    c.champion_ndcg_at_10,
                    c.champion_stored_ndcg_at_10,
                    c.new_ndcg_at_10,
                    c.decision.as_str(),
                    c.summary
                ],
            )
            .map_err(db::on(&self.path))?;
        Ok(())
    }

    fn champion_comparisons(&self, model_id: &str) -> Result<Vec<ChampionRecord>> {
        let conn = self.conn();
        let mut st = conn
            .prepare_cached(&format!(
                "SELECT {CHAMPION_COLUMNS} FROM champion_comparisons WHERE model_id = ?1 ORDER BY id"
            ))
            .map_err(db::on(&self.path))?;
        let rows: Vec<(ChampionRecord, String)> = st
            .query_map([model_id], |r| {
                let record = ChampionRecord {
                    run_id: r.get(0)?,
                    model_id: r.get(1)?,
                    compared_at: r.get(2)?,
                    data_version: r.get(3)?,
                    champion_id: r.get(4)?,
                    champion_ndcg_at_10: r.get(5)?,
                    champion_stored_ndcg_at_10: r.get(6)?,
                    new_ndcg_at_10: r.get(7)?,
                    decision: ChampionDecision::Kept,
                    summary: r.get(9)?,
                };
                Ok((record, r.get(8)?))
            })
            .and_then(|rows| rows.collect())
            .map_err(db::on(&self.path))?;
        rows.into_iter()
            .map(|(record, decision)| {
                Ok(ChampionRecord {
                    decision: decision.parse()?,
                    ..record
                })
            })
            .collect()
    }
}

fn require_running(tx: &rusqlite::Transaction<'_>, run_id: &str, path: &Path) -> Result<()> {
    let status: Option<Option<String>> = tx
        .query_row(
            "SELECT status FROM training_runs WHERE run_id = ?1",
            [run_id],
            |r| r.get(0),
        )
        .optional()
        .map_err(db::on(path))?;
    check_running(run_id, status)
}

const SELECT_TRAINING: &str = "SELECT run_id, model_type, started_at, completed_at, status, \
    hyperparameters, recall_at_10, ndcg_at_10, coverage, baseline_recall_at_10, improvement_pct, \
    training_time_seconds, data_version, git_commit, artifacts_path, model_id, registered_at, \
    registry_status FROM training_runs";

fn read_training(r: &Row<'_>) -> rusqlite::Result<TrainingRun> {
    let hyper: Option<String> = r.get(5)?;
    Ok(TrainingRun {
        run_id: r.get(0)?,
        model_type: r.get(1)?,
        started_at: r.get(2)?,
        completed_at: r.get(3)?,
        status: r.get::<_, Option<String>>(4)?.and_then(|s| s.parse().ok()),
        hyperparameters: hyper
            .and_then(|h| serde_json::from_str(&h).ok())
            .unwrap_or(Value::Null),
        recall_at_10: r.get(6)?,
        ndcg_at_10: r.get(7)?,
        coverage: r.get(8)?,
        baseline_recall_at_10: r.get(9)?,
        improvement_pct: r.get(10)?,
        training_time_seconds: r.get(11)?,
        data_version: r.get(12)?,
        git_commit: r.get(13)?,
        artifacts_path: r.get(14)?,
        model_id: r.get(15)?,
        registered_at: r.get(16)?,
        registry_status: r.get::<_, Option<String>>(17)?.and_then(|s| s.parse().ok()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone, Utc};
    use recops_core::FixedClock;
    use serde_json::json;

    type Fixture = (Box<dyn std::any::Any>, FixedClock, TrainingTracker);
    type Maker = fn() -> Fixture;

    fn start_clock() -> FixedClock {
        FixedClock::new(Utc.with_ymd_and_hms(2025, 1, 15, 10, 30, 0).unwrap())
    }

    fn sqlite() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let clock = start_clock();
        let t = TrainingTracker::open_path(&dir.path().join("training_metrics.db"), clock.shared())
            .unwrap();
        (Box::new(dir), clock, t)
    }

    fn postgres() -> Fixture {
        let pg = recops_testkit::PgCluster::shared().unwrap();
        let db = crate::PgDatabase::connect_new(&pg.fresh_database()).unwrap();
        let clock = start_clock();
        let t = TrainingTracker::with_store(
            Box::new(crate::PgTrainingStore::open(&db).unwrap()),
            clock.shared(),
        );
        (Box::new(db), clock, t)
    }

    recops_testkit::on_both_backends!(
        on_sqlite: sqlite, postgres;
        a_run_with_iterations_evaluation_and_registration,
        finished_runs_take_no_more_iterations_and_missing_runs_are_errors,
        list_runs_filters_by_type_newest_first,
        export_import_and_prune_keep_active_models,
        page_filters_by_type_and_status_with_a_keyset_cursor,
        champion_comparisons_are_recorded_read_back_and_pruned_with_their_run,
    );

    fn page_filters_by_type_and_status_with_a_keyset_cursor(tracker: Maker) {
        let (_d, clock, t) = tracker();
        let a = t.start_run(&new_run()).unwrap();
        t.fail_run(&a).unwrap();
        clock.advance(Duration::seconds(1));
        let b = t
            .start_run(&NewTrainingRun {
                model_type: "bpr".into(),
                ..new_run()
            })
            .unwrap();
        clock.advance(Duration::seconds(1));
        let c = t.start_run(&new_run()).unwrap();
        let ids = |q: &TrainingQuery| -> Vec<String> {
            t.store()
                .page(q)
                .unwrap()
                .into_iter()
                .map(|r| r.run_id)
                .collect()
        };
        let first = TrainingQuery {
            limit: 2,
            ..TrainingQuery::default()
        };
        assert_eq!(ids(&first), vec![c.clone(), b.clone()]);
        let b_started = t.get_run(&b).unwrap().unwrap().started_at.unwrap();
        let next = TrainingQuery {
            after: Some((b_started, b.clone())),
            ..first.clone()
        };
        assert_eq!(ids(&next), vec![a.clone()]);
        let als = TrainingQuery {
            model_type: Some("als".into()),
            limit: 10,
            ..TrainingQuery::default()
        };
        let als = ids(&als);
        assert_eq!(als, vec![c, a.clone()]);
        let failed = TrainingQuery {
            status: Some(TrainingStatus::Failed),
            limit: 10,
            ..TrainingQuery::default()
        };
        assert_eq!(ids(&failed), vec![a]);
        assert!(t.store().evaluations(10).unwrap().is_empty());
        let outcome = |recall| TrainingOutcome {
            recall_at_10: recall,
            ndcg_at_10: 0.2,
            coverage: 0.5,
            baseline_recall_at_10: 0.1,
            improvement_pct: 10.0,
            training_time_seconds: 1.0,
            artifacts_path: None,
        };
        t.complete_run(&b, &outcome(0.3)).unwrap();
        t.complete_run(&als[0], &outcome(0.4)).unwrap();
        let e = t.store().evaluations(10).unwrap();
        assert_eq!(
            e.iter().map(|p| p.recall_at_10).collect::<Vec<_>>(),
            vec![Some(0.3), Some(0.4)]
        );
        assert_eq!(e[0].baseline_recall_at_10, Some(0.1));
        let newest = t.store().evaluations(1).unwrap();
        assert_eq!(newest.len(), 1);
        assert_eq!(newest[0].recall_at_10, Some(0.4));
    }

    fn champion_comparisons_are_recorded_read_back_and_pruned_with_their_run(tracker: Maker) {
        let (_d, _clock, t) = tracker();
        let id = t.start_run(&new_run()).unwrap();
        t.complete_run(&id, &TrainingOutcome::default()).unwrap();
        let rec = ChampionRecord {
            run_id: id.clone(),
            model_id: "als_2".into(),
            compared_at: String::new(),
            data_version: Some("v2".into()),
            champion_id: Some("als_1".into()),
            champion_ndcg_at_10: Some(0.21),
            champion_stored_ndcg_at_10: Some(0.30),
            new_ndcg_at_10: 0.25,
            decision: ChampionDecision::Promoted,
            summary: "on the same split".into(),
        };
        t.record_champion_comparison(&rec).unwrap();
        let first = ChampionRecord {
            model_id: "als_1".into(),
            champion_id: None,
            champion_ndcg_at_10: None,
            champion_stored_ndcg_at_10: None,
            decision: ChampionDecision::Kept,
            ..rec.clone()
        };
        t.record_champion_comparison(&first).unwrap();
        let got = t.champion_comparisons("als_2").unwrap();
        assert_eq!(
            got,
            vec![ChampionRecord {
                compared_at: format_timestamp(
                    Utc.with_ymd_and_hms(2025, 1, 15, 10, 30, 0).unwrap()
                ),
                ..rec
            }]
        );
        assert_eq!(
            t.champion_comparisons("als_1").unwrap()[0].decision,
            ChampionDecision::Kept
        );
        assert!(t.champion_comparisons("nope").unwrap().is_empty());
        let later = Utc.with_ymd_and_hms(2025, 6, 1, 0, 0, 0).unwrap();
        assert_eq!(t.prune_finished_before(later).unwrap(), 1);
        assert!(t.champion_comparisons("als_2").unwrap().is_empty());
    }

    fn export_import_and_prune_keep_active_models(tracker: Maker) {
        let (_d, clock, t) = tracker();
        let a = t.start_run(&new_run()).unwrap();
        for i in 1..=3 {
            t.log_iteration(
                &a,
                &IterationRecord {
                    iteration: i,
                    loss: Some(1.0 / f64::from(i)),
                    wall_time_seconds: 0.5,
                    ..IterationRecord::default()
                },
            )
            .unwrap();
        }
        t.complete_run(&a, &TrainingOutcome::default()).unwrap();
        t.attach_registry(&a, "als_20250115_103000", RegistryStatus::Active)
            .unwrap();
        let b = t.start_run(&new_run()).unwrap();
        t.fail_run(&b).unwrap();
        let runs = t.store().export(None, 10).unwrap();
        assert_eq!(runs.len(), 2);
        let (_d2, _c2, other) = tracker();
        for r in &runs {
            let its = t.iterations(&r.run_id).unwrap();
            assert!(other.store().import(r, &its).unwrap());
            assert!(!other.store().import(r, &its).unwrap(), "imported twice");
        }
        assert_eq!(other.store().export(None, 10).unwrap(), runs);
        let copied: Vec<_> = other
            .iterations(&a)
            .unwrap()
            .into_iter()
            .map(|i| (i.iteration, i.loss, i.timestamp))
            .collect();
        let orig: Vec<_> = t
            .iterations(&a)
            .unwrap()
            .into_iter()
            .map(|i| (i.iteration, i.loss, i.timestamp))
            .collect();
        assert_eq!(copied, orig);
        clock.advance(Duration::days(30));
        // The failed run goes with its iterations; the active model's run stays.
        let cut = recops_core::Clock::now(&clock);
        assert_eq!(t.prune_finished_before(cut).unwrap(), 1);
        assert!(t.get_run(&b).unwrap().is_none());
        assert_eq!(t.iterations(&a).unwrap().len(), 3);
    }

    fn new_run() -> NewTrainingRun {
        NewTrainingRun {
            model_type: "als".into(),
            hyperparameters: json!({"factors": 64, "regularization": 0.05, "iterations": 15, "alpha": 10}),
            data_version: Some("d41d8cd9".into()),
            git_commit: None,
        }
    }

    fn a_run_with_iterations_evaluation_and_registration(tracker: Maker) {
        let (_d, clock, t) = tracker();
        let id = t.start_run(&new_run()).unwrap();
        for i in 1..=3 {
            clock.advance(Duration::seconds(15));
            t.log_iteration(
                &id,
                &IterationRecord {
                    iteration: i,
                    loss: Some(100.0 / f64::from(i)),
                    validation_recall: Some(0.1 * f64::from(i)),
                    validation_ndcg: Some(0.05 * f64::from(i)),
                    wall_time_seconds: 15.0,
                },
            )
            .unwrap();
        }
        t.complete_run(
            &id,
            &TrainingOutcome {
                recall_at_10: 0.234,
                ndcg_at_10: 0.189,
                coverage: 0.4,
                baseline_recall_at_10: 0.145,
                improvement_pct: 61.4,
                training_time_seconds: 45.2,
                artifacts_path: Some("artifacts/cf/als_20250115_103000".into()),
            },
        )
        .unwrap();
        t.attach_registry(&id, "als_20250115_103000", RegistryStatus::Active)
            .unwrap();
        let run = t.get_run(&id).unwrap().unwrap();
        assert_eq!(run.status, Some(TrainingStatus::Completed));
        assert_eq!(run.ndcg_at_10, Some(0.189));
        assert_eq!(run.hyperparameters["factors"], json!(64));
        assert_eq!(run.model_id.as_deref(), Some("als_20250115_103000"));
        assert_eq!(run.registry_status, Some(RegistryStatus::Active));
        assert_eq!(run.data_version.as_deref(), Some("d41d8cd9"));
        let its = t.iterations(&id).unwrap();
        assert_eq!(its.len(), 3);
        assert_eq!(its[2].iteration, 3);
        assert_eq!(its[0].loss, Some(100.0));
        assert_eq!(its[1].timestamp, "2025-01-15T10:30:30.000000+00:00");

        assert_eq!(
            t.set_registry_status("als_20250115_103000", RegistryStatus::Archived)
                .unwrap(),
            1
        );
        assert_eq!(
            t.get_run(&id).unwrap().unwrap().registry_status,
            Some(RegistryStatus::Archived)
        );
    }

    fn finished_runs_take_no_more_iterations_and_missing_runs_are_errors(tracker: Maker) {
        let (_d, _c, t) = tracker();
        let id = t.start_run(&new_run()).unwrap();
        t.fail_run(&id).unwrap();
        assert_eq!(
            t.get_run(&id).unwrap().unwrap().status,
            Some(TrainingStatus::Failed)
        );
        assert!(matches!(
            t.log_iteration(&id, &IterationRecord::default())
                .unwrap_err(),
            Error::RunAlreadyFinished { .. }
        ));
        assert!(matches!(
            t.fail_run("nope").unwrap_err(),
            Error::RunNotFound { .. }
        ));
        assert!(matches!(
            t.attach_registry("nope", "als_1", RegistryStatus::Failed)
                .unwrap_err(),
            Error::RunNotFound { .. }
        ));
    }

    fn list_runs_filters_by_type_newest_first(tracker: Maker) {
        let (_d, clock, t) = tracker();
        let a = t.start_run(&new_run()).unwrap();
        clock.advance(Duration::seconds(1));
        let b = t
            .start_run(&NewTrainingRun {
                model_type: "bpr".into(),
                ..new_run()
            })
            .unwrap();
        clock.advance(Duration::seconds(1));
        let c = t.start_run(&new_run()).unwrap();
        let all: Vec<_> = t
            .list_runs(None, 10)
            .unwrap()
            .into_iter()
            .map(|r| r.run_id)
            .collect();
        assert_eq!(all, vec![c.clone(), b, a.clone()]);
        let als: Vec<_> = t
            .list_runs(Some("als"), 10)
            .unwrap()
            .into_iter()
            .map(|r| r.run_id)
            .collect();
        assert_eq!(als, vec![c, a]);
    }

    #[test]
    fn schema_has_the_spec_columns() {
        let dir = tempfile::tempdir().unwrap();
        let t = SqliteTrainingStore::open(&dir.path().join("t.db")).unwrap();
        let cols = |table: &str| -> Vec<(String, String)> {
            t.conn()
                .prepare(&format!("PRAGMA table_info({table})"))
                .unwrap()
                .query_map([], |r| Ok((r.get(1)?, r.get(2)?)))
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap()
        };
        let names = |v: Vec<(String, String)>| {
            v.into_iter()
                .map(|(n, t)| format!("{n} {t}"))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            names(cols("training_runs")),
            [
                "run_id TEXT",
                "model_type TEXT",
                "started_at TIMESTAMP",
                "completed_at TIMESTAMP",
                "status TEXT",
                "hyperparameters TEXT",
                "recall_at_10 REAL",
                "ndcg_at_10 REAL",
                "coverage REAL",
                "baseline_recall_at_10 REAL",
                "improvement_pct REAL",
                "training_time_seconds REAL",
                "data_version TEXT",
                "git_commit TEXT",
                "artifacts_path TEXT",
                "model_id TEXT",
                "registered_at TIMESTAMP",
                "registry_status TEXT"
            ]
        );
        assert_eq!(
            names(cols("iteration_metrics")),
            [
                "id INTEGER",
                "run_id TEXT",
                "iteration INT",
                "timestamp TIMESTAMP",
                "loss REAL",
                "validation_recall REAL",
                "validation_ndcg REAL",
                "wall_time_seconds REAL"
            ]
        );
    }
}
