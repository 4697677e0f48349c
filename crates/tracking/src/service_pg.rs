//! [`PgRollupStore`]: the recommender's per-minute request rollups in PostgreSQL.

use std::path::Path;

use chrono::{DateTime, Utc};
use recops_core::{format_timestamp, parse_timestamp};

use crate::error::{Error, Result};
use crate::pg::PgDatabase;
use crate::service::{
    MinuteRollup, MinuteSummary, RollupStore, buckets_json, stored_histogram, to_i64, to_u64,
    truncate_minute,
};

/// Versioned migrations of the service metrics store in PostgreSQL: `request_rollups`
/// with the columns of the SQLite schema ([`SERVICE_MIGRATIONS`](crate::SERVICE_MIGRATIONS)).
/// Version 2 adds `instance` (the replica; `''` for the rows already there) to the
/// primary key.
pub const PG_SERVICE_MIGRATIONS: &[&str] = &[
    "\
CREATE TABLE IF NOT EXISTS request_rollups (
    minute TEXT COLLATE \"C\" NOT NULL,
    endpoint TEXT NOT NULL,
    model_id TEXT NOT NULL DEFAULT '',
    request_count BIGINT NOT NULL,
    error_count BIGINT NOT NULL,
    fallback_count BIGINT NOT NULL,
    latency_sum_ms DOUBLE PRECISION NOT NULL,
    latency_min_ms DOUBLE PRECISION,
    latency_max_ms DOUBLE PRECISION,
    latency_p50_ms DOUBLE PRECISION,
    latency_p95_ms DOUBLE PRECISION,
    latency_p99_ms DOUBLE PRECISION,
    latency_hist TEXT NOT NULL,
    PRIMARY KEY (minute, endpoint, model_id)
);
CREATE INDEX IF NOT EXISTS idx_rollups_minute ON request_rollups(minute);
",
    "\
ALTER TABLE request_rollups ADD COLUMN instance TEXT NOT NULL DEFAULT '';
ALTER TABLE request_rollups DROP CONSTRAINT request_rollups_pkey;
ALTER TABLE request_rollups ADD PRIMARY KEY (minute, endpoint, model_id, instance);
",
];

/// [`RollupStore`] in PostgreSQL.
#[derive(Debug, Clone)]
pub struct PgRollupStore {
    db: PgDatabase,
    /// What reads select as the instance: the column, or `''` in a version-1 schema
    /// opened read-only (a reader never migrates).
    instance_column: &'static str,
}

impl PgRollupStore {
    /// Opens the store, creating or migrating its table.
    pub fn open(db: &PgDatabase) -> Result<Self> {
        db.migrate("service", PG_SERVICE_MIGRATIONS)?;
        Ok(PgRollupStore {
            db: db.clone(),
            instance_column: "instance",
        })
    }

    /// Opens the store for reading only (the dashboard): never creates or migrates
    /// anything. `None` when its table does not exist yet; an error when it is newer
    /// than this build knows.
    pub fn open_existing(db: &PgDatabase) -> Result<Option<Self>> {
        if !db.schema_present("service", PG_SERVICE_MIGRATIONS)? {
            return Ok(None);
        }
        let has_instance: bool = db
            .conn()?
            .query_one(
                "SELECT EXISTS(SELECT 1 FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND table_name = 'request_rollups' \
                 AND column_name = 'instance')",
                &[],
            )
            .map_err(db.on())?
            .get(0);
        Ok(Some(PgRollupStore {
            db: db.clone(),
            instance_column: if has_instance { "instance" } else { "''" },
        }))
    }
}

impl RollupStore for PgRollupStore {
    fn summaries_since(&self, from: DateTime<Utc>, endpoint: &str) -> Result<Vec<MinuteSummary>> {
        let mut conn = self.db.conn()?;
        let on = self.db.on();
        let rows = conn
            .query(
                "SELECT minute, request_count, error_count, fallback_count, latency_p50_ms, \
                 latency_p95_ms, latency_p99_ms FROM request_rollups \
                 WHERE minute >= $1 AND endpoint = $2 ORDER BY minute",
                &[&format_timestamp(from), &endpoint],
            )
            .map_err(&on)?;
        rows.iter()
            .map(|r| -> std::result::Result<MinuteSummary, postgres::Error> {
                Ok(MinuteSummary {
                    minute: r.try_get(0)?,
                    request_count: to_u64(r.try_get(1)?),
                    error_count: to_u64(r.try_get(2)?),
                    fallback_count: to_u64(r.try_get(3)?),
                    p50_ms: r.try_get(4)?,
                    p95_ms: r.try_get(5)?,
                    p99_ms: r.try_get(6)?,
                })
            })
            .collect::<std::result::Result<_, _>>()
            .map_err(&on)
    }

    fn location(&self) -> String {
        self.db.url().to_owned()
    }

    fn record(&self, rollups: &[MinuteRollup]) -> Result<()> {
        // Rows locked in key order, so concurrent writers (replicas) cannot deadlock.
        let mut sorted: Vec<&MinuteRollup> = rollups.iter().collect();
        sorted.sort_by(|a, b| {
            (
                truncate_minute(a.minute),
                &a.endpoint,
                &a.model_id,
                &a.instance,
            )
                .cmp(&(
                    truncate_minute(b.minute),
                    &b.endpoint,
                    &b.model_id,
                    &b.instance,
                ))
        });
        let url = Path::new(self.db.url());
        self.db.transaction(|tx| {
            let on = self.db.on();
            for r in &sorted {
                let minute = format_timestamp(truncate_minute(r.minute));
                // An empty row first (a no-op when it exists), then the row locked and
                // merged: two writers of a new minute never overwrite each other.
                tx.execute(
                    "INSERT INTO request_rollups (minute, endpoint, model_id, instance, \
                     request_count, error_count, fallback_count, latency_sum_ms, latency_hist) \
                     VALUES ($1, $2, $3, $4, 0, 0, 0, 0, '[]') ON CONFLICT DO NOTHING",
                    &[&minute, &r.endpoint, &r.model_id, &r.instance],
                )
                .map_err(&on)?;
                let row = tx
                    .query_one(
                        "SELECT request_count, error_count, fallback_count, latency_sum_ms, \
                         latency_min_ms, latency_max_ms, latency_hist FROM request_rollups \
                         WHERE minute = $1 AND endpoint = $2 AND model_id = $3 AND instance = $4 \
                         FOR UPDATE",
                        &[&minute, &r.endpoint, &r.model_id, &r.instance],
                    )
                    .map_err(&on)?;
                let (mut requests, mut errors, mut fallbacks) =
                    (r.request_count, r.error_count, r.fallback_count);
                let mut hist = r.latency.clone();
                let rc: i64 = row.get(0);
                if rc > 0 {
                    requests += to_u64(rc);
                    errors += to_u64(row.get(1));
                    fallbacks += to_u64(row.get(2));
                    let buckets: String = row.get(6);
                    hist.merge(&stored_histogram(
                        url,
                        row.get(3),
                        row.get(4),
                        row.get(5),
                        &buckets,
                    )?);
                }
                tx.execute(
                    "UPDATE request_rollups SET request_count = $4, error_count = $5, \
                     fallback_count = $6, latency_sum_ms = $7, latency_min_ms = $8, \
                     latency_max_ms = $9, latency_p50_ms = $10, latency_p95_ms = $11, \
                     latency_p99_ms = $12, latency_hist = $13 \
                     WHERE minute = $1 AND endpoint = $2 AND model_id = $3 AND instance = $14",
                    &[
                        &minute,
                        &r.endpoint,
                        &r.model_id,
                        &to_i64(requests),
                        &to_i64(errors),
                        &to_i64(fallbacks),
                        &hist.sum_ms(),
                        &hist.min_ms(),
                        &hist.max_ms(),
                        &hist.quantile_ms(0.5),
                        &hist.quantile_ms(0.95),
                        &hist.quantile_ms(0.99),
                        &buckets_json(&hist),
                        &r.instance,
                    ],
                )
                .map_err(&on)?;
            }
            Ok(())
        })
    }

    fn rollups(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        endpoint: Option<&str>,
    ) -> Result<Vec<MinuteRollup>> {
        let mut conn = self.db.conn()?;
        // `instance_column` is one of two constants, never input.
        let sql = format!(
            "SELECT minute, endpoint, model_id, request_count, error_count, fallback_count, \
             latency_sum_ms, latency_min_ms, latency_max_ms, latency_hist, {0} FROM \
             request_rollups WHERE minute >= $1 AND minute < $2 \
             AND ($3::TEXT IS NULL OR endpoint = $3) ORDER BY 1, 2, 3, 11",
            self.instance_column
        );
        let rows = conn
            .query(
                &sql,
                &[&format_timestamp(from), &format_timestamp(to), &endpoint],
            )
            .map_err(self.db.on())?;
        let url = Path::new(self.db.url());
        rows.iter()
            .map(|row| {
                let minute: String = row.get(0);
                let buckets: String = row.get(9);
                Ok(MinuteRollup {
                    minute: parse_timestamp(&minute).ok_or_else(|| Error::InvalidInput {
                        what: "stored minute",
                        message: format!("{minute:?} in {} is not a timestamp", self.db.url()),
                    })?,
                    endpoint: row.get(1),
                    model_id: row.get(2),
                    instance: row.get(10),
                    request_count: to_u64(row.get(3)),
                    error_count: to_u64(row.get(4)),
                    fallback_count: to_u64(row.get(5)),
                    latency: stored_histogram(url, row.get(6), row.get(7), row.get(8), &buckets)?,
                })
            })
            .collect()
    }

    fn import(&self, rollups: &[MinuteRollup]) -> Result<usize> {
        self.db.transaction(|tx| {
            let mut n = 0;
            for r in rollups {
                let h = &r.latency;
                n += tx
                    .execute(
                        "INSERT INTO request_rollups (minute, endpoint, model_id, request_count, \
                         error_count, fallback_count, latency_sum_ms, latency_min_ms, \
                         latency_max_ms, latency_p50_ms, latency_p95_ms, latency_p99_ms, \
                         latency_hist, instance) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, \
                         $11, $12, $13, $14) ON CONFLICT DO NOTHING",
                        &[
                            &format_timestamp(truncate_minute(r.minute)),
                            &r.endpoint,
                            &r.model_id,
                            &to_i64(r.request_count),
                            &to_i64(r.error_count),
                            &to_i64(r.fallback_count),
                            &h.sum_ms(),
                            &h.min_ms(),
                            &h.max_ms(),
                            &h.quantile_ms(0.5),
                            &h.quantile_ms(0.95),
                            &h.quantile_ms(0.99),
                            &buckets_json(h),
                            &r.instance,
                        ],
                    )
                    .map_err(self.db.on())?;
            }
            Ok(usize::try_from(n).unwrap_or(usize::MAX))
        })
    }

    fn prune_before(&self, cutoff: DateTime<Utc>) -> Result<usize> {
        let mut conn = self.db.conn()?;
        let n = conn
            .execute(
                "DELETE FROM request_rollups WHERE minute < $1",
                &[&format_timestamp(cutoff)],
            )
            .map_err(self.db.on())?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }
}
