//! `/pipelines`: runs with filters and keyset pagination, per-pipeline summary, trends,
//! failures, stale `running` runs, and one run's page.

use chrono::{Duration, NaiveDate, Offset, TimeZone};
use rusqlite::{Connection, Row, ToSql};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Ctx, When};
use crate::charts::Chart;
use crate::store::{self, Panel};

const HINT: &str =
    "no pipeline runs yet: every job (data-refresh, model-training, ...) records its runs here";
const PAGE_SIZE: usize = 50;

/// The filters of the run list (query string).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct RunFilter {
    /// One pipeline.
    pub(crate) pipeline: Option<String>,
    /// One status.
    pub(crate) status: Option<String>,
    /// First day shown (`YYYY-MM-DD`, configured time zone).
    pub(crate) from: Option<String>,
    /// Last day shown.
    pub(crate) to: Option<String>,
    /// Keyset cursor: the runs after (older than) this one (`started_at|run_id`).
    pub(crate) after: Option<String>,
    /// Days of history in the summary and trend charts (default 30).
    pub(crate) days: Option<u32>,
}

/// One run in a list.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct RunRow {
    pub(crate) run_id: String,
    pub(crate) pipeline_name: String,
    pub(crate) status: String,
    pub(crate) started_at: Option<When>,
    pub(crate) finished_at: Option<When>,
    pub(crate) duration_seconds: Option<f64>,
    pub(crate) error_message: Option<String>,
    /// Still `running` long after it started: the process probably died.
    pub(crate) stale: bool,
}

/// A page of runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct RunPage {
    pub(crate) runs: Vec<RunRow>,
    /// Cursor of the next (older) page, when there is one.
    pub(crate) next: Option<String>,
}

/// Counts of one pipeline over the summary period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct PipelineSummary {
    pub(crate) pipeline_name: String,
    pub(crate) runs: u64,
    pub(crate) success: u64,
    pub(crate) failed: u64,
    pub(crate) running: u64,
    pub(crate) success_rate: Option<f64>,
    pub(crate) avg_duration_seconds: Option<f64>,
    pub(crate) last_started: Option<When>,
}

/// Everything `/pipelines` shows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct PipelinesView {
    pub(crate) filter: RunFilter,
    pub(crate) days: u32,
    pub(crate) pipelines: Vec<String>,
    pub(crate) runs: Panel<RunPage>,
    pub(crate) summary: Panel<Vec<PipelineSummary>>,
    pub(crate) failures: Panel<Vec<RunRow>>,
    pub(crate) stale_running: Panel<Vec<RunRow>>,
}

/// One run with its metadata.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct RunDetail {
    pub(crate) run: RunRow,
    pub(crate) metadata: Value,
}

/// Reads `/pipelines`.
pub(crate) fn load(ctx: &Ctx, filter: RunFilter) -> PipelinesView {
    let path = ctx.home.pipeline_db();
    let days = filter.days.unwrap_or(30).clamp(1, 3660);
    let since = ctx.now() - Duration::days(i64::from(days));
    let pipelines = store::read(&path, HINT, |_| false, names)
        .data()
        .cloned()
        .unwrap_or_default();
    PipelinesView {
        runs: store::read(
            &path,
            HINT,
            |p: &RunPage| p.runs.is_empty(),
            |c| page(ctx, c, &filter),
        ),
        summary: store::read(&path, HINT, Vec::is_empty, |c| summary(ctx, c, since)),
        failures: store::read(&path, "no failed runs", Vec::is_empty, |c| {
            select(ctx, c, BY_TIME, "WHERE status = 'failed'", &[], 20)
        }),
        stale_running: store::read(&path, "no stale running runs", Vec::is_empty, |c| {
            stale(ctx, c)
        }),
        filter,
        days,
        pipelines,
    }
}

/// One run, `None` when it does not exist.
pub(crate) fn detail(ctx: &Ctx, run_id: &str) -> Panel<RunDetail> {
    store::read(
        &ctx.home.pipeline_db(),
        &format!("no pipeline run {run_id}"),
        |_| false,
        |c| {
            let sql = format!("{COLUMNS} FROM pipeline_runs WHERE run_id = ?1");
            c.query_row(&sql, [run_id], |r| {
                Ok(RunDetail {
                    run: row(ctx, r)?,
                    metadata: metadata(r.get::<_, Option<String>>(7)?),
                })
            })
        },
    )
}

fn metadata(text: Option<String>) -> Value {
    text.and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null)
}

const COLUMNS: &str = "SELECT run_id, pipeline_name, status, started_at, finished_at, \
    duration_seconds, error_message, metadata";
/// Runs read newest first walk the `started_at` index. Without statistics (the stores
/// never run ANALYZE) SQLite would otherwise often prefer the (pipeline_name, status)
/// index and sort every run of a pipeline.
const BY_TIME: &str = "FROM pipeline_runs INDEXED BY idx_started_at";
/// Lookups of one pipeline and status use the (pipeline_name, status) index.
const BY_NAME: &str = "FROM pipeline_runs INDEXED BY idx_pipeline_name_status";

/// The pipeline names, by a loose scan of the (pipeline_name, status) index: one
/// index search per name instead of a scan of every run.
pub(crate) fn names(c: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut st = c.prepare_cached(
        "WITH RECURSIVE n(name) AS (SELECT min(pipeline_name) FROM pipeline_runs UNION ALL \
         SELECT (SELECT min(pipeline_name) FROM pipeline_runs WHERE pipeline_name > n.name) \
         FROM n WHERE name IS NOT NULL) SELECT name FROM n WHERE name IS NOT NULL",
    )?;
    st.query_map([], |r| r.get(0))?.collect()
}

fn row(ctx: &Ctx, r: &Row<'_>) -> rusqlite::Result<RunRow> {
    let status: String = r.get(2)?;
    let started: String = r.get(3)?;
    let stale_cutoff = ctx.now() - Duration::minutes((ctx.stale_after_hours * 60.0) as i64);
    let stale = status == "running"
        && recops_core::parse_timestamp(&started).is_some_and(|t| t < stale_cutoff);
    Ok(RunRow {
        run_id: r.get(0)?,
        pipeline_name: r.get(1)?,
        started_at: ctx.when_str(&started),
        finished_at: r
            .get::<_, Option<String>>(4)?
            .and_then(|s| ctx.when_str(&s)),
        duration_seconds: r.get(5)?,
        error_message: r.get(6)?,
        status,
        stale,
    })
}

fn select(
    ctx: &Ctx,
    c: &Connection,
    from: &str,
    filter: &str,
    params: &[&dyn ToSql],
    limit: usize,
) -> rusqlite::Result<Vec<RunRow>> {
    let sql =
        format!("{COLUMNS} {from} {filter} ORDER BY started_at DESC, run_id DESC LIMIT {limit}");
    let mut st = c.prepare_cached(&sql)?;
    st.query_map(params, |r| row(ctx, r))?.collect()
}

/// Runs still `running` after the stale limit: one lookup of the (pipeline_name,
/// status) index per pipeline.
fn stale(ctx: &Ctx, c: &Connection) -> rusqlite::Result<Vec<RunRow>> {
    let mut rows = Vec::new();
    for name in names(c)? {
        let running = select(
            ctx,
            c,
            BY_NAME,
            "WHERE pipeline_name = ?1 AND status = 'running'",
            &[&name],
            200,
        )?;
        rows.extend(running.into_iter().filter(|r| r.stale));
    }
    Ok(rows)
}

/// One page, newest first: SQLite walks the `started_at` index backwards and stops
/// after a page.
fn page(ctx: &Ctx, c: &Connection, f: &RunFilter) -> rusqlite::Result<RunPage> {
    let mut clauses: Vec<&str> = Vec::new();
    let mut params: Vec<String> = Vec::new();
    let mut add = |clause: &'static str, value: String| {
        clauses.push(clause);
        params.push(value);
    };
    if let Some(p) = f.pipeline.as_ref().filter(|p| !p.is_empty()) {
        add("pipeline_name = ?", p.clone());
    }
    if let Some(s) = f.status.as_ref().filter(|s| !s.is_empty()) {
        add("status = ?", s.clone());
    }
    if let Some(t) = day_start(ctx, f.from.as_deref(), 0) {
        add("started_at >= ?", t);
    }
    if let Some(t) = day_start(ctx, f.to.as_deref(), 1) {
        add("started_at < ?", t);
    }
    if let Some((at, id)) = f.after.as_deref().and_then(|a| a.split_once('|')) {
        add("(started_at, run_id) < (?, ?)", at.to_owned());
        params.push(id.to_owned());
    }
    let filter = if clauses.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", clauses.join(" AND "))
    };
    let refs: Vec<&dyn ToSql> = params.iter().map(|p| p as &dyn ToSql).collect();
    let mut runs = select(ctx, c, BY_TIME, &filter, &refs, PAGE_SIZE + 1)?;
    let next = (runs.len() > PAGE_SIZE).then(|| {
        runs.truncate(PAGE_SIZE);
        runs.last()
            .map(|r| {
                format!(
                    "{}|{}",
                    r.started_at.as_ref().map(|w| w.utc.as_str()).unwrap_or(""),
                    r.run_id
                )
            })
            .unwrap_or_default()
    });
    Ok(RunPage { runs, next })
}

/// The UTC start of `day` (+ `plus_days`) in the configured zone, as stored text.
fn day_start(ctx: &Ctx, day: Option<&str>, plus_days: i64) -> Option<String> {
    let date = NaiveDate::parse_from_str(day?.trim(), "%Y-%m-%d").ok()? + Duration::days(plus_days);
    let local = ctx
        .tz
        .from_local_datetime(&date.and_hms_opt(0, 0, 0)?)
        .earliest()?;
    Some(recops_core::format_timestamp(
        local.with_timezone(&chrono::Utc),
    ))
}

fn summary(
    ctx: &Ctx,
    c: &Connection,
    since: chrono::DateTime<chrono::Utc>,
) -> rusqlite::Result<Vec<PipelineSummary>> {
    let mut st = c.prepare_cached(
        "SELECT pipeline_name, count(*), sum(status = 'success'), sum(status = 'failed'), \
         sum(status = 'running'), avg(CASE WHEN status = 'success' THEN duration_seconds END), \
         max(started_at) FROM pipeline_runs INDEXED BY idx_started_at WHERE started_at >= ?1 \
         GROUP BY pipeline_name \
         ORDER BY pipeline_name",
    )?;
    st.query_map([recops_core::format_timestamp(since)], |r| {
        let (success, failed) = (store::count(r, 2)?, store::count(r, 3)?);
        Ok(PipelineSummary {
            pipeline_name: r.get(0)?,
            runs: store::count(r, 1)?,
            success,
            failed,
            running: store::count(r, 4)?,
            success_rate: (success + failed > 0)
                .then(|| success as f64 / (success + failed) as f64),
            avg_duration_seconds: r.get(5)?,
            last_started: r
                .get::<_, Option<String>>(6)?
                .and_then(|s| ctx.when_str(&s)),
        })
    })?
    .collect()
}

/// Which daily trend chart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Trend {
    /// Mean duration of successful runs per day.
    Duration,
    /// Share of finished runs that succeeded, per day.
    SuccessRate,
}

/// A daily trend per pipeline over the last `days`.
pub(crate) fn trend(ctx: &Ctx, days: u32, which: Trend) -> Panel<Chart> {
    let since = ctx.now() - Duration::days(i64::from(days.clamp(1, 3660)));
    let (value, label) = match which {
        Trend::Duration => (
            "avg(CASE WHEN status = 'success' THEN duration_seconds END)",
            "mean duration (s)",
        ),
        Trend::SuccessRate => (
            "CAST(sum(status = 'success') AS REAL) / nullif(sum(status IN ('success', 'failed')), 0)",
            "success rate",
        ),
    };
    // Days of the configured zone: its offset now shifts the stored UTC times (a zone
    // with daylight saving is off by an hour on the other side of a change).
    let offset = i64::from(
        ctx.tz
            .offset_from_utc_datetime(&ctx.now().naive_utc())
            .fix()
            .local_minus_utc(),
    );
    let sql = format!(
        "SELECT pipeline_name, \
         (unixepoch(substr(started_at, 1, 19)) + ?2) / 86400 * 86400 - ?2 AS day, {value} \
         FROM pipeline_runs INDEXED BY idx_started_at WHERE started_at >= ?1 \
         GROUP BY pipeline_name, day ORDER BY pipeline_name, day"
    );
    store::read(&ctx.home.pipeline_db(), HINT, Chart::is_empty, |c| {
        let mut st = c.prepare_cached(&sql)?;
        let since = recops_core::format_timestamp(since);
        let rows = st.query_map(rusqlite::params![since, offset], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Option<f64>>(1)?,
                r.get::<_, Option<f64>>(2)?,
            ))
        })?;
        let mut series: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
        for row in rows {
            let (name, day, v) = row?;
            let (Some(day), Some(v)) = (day, v) else {
                continue;
            };
            match series.last_mut() {
                Some((n, points)) if *n == name => points.push((day, v)),
                _ => series.push((name, vec![(day, v)])),
            }
        }
        Ok(Chart::time(label).with_series(series))
    })
}

/// The newest run matching `filter` (one indexed lookup per pipeline).
pub(crate) fn latest(ctx: &Ctx, filter: &RunFilter) -> Option<RunRow> {
    let name = filter.pipeline.clone()?;
    let conn = store::open_ro(&ctx.home.pipeline_db()).ok()??;
    select(ctx, &conn, BY_TIME, "WHERE pipeline_name = ?1", &[&name], 1)
        .ok()?
        .into_iter()
        .next()
}
