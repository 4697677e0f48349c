//! [`PgTrainingStore`]: training runs and iterations in PostgreSQL.

use postgres::types::ToSql;
use postgres::{GenericClient, Row};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::pg::PgDatabase;
use crate::training::{
    CHAMPION_COLUMNS, ChampionRecord, EVALUATIONS, EvaluationPoint, IterationMetric,
    IterationRecord, RegistryStatus, TrainingOutcome, TrainingQuery, TrainingRun, TrainingStatus,
    TrainingStore, check_running,
};

/// Versioned migrations of the training store in PostgreSQL: the spec's
/// `training_runs` and `iteration_metrics` with the same names and columns
/// (timestamps as RFC 3339 text in the C collation, as in SQLite; REAL columns in
/// double precision; the iteration id a BIGSERIAL); version 2 adds
/// `champion_comparisons`, as in SQLite.
pub const PG_TRAINING_MIGRATIONS: &[&str] = &[
    "\
CREATE TABLE IF NOT EXISTS training_runs (
    run_id TEXT COLLATE \"C\" PRIMARY KEY,
    model_type TEXT,
    started_at TEXT COLLATE \"C\",
    completed_at TEXT COLLATE \"C\",
    status TEXT,
    hyperparameters TEXT,
    recall_at_10 DOUBLE PRECISION,
    ndcg_at_10 DOUBLE PRECISION,
    coverage DOUBLE PRECISION,
    baseline_recall_at_10 DOUBLE PRECISION,
    improvement_pct DOUBLE PRECISION,
    training_time_seconds DOUBLE PRECISION,
    data_version TEXT,
    git_commit TEXT,
    artifacts_path TEXT,
    model_id TEXT,
    registered_at TEXT COLLATE \"C\",
    registry_status TEXT
);
CREATE TABLE IF NOT EXISTS iteration_metrics (
    id BIGSERIAL PRIMARY KEY,
    run_id TEXT COLLATE \"C\" REFERENCES training_runs(run_id),
    iteration INTEGER,
    timestamp TEXT COLLATE \"C\",
    loss DOUBLE PRECISION,
    validation_recall DOUBLE PRECISION,
    validation_ndcg DOUBLE PRECISION,
    wall_time_seconds DOUBLE PRECISION
);
CREATE INDEX IF NOT EXISTS idx_iteration_metrics_run ON iteration_metrics(run_id, iteration);
",
    "\
CREATE TABLE IF NOT EXISTS champion_comparisons (
    id BIGSERIAL PRIMARY KEY,
    run_id TEXT COLLATE \"C\" REFERENCES training_runs(run_id),
    model_id TEXT,
    compared_at TEXT COLLATE \"C\",
    data_version TEXT,
    champion_id TEXT,
    champion_ndcg_at_10 DOUBLE PRECISION,
    champion_stored_ndcg_at_10 DOUBLE PRECISION,
    new_ndcg_at_10 DOUBLE PRECISION,
    decision TEXT,
    summary TEXT
);
CREATE INDEX IF NOT EXISTS idx_champion_comparisons_model ON champion_comparisons(model_id);
",
];

const SELECT_TRAINING: &str = "SELECT run_id, model_type, started_at, completed_at, status, \
    hyperparameters, recall_at_10, ndcg_at_10, coverage, baseline_recall_at_10, improvement_pct, \
    training_time_seconds, data_version, git_commit, artifacts_path, model_id, registered_at, \
    registry_status FROM training_runs";

const INSERT_TRAINING: &str = "INSERT INTO training_runs (run_id, model_type, started_at, \
    completed_at, status, hyperparameters, recall_at_10, ndcg_at_10, coverage, \
    baseline_recall_at_10, improvement_pct, training_time_seconds, data_version, git_commit, \
    artifacts_path, model_id, registered_at, registry_status) VALUES \
    ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)";

const INSERT_ITERATION: &str = "INSERT INTO iteration_metrics (run_id, iteration, timestamp, loss, \
    validation_recall, validation_ndcg, wall_time_seconds) VALUES ($1, $2, $3, $4, $5, $6, $7)";

/// [`TrainingStore`] in PostgreSQL.
#[derive(Debug, Clone)]
pub struct PgTrainingStore {
    db: PgDatabase,
}

impl PgTrainingStore {
    /// Opens the store, creating or migrating its tables.
    pub fn open(db: &PgDatabase) -> Result<Self> {
        db.migrate("training", PG_TRAINING_MIGRATIONS)?;
        Ok(PgTrainingStore { db: db.clone() })
    }

    /// Opens the store for reading only (the dashboard): never creates or migrates
    /// anything. `None` when its tables do not exist yet; an error when they are newer
    /// than this build knows.
    pub fn open_existing(db: &PgDatabase) -> Result<Option<Self>> {
        Ok(db
            .schema_present("training", PG_TRAINING_MIGRATIONS)?
            .then(|| PgTrainingStore { db: db.clone() }))
    }

    fn insert_on(
        &self,
        c: &mut impl GenericClient,
        run: &TrainingRun,
        or_ignore: bool,
    ) -> Result<bool> {
        let status = run.status.map(TrainingStatus::as_str);
        let registry = run.registry_status.map(RegistryStatus::as_str);
        let hyper = run.hyperparameters.to_string();
        let sql = if or_ignore {
            format!("{INSERT_TRAINING} ON CONFLICT (run_id) DO NOTHING")
        } else {
            INSERT_TRAINING.to_owned()
        };
        let params: [&(dyn ToSql + Sync); 18] = [
            &run.run_id,
            &run.model_type,
            &run.started_at,
            &run.completed_at,
            &status,
            &hyper,
            &run.recall_at_10,
            &run.ndcg_at_10,
            &run.coverage,
            &run.baseline_recall_at_10,
            &run.improvement_pct,
            &run.training_time_seconds,
            &run.data_version,
            &run.git_commit,
            &run.artifacts_path,
            &run.model_id,
            &run.registered_at,
            &registry,
        ];
        Ok(c.execute(&sql, &params).map_err(self.db.on())? > 0)
    }
}

fn get<'a, T: postgres::types::FromSql<'a>>(r: &'a Row, i: usize) -> Result<T> {
    r.try_get(i).map_err(|e| Error::InvalidInput {
        what: "training_runs row",
        message: e.to_string(),
    })
}

fn read_training(r: &Row) -> Result<TrainingRun> {
    let hyper: Option<String> = get(r, 5)?;
    Ok(TrainingRun {
        run_id: get(r, 0)?,
        model_type: get(r, 1)?,
        started_at: get(r, 2)?,
        completed_at: get(r, 3)?,
        status: get::<Option<String>>(r, 4)?.and_then(|s| s.parse().ok()),
        hyperparameters: hyper
            .and_then(|h| serde_json::from_str(&h).ok())
            .unwrap_or(Value::Null),
        recall_at_10: get(r, 6)?,
        ndcg_at_10: get(r, 7)?,
        coverage: get(r, 8)?,
        baseline_recall_at_10: get(r, 9)?,
        improvement_pct: get(r, 10)?,
        training_time_seconds: get(r, 11)?,
        data_version: get(r, 12)?,
        git_commit: get(r, 13)?,
        artifacts_path: get(r, 14)?,
        model_id: get(r, 15)?,
        registered_at: get(r, 16)?,
        registry_status: get::<Option<String>>(r, 17)?.and_then(|s| s.parse().ok()),
    })
}

fn read_iteration(r: &Row) -> Result<IterationMetric> {
    Ok(IterationMetric {
        id: get(r, 0)?,
        run_id: get(r, 1)?,
        iteration: u32::try_from(get::<i32>(r, 2)?).unwrap_or(0),
        timestamp: get(r, 3)?,
        loss: get(r, 4)?,
        validation_recall: get(r, 5)?,
        validation_ndcg: get(r, 6)?,
        wall_time_seconds: get(r, 7)?,
    })
}

fn limit_i64(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

impl PgTrainingStore {
    /// Locks the run's row and checks it is running.
    fn require_running(&self, tx: &mut postgres::Transaction<'_>, run_id: &str) -> Result<()> {
        let status = tx
            .query_opt(
                "SELECT status FROM training_runs WHERE run_id = $1 FOR UPDATE",
                &[&run_id],
            )
            .map_err(self.db.on())?
            .map(|r| r.get::<_, Option<String>>(0));
        check_running(run_id, status)
    }
}

impl TrainingStore for PgTrainingStore {
    fn evaluations(&self, limit: usize) -> Result<Vec<EvaluationPoint>> {
        let mut conn = self.db.conn()?;
        conn.query(EVALUATIONS, &[&limit_i64(limit)])
            .map_err(self.db.on())?
            .iter()
            .map(|r| {
                Ok(EvaluationPoint {
                    started_at: get(r, 0)?,
                    recall_at_10: get(r, 1)?,
                    baseline_recall_at_10: get(r, 2)?,
                    ndcg_at_10: get(r, 3)?,
                })
            })
            .collect()
    }

    fn page(&self, q: &TrainingQuery) -> Result<Vec<TrainingRun>> {
        let mut conn = self.db.conn()?;
        let status = q.status.map(TrainingStatus::as_str);
        let (at, id) = match &q.after {
            Some((at, id)) => (Some(at.as_str()), Some(id.as_str())),
            None => (None, None),
        };
        conn.query(
            &format!(
                "{SELECT_TRAINING} WHERE ($1::TEXT IS NULL OR model_type = $1) \
                 AND ($2::TEXT IS NULL OR status = $2) \
                 AND ($3::TEXT IS NULL OR (started_at, run_id) < ($3, $4::TEXT)) \
                 ORDER BY started_at DESC, run_id DESC LIMIT $5"
            ),
            &[&q.model_type, &status, &at, &id, &limit_i64(q.limit)],
        )
        .map_err(self.db.on())?
        .iter()
        .map(read_training)
        .collect()
    }

    fn location(&self) -> String {
        self.db.url().to_owned()
    }

    fn insert(&self, run: &TrainingRun) -> Result<()> {
        let mut conn = self.db.conn()?;
        self.insert_on(&mut *conn, run, false)?;
        Ok(())
    }

    fn log_iteration(&self, run_id: &str, it: &IterationRecord, at: &str) -> Result<()> {
        self.db.transaction(|tx| {
            self.require_running(tx, run_id)?;
            let iteration = i32::try_from(it.iteration).unwrap_or(i32::MAX);
            tx.execute(
                INSERT_ITERATION,
                &[
                    &run_id,
                    &iteration,
                    &at,
                    &it.loss,
                    &it.validation_recall,
                    &it.validation_ndcg,
                    &it.wall_time_seconds,
                ],
            )
            .map_err(self.db.on())?;
            Ok(())
        })
    }

    fn complete(&self, run_id: &str, outcome: &TrainingOutcome, at: &str) -> Result<()> {
        self.db.transaction(|tx| {
            self.require_running(tx, run_id)?;
            tx.execute(
                "UPDATE training_runs SET status = 'completed', completed_at = $1, recall_at_10 = $2, \
                 ndcg_at_10 = $3, coverage = $4, baseline_recall_at_10 = $5, improvement_pct = $6, \
                 training_time_seconds = $7, artifacts_path = $8 WHERE run_id = $9",
                &[
                    &at,
                    &outcome.recall_at_10,
                    &outcome.ndcg_at_10,
                    &outcome.coverage,
                    &outcome.baseline_recall_at_10,
                    &outcome.improvement_pct,
                    &outcome.training_time_seconds,
                    &outcome.artifacts_path,
                    &run_id,
                ],
            )
            .map_err(self.db.on())?;
            Ok(())
        })
    }

    fn fail(&self, run_id: &str, at: &str) -> Result<()> {
        self.db.transaction(|tx| {
            self.require_running(tx, run_id)?;
            tx.execute(
                "UPDATE training_runs SET status = 'failed', completed_at = $1 WHERE run_id = $2",
                &[&at, &run_id],
            )
            .map_err(self.db.on())?;
            Ok(())
        })
    }

    fn attach_registry(
        &self,
        run_id: &str,
        model_id: &str,
        at: &str,
        status: RegistryStatus,
    ) -> Result<bool> {
        let mut conn = self.db.conn()?;
        let n = conn
            .execute(
                "UPDATE training_runs SET model_id = $1, registered_at = $2, registry_status = $3 \
                 WHERE run_id = $4",
                &[&model_id, &at, &status.as_str(), &run_id],
            )
            .map_err(self.db.on())?;
        Ok(n > 0)
    }

    fn set_registry_status(&self, model_id: &str, status: RegistryStatus) -> Result<usize> {
        let mut conn = self.db.conn()?;
        let n = conn
            .execute(
                "UPDATE training_runs SET registry_status = $1 WHERE model_id = $2",
                &[&status.as_str(), &model_id],
            )
            .map_err(self.db.on())?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    fn get(&self, run_id: &str) -> Result<Option<TrainingRun>> {
        let mut conn = self.db.conn()?;
        conn.query_opt(&format!("{SELECT_TRAINING} WHERE run_id = $1"), &[&run_id])
            .map_err(self.db.on())?
            .as_ref()
            .map(read_training)
            .transpose()
    }

    fn list(&self, model_type: Option<&str>, limit: usize) -> Result<Vec<TrainingRun>> {
        let mut conn = self.db.conn()?;
        conn.query(
            &format!(
                "{SELECT_TRAINING} WHERE ($1::TEXT IS NULL OR model_type = $1) \
                 ORDER BY started_at DESC, run_id DESC LIMIT $2"
            ),
            &[&model_type, &limit_i64(limit)],
        )
        .map_err(self.db.on())?
        .iter()
        .map(read_training)
        .collect()
    }

    fn prune_finished_before(&self, cutoff: &str) -> Result<usize> {
        let which = crate::training::PRUNABLE.replace("?1", "$1");
        self.db.transaction(|tx| {
            for table in ["iteration_metrics", "champion_comparisons"] {
                tx.execute(
                    &format!(
                        "DELETE FROM {table} WHERE run_id IN \
                         (SELECT run_id FROM training_runs WHERE {which})"
                    ),
                    &[&cutoff],
                )
                .map_err(self.db.on())?;
            }
            let n = tx
                .execute(
                    &format!("DELETE FROM training_runs WHERE {which}"),
                    &[&cutoff],
                )
                .map_err(self.db.on())?;
            Ok(usize::try_from(n).unwrap_or(usize::MAX))
        })
    }

    fn iterations(&self, run_id: &str) -> Result<Vec<IterationMetric>> {
        let mut conn = self.db.conn()?;
        conn.query(
            "SELECT id, run_id, iteration, timestamp, loss, validation_recall, validation_ndcg, \
             wall_time_seconds FROM iteration_metrics WHERE run_id = $1 ORDER BY iteration, id",
            &[&run_id],
        )
        .map_err(self.db.on())?
        .iter()
        .map(read_iteration)
        .collect()
    }

    fn export(&self, after: Option<&str>, limit: usize) -> Result<Vec<TrainingRun>> {
        let mut conn = self.db.conn()?;
        conn.query(
            &format!(
                "{SELECT_TRAINING} WHERE ($1::TEXT IS NULL OR run_id > $1) ORDER BY run_id LIMIT $2"
            ),
            &[&after, &limit_i64(limit)],
        )
        .map_err(self.db.on())?
        .iter()
        .map(read_training)
        .collect()
    }

    fn import(&self, run: &TrainingRun, iterations: &[IterationMetric]) -> Result<bool> {
        self.db.transaction(|tx| {
            let inserted = self.insert_on(tx, run, true)?;
            if inserted {
                for it in iterations {
                    let iteration = i32::try_from(it.iteration).unwrap_or(i32::MAX);
                    tx.execute(
                        INSERT_ITERATION,
                        &[
                            &it.run_id,
                            &iteration,
                            &it.timestamp,
                            &it.loss,
                            &it.validation_recall,
                            &it.validation_ndcg,
                            &it.wall_time_seconds,
                        ],
                    )
                    .map_err(self.db.on())?;
                }
            }
            Ok(inserted)
        })
    }

    fn record_champion(&self, c: &ChampionRecord, at: &str) -> Result<()> {
        let mut conn = self.db.conn()?;
        conn.execute(
            &format!(
                "INSERT INTO champion_comparisons ({CHAMPION_COLUMNS}) VALUES \
                 ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
            ),
            &[
                &c.run_id,
                &c.model_id,
                &at,
                &c.data_version,
                &c.champion_id,
                &c.champion_ndcg_at_10,
                &c.champion_stored_ndcg_at_10,
                &c.new_ndcg_at_10,
                &c.decision.as_str(),
                &c.summary,
            ],
        )
        .map_err(self.db.on())?;
        Ok(())
    }

    fn champion_comparisons(&self, model_id: &str) -> Result<Vec<ChampionRecord>> {
        let mut conn = self.db.conn()?;
        conn.query(
            &format!(
                "SELECT {CHAMPION_COLUMNS} FROM champion_comparisons WHERE model_id = $1 ORDER BY id"
            ),
            &[&model_id],
        )
        .map_err(self.db.on())?
        .iter()
        .map(|r| {
            Ok(ChampionRecord {
                run_id: get(r, 0)?,
                model_id: get(r, 1)?,
                compared_at: get(r, 2)?,
                data_version: get(r, 3)?,
                champion_id: get(r, 4)?,
                champion_ndcg_at_10: get(r, 5)?,
                champion_stored_ndcg_at_10: get(r, 6)?,
                new_ndcg_at_10: get(r, 7)?,
                decision: get::<String>(r, 8)?.parse()?,
                summary: get(r, 9)?,
            })
        })
        .collect()
    }
}
