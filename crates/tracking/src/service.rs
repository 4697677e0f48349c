//! `ServiceMetricsStore`: per-minute request rollups of the recommender service in
//! `logs/service_metrics.db`, and the window metrics the alert rules read.
//!
//! Each recommender replica writes its own rows, labelled by its `instance`
//! (`service.instance`, default `<host name>:<port>`, the label on its `/metrics`);
//! rows written before instances existed (schema version 1) keep the instance `""`.
//! [`ServiceMetricsStore::window`] aggregates over every instance: counts are summed
//! and percentiles come from the merged latency histograms, never averaged;
//! [`ServiceMetricsStore::window_by_instance`] gives the same figures per instance.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use recops_core::{Home, format_timestamp, parse_timestamp};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde::{Deserialize, Serialize};

use crate::db;
use crate::error::{Error, Result};
use crate::histogram::LatencyHistogram;

/// Schema version 1 of `service_metrics.db` (see [`SERVICE_MIGRATIONS`] for the
/// current one).
///
/// One row per (minute, endpoint, model_id). The latency histogram is stored as JSON
/// `[[bucket, count], ...]` (see [`LatencyHistogram`]) so percentiles of any window are
/// exact merges of its minutes; p50/p95/p99 of the minute are also stored for plain SQL.
pub const SERVICE_SCHEMA: &str = "\
CREATE TABLE IF NOT EXISTS request_rollups (
    minute TEXT NOT NULL,              -- RFC 3339 UTC start of the minute
    endpoint TEXT NOT NULL,            -- route, e.g. /recommend
    model_id TEXT NOT NULL DEFAULT '', -- model that served ('' when none)
    request_count INTEGER NOT NULL,
    error_count INTEGER NOT NULL,      -- responses with status >= 500
    fallback_count INTEGER NOT NULL,   -- popularity fallbacks (unknown users)
    latency_sum_ms REAL NOT NULL,
    latency_min_ms REAL,
    latency_max_ms REAL,
    latency_p50_ms REAL,
    latency_p95_ms REAL,
    latency_p99_ms REAL,
    latency_hist TEXT NOT NULL,        -- JSON [[bucket, count], ...]
    PRIMARY KEY (minute, endpoint, model_id)
);

CREATE INDEX IF NOT EXISTS idx_rollups_minute ON request_rollups(minute);
";

/// Schema version 2: the `instance` column (the replica that served; `''` for rows of
/// version 1) joins the primary key, so replicas keep separate rows. SQLite cannot
/// change a primary key in place: the table is rebuilt, every row copied.
pub const SERVICE_SCHEMA_V2: &str = "\
CREATE TABLE request_rollups_v2 (
    minute TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    model_id TEXT NOT NULL DEFAULT '',
    instance TEXT NOT NULL DEFAULT '', -- replica (service.instance), '' before v2
    request_count INTEGER NOT NULL,
    error_count INTEGER NOT NULL,
    fallback_count INTEGER NOT NULL,
    latency_sum_ms REAL NOT NULL,
    latency_min_ms REAL,
    latency_max_ms REAL,
    latency_p50_ms REAL,
    latency_p95_ms REAL,
    latency_p99_ms REAL,
    latency_hist TEXT NOT NULL,
    PRIMARY KEY (minute, endpoint, model_id, instance)
);
INSERT INTO request_rollups_v2 (minute, endpoint, model_id, instance, request_count,
    error_count, fallback_count, latency_sum_ms, latency_min_ms, latency_max_ms,
    latency_p50_ms, latency_p95_ms, latency_p99_ms, latency_hist)
SELECT minute, endpoint, model_id, '', request_count, error_count, fallback_count,
    latency_sum_ms, latency_min_ms, latency_max_ms, latency_p50_ms, latency_p95_ms,
    latency_p99_ms, latency_hist FROM request_rollups;
DROP TABLE request_rollups;
ALTER TABLE request_rollups_v2 RENAME TO request_rollups;
CREATE INDEX IF NOT EXISTS idx_rollups_minute ON request_rollups(minute);
";

/// The migrations of `service_metrics.db`: `[i]` takes `user_version` i to i + 1.
pub const SERVICE_MIGRATIONS: &[&str] = &[SERVICE_SCHEMA, SERVICE_SCHEMA_V2];

/// The requests of one endpoint and model served by one replica during one minute.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MinuteRollup {
    /// Start of the minute (seconds are truncated when stored).
    pub minute: DateTime<Utc>,
    /// Route (`/recommend`).
    pub endpoint: String,
    /// Model that served, `""` when none.
    pub model_id: String,
    /// The replica that served (`service.instance`); `""` for rows written before
    /// replicas were told apart.
    #[serde(default)]
    pub instance: String,
    /// Requests.
    pub request_count: u64,
    /// Responses with status >= 500.
    pub error_count: u64,
    /// Responses that fell back to popular items.
    pub fallback_count: u64,
    /// Latencies of the requests.
    pub latency: LatencyHistogram,
}

/// The counts and stored percentiles of one rollup row: what charts need, without
/// decoding its histogram.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MinuteSummary {
    /// Start of the minute, as stored (RFC 3339).
    pub minute: String,
    /// Requests.
    pub request_count: u64,
    /// Responses with status >= 500.
    pub error_count: u64,
    /// Responses that fell back to popular items.
    pub fallback_count: u64,
    /// Median latency of the minute.
    pub p50_ms: Option<f64>,
    /// 95th percentile latency of the minute.
    pub p95_ms: Option<f64>,
    /// 99th percentile latency of the minute.
    pub p99_ms: Option<f64>,
}

/// Metrics of a time window, as the alert rules of the spec read them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowMetrics {
    /// Window start (inclusive).
    pub from: DateTime<Utc>,
    /// Window end (exclusive).
    pub to: DateTime<Utc>,
    /// Requests in the window.
    pub request_count: u64,
    /// Server errors.
    pub error_count: u64,
    /// Fallbacks.
    pub fallback_count: u64,
    /// Mean latency; `None` without requests.
    pub avg_latency_ms: Option<f64>,
    /// Median latency.
    pub p50_latency_ms: Option<f64>,
    /// 95th percentile latency.
    pub p95_latency_ms: Option<f64>,
    /// 99th percentile latency.
    pub p99_latency_ms: Option<f64>,
    /// `error_count / request_count`; `None` without requests.
    pub error_rate: Option<f64>,
    /// `fallback_count / request_count`; `None` without requests.
    pub fallback_rate: Option<f64>,
}

impl WindowMetrics {
    /// Aggregates `rows`: counts summed, latencies from their merged histograms.
    pub fn of(from: DateTime<Utc>, to: DateTime<Utc>, rows: &[MinuteRollup]) -> Self {
        let mut hist = LatencyHistogram::new();
        let (mut requests, mut errors, mut fallbacks) = (0u64, 0u64, 0u64);
        for r in rows {
            requests += r.request_count;
            errors += r.error_count;
            fallbacks += r.fallback_count;
            hist.merge(&r.latency);
        }
        let rate = |n: u64| (requests > 0).then(|| n as f64 / requests as f64);
        WindowMetrics {
            from,
            to,
            request_count: requests,
            error_count: errors,
            fallback_count: fallbacks,
            avg_latency_ms: hist.mean_ms(),
            p50_latency_ms: hist.quantile_ms(0.5),
            p95_latency_ms: hist.quantile_ms(0.95),
            p99_latency_ms: hist.quantile_ms(0.99),
            error_rate: rate(errors),
            fallback_rate: rate(fallbacks),
        }
    }

    /// The metrics by the names alert rules use (`avg_latency_ms`, `p95_latency_ms`,
    /// `p99_latency_ms`, `error_rate`, `fallback_rate`, `request_count`). Metrics that
    /// are undefined for an empty window are left out, so no rule fires on them.
    pub fn alert_metrics(&self) -> BTreeMap<String, f64> {
        let mut m = BTreeMap::new();
        m.insert("request_count".to_owned(), self.request_count as f64);
        for (name, v) in [
            ("avg_latency_ms", self.avg_latency_ms),
            ("p50_latency_ms", self.p50_latency_ms),
            ("p95_latency_ms", self.p95_latency_ms),
            ("p99_latency_ms", self.p99_latency_ms),
            ("error_rate", self.error_rate),
            ("fallback_rate", self.fallback_rate),
        ] {
            if let Some(v) = v {
                m.insert(name.to_owned(), v);
            }
        }
        m
    }
}

/// The requests of a window per replica and over all of them (`recops stats`, the
/// dashboard's service page). Its `Display` is a table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceReport {
    /// Every instance together (what the health check and the alert rules read).
    pub total: WindowMetrics,
    /// Per instance, in instance order; `""` holds rows of before instances.
    pub instances: BTreeMap<String, WindowMetrics>,
}

impl std::fmt::Display for InstanceReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.1}"));
        let pct = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{:.1}%", v * 100.0));
        writeln!(
            f,
            "{:<28} {:>9} {:>7} {:>9} {:>8} {:>8} {:>8}",
            "instance", "requests", "errors", "fallback", "avg ms", "p95 ms", "p99 ms"
        )?;
        let all = [("(all)", &self.total)];
        let rows = self
            .instances
            .iter()
            .map(|(i, m)| {
                (
                    if i.is_empty() {
                        "(before instances)"
                    } else {
                        i.as_str()
                    },
                    m,
                )
            })
            .chain(all);
        for (name, m) in rows {
            writeln!(
                f,
                "{:<28} {:>9} {:>7} {:>9} {:>8} {:>8} {:>8}",
                name,
                m.request_count,
                m.error_count,
                pct(m.fallback_rate),
                ms(m.avg_latency_ms),
                ms(m.p95_latency_ms),
                ms(m.p99_latency_ms)
            )?;
        }
        Ok(())
    }
}

/// Where per-minute request rollups are kept: `request_rollups` in SQLite
/// ([`SqliteRollupStore`], `logs/service_metrics.db`) or PostgreSQL
/// ([`PgRollupStore`](crate::PgRollupStore)). [`ServiceMetricsStore`] adds the window
/// aggregation; callers use it.
pub trait RollupStore: Send + Sync + std::fmt::Debug {
    /// The file or URL, for messages.
    fn location(&self) -> String;
    /// Adds rollups, merging into existing rows of the same minute, endpoint, model
    /// and instance, in one transaction.
    fn record(&self, rollups: &[MinuteRollup]) -> Result<()>;
    /// The rollups with `from <= minute < to`, optionally of one endpoint, oldest first.
    fn rollups(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        endpoint: Option<&str>,
    ) -> Result<Vec<MinuteRollup>>;
    /// Deletes rollups older than `cutoff` and returns how many rows went.
    fn prune_before(&self, cutoff: DateTime<Utc>) -> Result<usize>;
    /// Inserts the rollups whose (minute, endpoint, model, instance) is not there yet, as they
    /// are (no merge); returns how many (for copying a store).
    fn import(&self, rollups: &[MinuteRollup]) -> Result<usize>;
    /// Counts and stored percentiles of the rows of `endpoint` with `minute >= from`,
    /// oldest first (every model's and instance's row of a minute; a walk of the
    /// minute index).
    fn summaries_since(&self, from: DateTime<Utc>, endpoint: &str) -> Result<Vec<MinuteSummary>>;
}

/// Stores per-minute request rollups in the configured store
/// (`logs/service_metrics.db` by default, PostgreSQL when `storage.url` says so).
///
/// The service's background task calls [`record`](Self::record) about once a minute
/// with what it aggregated in memory, labelled with its instance; rows of the same
/// minute, endpoint, model and instance merge.
#[derive(Debug)]
pub struct ServiceMetricsStore {
    store: Box<dyn RollupStore>,
}

impl ServiceMetricsStore {
    /// Opens the store of `home`, in its configured backend.
    pub fn open(home: &Home) -> Result<Self> {
        let store: Box<dyn RollupStore> = match crate::Storage::of(home)? {
            crate::Storage::Embedded => Box::new(SqliteRollupStore::open(&home.service_db())?),
            crate::Storage::Postgres(db) => Box::new(crate::PgRollupStore::open(&db)?),
        };
        Ok(Self::with_store(store))
    }

    /// Opens (creating or migrating) the SQLite database at `path`.
    pub fn open_path(path: &Path) -> Result<Self> {
        Ok(Self::with_store(Box::new(SqliteRollupStore::open(path)?)))
    }

    /// A metrics store over any backend.
    pub fn with_store(store: Box<dyn RollupStore>) -> Self {
        ServiceMetricsStore { store }
    }

    /// The store.
    pub fn store(&self) -> &dyn RollupStore {
        self.store.as_ref()
    }

    /// The database file or URL, for messages.
    pub fn location(&self) -> String {
        self.store.location()
    }

    /// Adds rollups, merging into existing rows of the same minute, endpoint, model
    /// and instance, in one transaction.
    pub fn record(&self, rollups: &[MinuteRollup]) -> Result<()> {
        self.store.record(rollups)
    }

    /// The rollups with `from <= minute < to`, optionally of one endpoint, oldest first.
    pub fn rollups(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        endpoint: Option<&str>,
    ) -> Result<Vec<MinuteRollup>> {
        self.store.rollups(from, to, endpoint)
    }

    /// Aggregates `from <= minute < to` (optionally one endpoint) over every model
    /// and instance into the metrics the alert rules use: counts summed, latencies
    /// from the merged histograms.
    pub fn window(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        endpoint: Option<&str>,
    ) -> Result<WindowMetrics> {
        Ok(WindowMetrics::of(
            from,
            to,
            &self.rollups(from, to, endpoint)?,
        ))
    }

    /// [`window`](Self::window) over all instances and per instance, from one read.
    pub fn instance_report(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        endpoint: Option<&str>,
    ) -> Result<InstanceReport> {
        let rows = self.rollups(from, to, endpoint)?;
        let mut by_instance: BTreeMap<&str, Vec<MinuteRollup>> = BTreeMap::new();
        for r in &rows {
            by_instance.entry(&r.instance).or_default().push(r.clone());
        }
        Ok(InstanceReport {
            total: WindowMetrics::of(from, to, &rows),
            instances: by_instance
                .into_iter()
                .map(|(i, rows)| (i.to_owned(), WindowMetrics::of(from, to, &rows)))
                .collect(),
        })
    }

    /// [`window`](Self::window) per instance (the replica that served; `""` for rows
    /// of before instances), in instance order. Instances without rows in the window
    /// are absent.
    pub fn window_by_instance(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        endpoint: Option<&str>,
    ) -> Result<BTreeMap<String, WindowMetrics>> {
        let mut by_instance: BTreeMap<String, Vec<MinuteRollup>> = BTreeMap::new();
        for r in self.rollups(from, to, endpoint)? {
            by_instance.entry(r.instance.clone()).or_default().push(r);
        }
        Ok(by_instance
            .into_iter()
            .map(|(instance, rows)| (instance, WindowMetrics::of(from, to, &rows)))
            .collect())
    }

    /// Deletes rollups older than `cutoff` and returns how many rows went.
    pub fn prune_before(&self, cutoff: DateTime<Utc>) -> Result<usize> {
        self.store.prune_before(cutoff)
    }
}

/// [`RollupStore`] in SQLite: `logs/service_metrics.db`, WAL mode.
#[derive(Debug)]
pub struct SqliteRollupStore {
    conn: Mutex<Connection>,
    path: PathBuf,
    /// What reads select as the instance: the column, or `''` in a version-1 file
    /// opened read-only (a reader never migrates).
    instance_column: &'static str,
}

impl SqliteRollupStore {
    /// Opens (creating or migrating) the database at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        let conn = db::open(path, SERVICE_MIGRATIONS)?;
        Ok(SqliteRollupStore {
            conn: Mutex::new(conn),
            path: path.to_path_buf(),
            instance_column: "instance",
        })
    }

    /// Opens the database at `path` read-only (for readers such as the dashboard: it
    /// never creates, migrates or locks the file, and waits at most `busy` for a
    /// writer). `None` when the file or its table does not exist yet.
    pub fn open_read_only(path: &Path, busy: std::time::Duration) -> Result<Option<Self>> {
        let Some(conn) = db::open_read_only(path, busy, "request_rollups")? else {
            return Ok(None);
        };
        let has_instance: bool = conn
            .query_row(
                "SELECT EXISTS(SELECT 1 FROM pragma_table_info('request_rollups') \
                 WHERE name = 'instance')",
                [],
                |r| r.get(0),
            )
            .map_err(db::on(path))?;
        Ok(Some(SqliteRollupStore {
            conn: Mutex::new(conn),
            path: path.to_path_buf(),
            instance_column: if has_instance { "instance" } else { "''" },
        }))
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl RollupStore for SqliteRollupStore {
    fn summaries_since(&self, from: DateTime<Utc>, endpoint: &str) -> Result<Vec<MinuteSummary>> {
        let conn = self.conn();
        let mut st = conn
            .prepare_cached(
                "SELECT minute, request_count, error_count, fallback_count, latency_p50_ms, \
                 latency_p95_ms, latency_p99_ms FROM request_rollups \
                 WHERE minute >= ?1 AND endpoint = ?2 ORDER BY minute",
            )
            .map_err(db::on(&self.path))?;
        st.query_map(params![format_timestamp(from), endpoint], |r| {
            Ok(MinuteSummary {
                minute: r.get(0)?,
                request_count: to_u64(r.get(1)?),
                error_count: to_u64(r.get(2)?),
                fallback_count: to_u64(r.get(3)?),
                p50_ms: r.get(4)?,
                p95_ms: r.get(5)?,
                p99_ms: r.get(6)?,
            })
        })
        .and_then(|rows| rows.collect())
        .map_err(db::on(&self.path))
    }

    fn location(&self) -> String {
        self.path.display().to_string()
    }

    fn import(&self, rollups: &[MinuteRollup]) -> Result<usize> {
        let mut conn = self.conn();
        let on = db::on(&self.path);
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(&on)?;
        let mut n = 0;
        for r in rollups {
            let h = &r.latency;
            n += tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO request_rollups (minute, endpoint, model_id, \
                     request_count, error_count, fallback_count, latency_sum_ms, latency_min_ms, \
                     latency_max_ms, latency_p50_ms, latency_p95_ms, latency_p99_ms, latency_hist, \
                     instance) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
                )
                .and_then(|mut st| {
                    st.execute(params![
                        format_timestamp(truncate_minute(r.minute)),
                        r.endpoint,
                        r.model_id,
                        to_i64(r.request_count),
                        to_i64(r.error_count),
                        to_i64(r.fallback_count),
                        h.sum_ms(),
                        h.min_ms(),
                        h.max_ms(),
                        h.quantile_ms(0.5),
                        h.quantile_ms(0.95),
                        h.quantile_ms(0.99),
                        buckets_json(h),
                        r.instance,
                    ])
                })
                .map_err(&on)?;
        }
        tx.commit().map_err(&on)?;
        Ok(n)
    }

    fn record(&self, rollups: &[MinuteRollup]) -> Result<()> {
        let mut conn = self.conn();
        let on = db::on(&self.path);
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(&on)?;
        for r in rollups {
            let minute = format_timestamp(truncate_minute(r.minute));
            let existing = tx
                .prepare_cached(
                    "SELECT request_count, error_count, fallback_count, latency_sum_ms, \
                     latency_min_ms, latency_max_ms, latency_hist FROM request_rollups \
                     WHERE minute = ?1 AND endpoint = ?2 AND model_id = ?3 AND instance = ?4",
                )
                .and_then(|mut st| {
                    st.query_row(params![minute, r.endpoint, r.model_id, r.instance], |row| {
                        Ok((
                            row.get::<_, i64>(0)?,
                            row.get::<_, i64>(1)?,
                            row.get::<_, i64>(2)?,
                            row.get::<_, f64>(3)?,
                            row.get::<_, Option<f64>>(4)?,
                            row.get::<_, Option<f64>>(5)?,
                            row.get::<_, String>(6)?,
                        ))
                    })
                    .optional()
                })
                .map_err(&on)?;
            let (mut requests, mut errors, mut fallbacks) =
                (r.request_count, r.error_count, r.fallback_count);
            let mut hist = r.latency.clone();
            if let Some((rc, ec, fc, sum, min, max, buckets)) = existing {
                requests += to_u64(rc);
                errors += to_u64(ec);
                fallbacks += to_u64(fc);
                hist.merge(&stored_histogram(&self.path, sum, min, max, &buckets)?);
            }
            tx.prepare_cached(
                "INSERT OR REPLACE INTO request_rollups (minute, endpoint, model_id, request_count, \
                 error_count, fallback_count, latency_sum_ms, latency_min_ms, latency_max_ms, \
                 latency_p50_ms, latency_p95_ms, latency_p99_ms, latency_hist, instance) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
            )
            .and_then(|mut st| {
                st.execute(params![
                    minute,
                    r.endpoint,
                    r.model_id,
                    to_i64(requests),
                    to_i64(errors),
                    to_i64(fallbacks),
                    hist.sum_ms(),
                    hist.min_ms(),
                    hist.max_ms(),
                    hist.quantile_ms(0.5),
                    hist.quantile_ms(0.95),
                    hist.quantile_ms(0.99),
                    buckets_json(&hist),
                    r.instance,
                ])
            })
            .map_err(&on)?;
        }
        tx.commit().map_err(&on)
    }

    fn rollups(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        endpoint: Option<&str>,
    ) -> Result<Vec<MinuteRollup>> {
        let conn = self.conn();
        // `instance_column` is one of two constants, never input.
        let sql = format!(
            "SELECT minute, endpoint, model_id, request_count, error_count, fallback_count, \
             latency_sum_ms, latency_min_ms, latency_max_ms, latency_hist, {0} FROM \
             request_rollups WHERE minute >= ?1 AND minute < ?2 AND (?3 IS NULL OR endpoint = ?3) \
             ORDER BY 1, 2, 3, 11",
            self.instance_column
        );
        let mut st = conn.prepare_cached(&sql).map_err(db::on(&self.path))?;
        let rows = st
            .query_map(
                params![format_timestamp(from), format_timestamp(to), endpoint],
                |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, String>(2)?,
                        row.get::<_, i64>(3)?,
                        row.get::<_, i64>(4)?,
                        row.get::<_, i64>(5)?,
                        row.get::<_, f64>(6)?,
                        row.get::<_, Option<f64>>(7)?,
                        row.get::<_, Option<f64>>(8)?,
                        row.get::<_, String>(9)?,
                        row.get::<_, String>(10)?,
                    ))
                },
            )
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(db::on(&self.path))?;
        rows.into_iter()
            .map(
                |(minute, endpoint, model_id, rc, ec, fc, sum, min, max, buckets, instance)| {
                    Ok(MinuteRollup {
                        minute: parse_timestamp(&minute).ok_or_else(|| Error::InvalidInput {
                            what: "stored minute",
                            message: format!(
                                "{minute:?} in {} is not a timestamp",
                                self.path.display()
                            ),
                        })?,
                        endpoint,
                        model_id,
                        instance,
                        request_count: to_u64(rc),
                        error_count: to_u64(ec),
                        fallback_count: to_u64(fc),
                        latency: stored_histogram(&self.path, sum, min, max, &buckets)?,
                    })
                },
            )
            .collect()
    }

    fn prune_before(&self, cutoff: DateTime<Utc>) -> Result<usize> {
        self.conn()
            .execute(
                "DELETE FROM request_rollups WHERE minute < ?1",
                [format_timestamp(cutoff)],
            )
            .map_err(db::on(&self.path))
    }
}

/// The start of the minute holding `t`.
pub fn truncate_minute(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(TimeDelta::minutes(1)).unwrap_or(t)
}

pub(crate) fn buckets_json(h: &LatencyHistogram) -> String {
    serde_json::to_string(h.buckets()).unwrap_or_else(|_| "[]".to_owned())
}

pub(crate) fn stored_histogram(
    path: &Path,
    sum: f64,
    min: Option<f64>,
    max: Option<f64>,
    buckets: &str,
) -> Result<LatencyHistogram> {
    let pairs: Vec<(u16, u64)> =
        serde_json::from_str(buckets).map_err(|e| Error::InvalidInput {
            what: "stored latency histogram",
            message: format!("in {}: {e}", path.display()),
        })?;
    Ok(LatencyHistogram::from_parts(
        sum,
        min.unwrap_or(0.0),
        max.unwrap_or(0.0),
        &pairs,
    ))
}

pub(crate) fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

pub(crate) fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};

    type Maker = fn() -> (Box<dyn std::any::Any>, ServiceMetricsStore);

    fn sqlite() -> (Box<dyn std::any::Any>, ServiceMetricsStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = ServiceMetricsStore::open_path(&dir.path().join("service_metrics.db")).unwrap();
        (Box::new(dir), store)
    }

    fn postgres() -> (Box<dyn std::any::Any>, ServiceMetricsStore) {
        let pg = recops_testkit::PgCluster::shared().unwrap();
        let db = crate::PgDatabase::connect_new(&pg.fresh_database()).unwrap();
        let store =
            ServiceMetricsStore::with_store(Box::new(crate::PgRollupStore::open(&db).unwrap()));
        (Box::new(db), store)
    }

    recops_testkit::on_both_backends!(
        on_sqlite: sqlite, postgres;
        window_metrics_merge_minutes_and_skip_other_endpoints,
        rows_of_the_same_minute_merge,
        an_empty_window_has_no_rates_and_fires_nothing,
        prune_removes_old_minutes,
        summaries_give_counts_and_percentiles_of_one_endpoint_in_order,
        replicas_keep_their_own_rows_and_windows_add_them_up,
    );

    fn at(instance: &str, r: MinuteRollup) -> MinuteRollup {
        MinuteRollup {
            instance: instance.to_owned(),
            ..r
        }
    }

    fn replicas_keep_their_own_rows_and_windows_add_them_up(maker: Maker) {
        let (_d, store) = maker();
        let t0 = Utc.with_ymd_and_hms(2025, 1, 15, 15, 0, 0).unwrap();
        // Same minute, endpoint and model from two replicas, one of them twice.
        store
            .record(&[
                at("shop-1:8000", rollup(t0, "/recommend", &[10.0; 90], 1, 9)),
                at("shop-2:8000", rollup(t0, "/recommend", &[400.0; 10], 3, 1)),
            ])
            .unwrap();
        store
            .record(&[at(
                "shop-1:8000",
                rollup(t0 + Duration::seconds(40), "/recommend", &[10.0; 10], 0, 0),
            )])
            .unwrap();
        let rows = store.rollups(t0, t0 + Duration::minutes(1), None).unwrap();
        let per: Vec<_> = rows
            .iter()
            .map(|r| (r.instance.as_str(), r.request_count))
            .collect();
        assert_eq!(per, [("shop-1:8000", 100), ("shop-2:8000", 10)]);

        // The window sums counts over instances; its percentiles come from the merged
        // histograms (a mean of the two p99s would be about 205 ms).
        let w = store
            .window(t0, t0 + Duration::hours(1), Some("/recommend"))
            .unwrap();
        assert_eq!(
            (w.request_count, w.error_count, w.fallback_count),
            (110, 4, 10)
        );
        let p50 = w.p50_latency_ms.unwrap();
        assert!((p50 - 10.0).abs() / 10.0 < 0.1, "{p50}");
        let p95 = w.p95_latency_ms.unwrap();
        assert!((p95 - 400.0).abs() / 400.0 < 0.1, "{p95}");

        let report = store
            .instance_report(t0, t0 + Duration::hours(1), Some("/recommend"))
            .unwrap();
        assert_eq!(report.total, w);
        let table = report.to_string();
        assert!(
            table.contains("shop-2:8000") && table.contains("(all)"),
            "{table}"
        );
        let by = store
            .window_by_instance(t0, t0 + Duration::hours(1), Some("/recommend"))
            .unwrap();
        assert_eq!(by, report.instances);
        assert_eq!(
            by.keys().collect::<Vec<_>>(),
            ["shop-1:8000", "shop-2:8000"]
        );
        assert_eq!(by["shop-1:8000"].request_count, 100);
        assert_eq!(by["shop-2:8000"].error_count, 3);
        let p99_2 = by["shop-2:8000"].p99_latency_ms.unwrap();
        assert!((p99_2 - 400.0).abs() / 400.0 < 0.1, "{p99_2}");
        assert!(by["shop-1:8000"].p99_latency_ms.unwrap() < 20.0);

        // Charts read every instance's row of a minute.
        let s = store.store().summaries_since(t0, "/recommend").unwrap();
        assert_eq!(s.iter().map(|m| m.request_count).sum::<u64>(), 110);

        // Copying a store carries the instance (what `recops storage migrate` uses).
        let (_d2, copy) = maker();
        assert_eq!(copy.store().import(&rows).unwrap(), 2);
        assert_eq!(copy.store().import(&rows).unwrap(), 0);
        assert_eq!(
            copy.rollups(t0, t0 + Duration::minutes(1), None).unwrap(),
            rows
        );
    }

    /// A version-1 file (rows of before instances) is migrated with every row kept,
    /// under the instance `""`; a read-only reader of a version-1 file still reads it.
    #[test]
    fn version_1_rows_are_kept_under_the_empty_instance() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("service_metrics.db");
        let t0 = Utc.with_ymd_and_hms(2025, 1, 15, 15, 0, 0).unwrap();
        {
            let conn = db::open(&path, &[SERVICE_SCHEMA]).unwrap();
            conn.execute(
                "INSERT INTO request_rollups (minute, endpoint, model_id, request_count, \
                 error_count, fallback_count, latency_sum_ms, latency_min_ms, latency_max_ms, \
                 latency_hist) VALUES (?1, '/recommend', 'm1', 4, 1, 2, 40.0, 10.0, 10.0, ?2)",
                params![
                    format_timestamp(t0),
                    buckets_json(&rollup(t0, "/recommend", &[10.0; 4], 0, 0).latency)
                ],
            )
            .unwrap();
        }
        let old = SqliteRollupStore::open_read_only(&path, std::time::Duration::from_secs(1))
            .unwrap()
            .unwrap();
        let rows = old.rollups(t0, t0 + Duration::minutes(1), None).unwrap();
        assert_eq!((rows[0].instance.as_str(), rows[0].request_count), ("", 4));

        let store = ServiceMetricsStore::open_path(&path).unwrap();
        store
            .record(&[at(
                "shop-1:8000",
                rollup(t0, "/recommend", &[20.0; 6], 0, 0),
            )])
            .unwrap();
        let rows = store.rollups(t0, t0 + Duration::minutes(1), None).unwrap();
        let per: Vec<_> = rows
            .iter()
            .map(|r| (r.instance.as_str(), r.model_id.as_str(), r.request_count))
            .collect();
        assert_eq!(
            per,
            [("shop-1:8000", "als_20250115_103000", 6), ("", "m1", 4)]
        );
        let w = store.window(t0, t0 + Duration::minutes(1), None).unwrap();
        assert_eq!((w.request_count, w.error_count), (10, 1));
        assert_eq!(w.avg_latency_ms, Some(16.0));
    }

    fn summaries_give_counts_and_percentiles_of_one_endpoint_in_order(maker: Maker) {
        let (_d, store) = maker();
        let t0 = Utc.with_ymd_and_hms(2025, 1, 15, 15, 0, 0).unwrap();
        store
            .record(&[
                rollup(t0 + Duration::minutes(1), "/recommend", &[400.0; 10], 1, 2),
                rollup(t0, "/recommend", &[10.0; 20], 0, 0),
                rollup(t0, "/health", &[1.0; 5], 0, 0),
                rollup(t0 - Duration::minutes(1), "/recommend", &[5.0; 3], 0, 0),
            ])
            .unwrap();
        let s = store.store().summaries_since(t0, "/recommend").unwrap();
        assert_eq!(s.len(), 2, "{s:?}");
        assert_eq!(s[0].minute, format_timestamp(t0));
        assert_eq!(
            (
                s[0].request_count,
                s[1].request_count,
                s[1].error_count,
                s[1].fallback_count
            ),
            (20, 10, 1, 2)
        );
        let p99 = s[1].p99_ms.unwrap();
        assert!((p99 - 400.0).abs() / 400.0 < 0.1, "{p99}");
        assert!(s[0].p50_ms.unwrap() < 20.0);
    }

    fn rollup(
        minute: DateTime<Utc>,
        endpoint: &str,
        latencies: &[f64],
        errors: u64,
        fallbacks: u64,
    ) -> MinuteRollup {
        let mut h = LatencyHistogram::new();
        latencies.iter().for_each(|&l| h.record(l));
        MinuteRollup {
            minute,
            endpoint: endpoint.to_owned(),
            model_id: "als_20250115_103000".to_owned(),
            instance: String::new(),
            request_count: latencies.len() as u64,
            error_count: errors,
            fallback_count: fallbacks,
            latency: h,
        }
    }

    fn window_metrics_merge_minutes_and_skip_other_endpoints(maker: Maker) {
        let (_d, store) = maker();
        let t0 = Utc.with_ymd_and_hms(2025, 1, 15, 15, 0, 0).unwrap();
        // 10:00 minute: 100 requests at 10 ms; 10:01: 100 at 400 ms; /health ignored.
        store
            .record(&[
                rollup(
                    t0 + Duration::seconds(17),
                    "/recommend",
                    &[10.0; 100],
                    2,
                    30,
                ),
                rollup(
                    t0 + Duration::minutes(1),
                    "/recommend",
                    &[400.0; 100],
                    8,
                    30,
                ),
                rollup(t0, "/health", &[1000.0; 50], 0, 0),
            ])
            .unwrap();
        let w = store
            .window(t0, t0 + Duration::hours(1), Some("/recommend"))
            .unwrap();
        assert_eq!(w.request_count, 200);
        assert_eq!(w.error_count, 10);
        assert!((w.avg_latency_ms.unwrap() - 205.0).abs() < 1e-9);
        assert!((w.error_rate.unwrap() - 0.05).abs() < 1e-12);
        assert!((w.fallback_rate.unwrap() - 0.3).abs() < 1e-12);
        let p95 = w.p95_latency_ms.unwrap();
        assert!((p95 - 400.0).abs() / 400.0 < 0.1, "{p95}");
        let p50 = w.p50_latency_ms.unwrap();
        assert!((p50 - 10.0).abs() / 10.0 < 0.1, "{p50}");
        let m = w.alert_metrics();
        assert_eq!(m["request_count"], 200.0);
        assert!(m.contains_key("avg_latency_ms") && m.contains_key("p99_latency_ms"));

        // Only the second minute.
        let w2 = store
            .window(
                t0 + Duration::minutes(1),
                t0 + Duration::minutes(2),
                Some("/recommend"),
            )
            .unwrap();
        assert_eq!(w2.request_count, 100);
        assert_eq!(w2.avg_latency_ms, Some(400.0));
    }

    fn rows_of_the_same_minute_merge(maker: Maker) {
        let (_d, store) = maker();
        let t0 = Utc.with_ymd_and_hms(2025, 1, 15, 15, 0, 0).unwrap();
        store
            .record(&[rollup(t0, "/recommend", &[5.0, 5.0], 0, 1)])
            .unwrap();
        store
            .record(&[rollup(
                t0 + Duration::seconds(30),
                "/recommend",
                &[15.0, 15.0],
                1,
                0,
            )])
            .unwrap();
        let rows = store.rollups(t0, t0 + Duration::minutes(1), None).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].request_count, 4);
        assert_eq!(rows[0].error_count, 1);
        assert_eq!(rows[0].fallback_count, 1);
        assert_eq!(rows[0].latency.mean_ms(), Some(10.0));
        assert_eq!(rows[0].minute, t0);
    }

    fn an_empty_window_has_no_rates_and_fires_nothing(maker: Maker) {
        let (_d, store) = maker();
        let t0 = Utc.with_ymd_and_hms(2025, 1, 15, 15, 0, 0).unwrap();
        let w = store.window(t0, t0 + Duration::hours(1), None).unwrap();
        assert_eq!(w.request_count, 0);
        assert_eq!(w.error_rate, None);
        assert_eq!(w.alert_metrics().len(), 1);
    }

    fn prune_removes_old_minutes(maker: Maker) {
        let (_d, store) = maker();
        let t0 = Utc.with_ymd_and_hms(2025, 1, 15, 15, 0, 0).unwrap();
        store
            .record(&[
                rollup(t0, "/recommend", &[1.0], 0, 0),
                rollup(t0 + Duration::days(8), "/recommend", &[1.0], 0, 0),
            ])
            .unwrap();
        assert_eq!(store.prune_before(t0 + Duration::days(1)).unwrap(), 1);
        assert_eq!(
            store
                .rollups(t0, t0 + Duration::days(30), None)
                .unwrap()
                .len(),
            1
        );
    }
}
