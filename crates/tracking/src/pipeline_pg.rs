//! [`PgPipelineStore`]: pipeline runs in PostgreSQL.

use chrono::{DateTime, Utc};
use postgres::Row;
use recops_core::format_timestamp;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::pg::PgDatabase;
use crate::pipeline::{
    Metadata, PipelineRun, PipelineStore, RunStatus, StatusCount, duration_since, finish_values,
    parse_metadata,
};

/// Versioned migrations of the pipeline store in PostgreSQL: the spec's
/// `pipeline_runs` with the same names and columns (timestamps as RFC 3339 text in
/// the C collation, so they sort as in SQLite; durations in double precision).
pub const PG_PIPELINE_MIGRATIONS: &[&str] = &["\
CREATE TABLE IF NOT EXISTS pipeline_runs (
    run_id TEXT COLLATE \"C\" PRIMARY KEY,
    pipeline_name TEXT NOT NULL,
    status TEXT NOT NULL,
    started_at TEXT COLLATE \"C\" NOT NULL,
    finished_at TEXT COLLATE \"C\",
    duration_seconds DOUBLE PRECISION,
    error_message TEXT,
    metadata TEXT
);
CREATE INDEX IF NOT EXISTS idx_pipeline_name_status ON pipeline_runs(pipeline_name, status);
CREATE INDEX IF NOT EXISTS idx_started_at ON pipeline_runs(started_at);
"];

const SELECT_RUN: &str = "SELECT run_id, pipeline_name, status, started_at, finished_at, \
                          duration_seconds, error_message, metadata FROM pipeline_runs";

/// [`PipelineStore`] in PostgreSQL.
#[derive(Debug, Clone)]
pub struct PgPipelineStore {
    db: PgDatabase,
}

impl PgPipelineStore {
    /// Opens the store, creating or migrating its table.
    pub fn open(db: &PgDatabase) -> Result<Self> {
        db.migrate("pipeline", PG_PIPELINE_MIGRATIONS)?;
        Ok(PgPipelineStore { db: db.clone() })
    }
}

fn read_run(r: &Row) -> Result<PipelineRun> {
    let status: String = r.try_get(2).map_err(pg_row)?;
    Ok(PipelineRun {
        run_id: r.try_get(0).map_err(pg_row)?,
        pipeline_name: r.try_get(1).map_err(pg_row)?,
        status: status.parse::<RunStatus>()?,
        started_at: r.try_get(3).map_err(pg_row)?,
        finished_at: r.try_get(4).map_err(pg_row)?,
        duration_seconds: r.try_get(5).map_err(pg_row)?,
        error_message: r.try_get(6).map_err(pg_row)?,
        metadata: parse_metadata(
            r.try_get::<_, Option<String>>(7)
                .map_err(pg_row)?
                .as_deref(),
        ),
    })
}

fn pg_row(e: postgres::Error) -> Error {
    Error::InvalidInput {
        what: "pipeline_runs row",
        message: e.to_string(),
    }
}

fn limit_i64(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

const INSERT: &str = "INSERT INTO pipeline_runs (run_id, pipeline_name, status, started_at, finished_at, \
     duration_seconds, error_message, metadata) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";

fn insert_params(run: &PipelineRun) -> (String, &'static str) {
    (
        Value::Object(run.metadata.clone()).to_string(),
        run.status.as_str(),
    )
}

impl PipelineStore for PgPipelineStore {
    fn location(&self) -> String {
        self.db.url().to_owned()
    }

    fn insert(&self, run: &PipelineRun) -> Result<()> {
        let (meta, status) = insert_params(run);
        let mut conn = self.db.conn()?;
        conn.execute(
            INSERT,
            &[
                &run.run_id,
                &run.pipeline_name,
                &status,
                &run.started_at,
                &run.finished_at,
                &run.duration_seconds,
                &run.error_message,
                &meta,
            ],
        )
        .map_err(self.db.on())?;
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
        self.db.transaction(|tx| {
            let on = self.db.on();
            let row = tx
                .query_opt(
                    "SELECT status, started_at, metadata FROM pipeline_runs WHERE run_id = $1 FOR UPDATE",
                    &[&run_id],
                )
                .map_err(&on)?;
            let Some(row) = row else {
                return Err(Error::RunNotFound {
                    run_id: run_id.to_owned(),
                });
            };
            let current: String = row.get(0);
            let started_at: String = row.get(1);
            let metadata: Option<String> = row.get(2);
            let (duration, meta) = finish_values(
                run_id,
                current,
                &started_at,
                metadata.as_deref(),
                now,
                extra.clone(),
            )?;
            tx.execute(
                "UPDATE pipeline_runs SET status = $1, finished_at = $2, duration_seconds = $3, \
                 error_message = $4, metadata = $5 WHERE run_id = $6",
                &[
                    &status.as_str(),
                    &format_timestamp(now),
                    &duration,
                    &error,
                    &meta,
                    &run_id,
                ],
            )
            .map_err(&on)?;
            Ok(())
        })
    }

    fn get(&self, run_id: &str) -> Result<Option<PipelineRun>> {
        let mut conn = self.db.conn()?;
        conn.query_opt(&format!("{SELECT_RUN} WHERE run_id = $1"), &[&run_id])
            .map_err(self.db.on())?
            .as_ref()
            .map(read_run)
            .transpose()
    }

    fn recent(
        &self,
        pipeline_name: Option<&str>,
        limit: usize,
        status: Option<RunStatus>,
    ) -> Result<Vec<PipelineRun>> {
        let mut conn = self.db.conn()?;
        let status = status.map(RunStatus::as_str);
        conn.query(
            &format!(
                "{SELECT_RUN} WHERE ($1::TEXT IS NULL OR pipeline_name = $1) \
                 AND ($2::TEXT IS NULL OR status = $2) \
                 ORDER BY started_at DESC, run_id DESC LIMIT $3"
            ),
            &[&pipeline_name, &status, &limit_i64(limit)],
        )
        .map_err(self.db.on())?
        .iter()
        .map(read_run)
        .collect()
    }

    fn counts_since(&self, cutoff: &str) -> Result<Vec<StatusCount>> {
        let mut conn = self.db.conn()?;
        Ok(conn
            .query(
                "SELECT pipeline_name, status, COUNT(*), AVG(duration_seconds) FROM pipeline_runs \
                 WHERE started_at >= $1 GROUP BY pipeline_name, status",
                &[&cutoff],
            )
            .map_err(self.db.on())?
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
            .collect())
    }

    fn is_running(&self, pipeline_name: &str) -> Result<bool> {
        let mut conn = self.db.conn()?;
        Ok(conn
            .query_one(
                "SELECT EXISTS(SELECT 1 FROM pipeline_runs WHERE pipeline_name = $1 AND status = 'running')",
                &[&pipeline_name],
            )
            .map_err(self.db.on())?
            .get(0))
    }

    fn fail_stale(
        &self,
        cutoff: DateTime<Utc>,
        now: DateTime<Utc>,
        message: &str,
    ) -> Result<Vec<(String, String)>> {
        self.db.transaction(|tx| {
            let on = self.db.on();
            let stale: Vec<(String, String)> = tx
                .query(
                    "SELECT run_id, started_at FROM pipeline_runs WHERE status = 'running' \
                     AND started_at < $1 ORDER BY run_id FOR UPDATE",
                    &[&format_timestamp(cutoff)],
                )
                .map_err(&on)?
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect();
            for (run_id, started_at) in &stale {
                tx.execute(
                    "UPDATE pipeline_runs SET status = 'failed', finished_at = $1, duration_seconds = $2, \
                     error_message = $3 WHERE run_id = $4",
                    &[&format_timestamp(now), &duration_since(started_at, now), &message, run_id],
                )
                .map_err(&on)?;
            }
            Ok(stale)
        })
    }

    fn prune_finished_before(&self, cutoff: DateTime<Utc>) -> Result<usize> {
        let mut conn = self.db.conn()?;
        let n = conn
            .execute(
                "DELETE FROM pipeline_runs WHERE status != 'running' AND started_at < $1",
                &[&format_timestamp(cutoff)],
            )
            .map_err(self.db.on())?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    fn export(&self, after: Option<&str>, limit: usize) -> Result<Vec<PipelineRun>> {
        let mut conn = self.db.conn()?;
        conn.query(
            &format!(
                "{SELECT_RUN} WHERE ($1::TEXT IS NULL OR run_id > $1) ORDER BY run_id LIMIT $2"
            ),
            &[&after, &limit_i64(limit)],
        )
        .map_err(self.db.on())?
        .iter()
        .map(read_run)
        .collect()
    }

    fn import(&self, runs: &[PipelineRun]) -> Result<usize> {
        self.db.transaction(|tx| {
            let st = tx
                .prepare(&format!("{INSERT} ON CONFLICT (run_id) DO NOTHING"))
                .map_err(self.db.on())?;
            let mut n = 0;
            for run in runs {
                let (meta, status) = insert_params(run);
                n += tx
                    .execute(
                        &st,
                        &[
                            &run.run_id,
                            &run.pipeline_name,
                            &status,
                            &run.started_at,
                            &run.finished_at,
                            &run.duration_seconds,
                            &run.error_message,
                            &meta,
                        ],
                    )
                    .map_err(self.db.on())?;
            }
            Ok(usize::try_from(n).unwrap_or(usize::MAX))
        })
    }
}
