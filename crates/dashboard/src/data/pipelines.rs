//! `/pipelines`: runs with filters and keyset pagination, per-pipeline summary, trends,
//! failures, stale `running` runs, and one run's page.

use std::collections::BTreeMap;

use chrono::{Duration, NaiveDate, Offset, TimeZone};
use recops_tracking::{PipelineRun, PipelineStore, RunQuery, RunStatus};
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
    let home = &ctx.home;
    let days = filter.days.unwrap_or(30).clamp(1, 3660);
    let since = ctx.now() - Duration::days(i64::from(days));
    let pipelines = store::read_pipelines(home, HINT, |_| false, |s| s.names())
        .data()
        .cloned()
        .unwrap_or_default();
    PipelinesView {
        runs: store::read_pipelines(
            home,
            HINT,
            |p: &RunPage| p.runs.is_empty(),
            |s| page(ctx, s, &filter),
        ),
        summary: store::read_pipelines(home, HINT, Vec::is_empty, |s| summary(ctx, s, since)),
        failures: store::read_pipelines(home, "no failed runs", Vec::is_empty, |s| {
            let q = RunQuery {
                status: Some(RunStatus::Failed),
                limit: 20,
                ..RunQuery::default()
            };
            Ok(rows(ctx, s.list(&q)?))
        }),
        stale_running: store::read_pipelines(home, "no stale running runs", Vec::is_empty, |s| {
            stale(ctx, s)
        }),
        filter,
        days,
        pipelines,
    }
}

/// One run, `None` when it does not exist.
pub(crate) fn detail(ctx: &Ctx, run_id: &str) -> Panel<RunDetail> {
    let hint = format!("no pipeline run {run_id}");
    store::read_pipelines(&ctx.home, &hint, Option::is_none, |s| {
        Ok(s.get(run_id)?.map(|r| RunDetail {
            metadata: Value::Object(r.metadata.clone()),
            run: row(ctx, r),
        }))
    })
    .and_then(|d| d.map_or_else(|| Panel::empty(&hint), |data| Panel::Ready { data }))
}

fn row(ctx: &Ctx, r: PipelineRun) -> RunRow {
    let stale_cutoff = ctx.now() - Duration::minutes((ctx.stale_after_hours * 60.0) as i64);
    let stale = r.status == RunStatus::Running
        && recops_core::parse_timestamp(&r.started_at).is_some_and(|t| t < stale_cutoff);
    RunRow {
        started_at: ctx.when_str(&r.started_at),
        finished_at: r.finished_at.as_deref().and_then(|s| ctx.when_str(s)),
        duration_seconds: r.duration_seconds,
        error_message: r.error_message,
        status: r.status.as_str().to_owned(),
        run_id: r.run_id,
        pipeline_name: r.pipeline_name,
        stale,
    }
}

fn rows(ctx: &Ctx, runs: Vec<PipelineRun>) -> Vec<RunRow> {
    runs.into_iter().map(|r| row(ctx, r)).collect()
}

/// Runs still `running` after the stale limit: one lookup of the (pipeline_name,
/// status) index per pipeline.
fn stale(ctx: &Ctx, s: &dyn PipelineStore) -> recops_tracking::Result<Vec<RunRow>> {
    let mut out = Vec::new();
    for name in s.names()? {
        let q = RunQuery {
            pipeline_name: Some(name),
            status: Some(RunStatus::Running),
            limit: 200,
            ..RunQuery::default()
        };
        out.extend(rows(ctx, s.list(&q)?).into_iter().filter(|r| r.stale));
    }
    Ok(out)
}

/// One page, newest first (keyset pagination: the store walks its `started_at` index
/// and stops after a page). An unknown status shows no runs.
fn page(ctx: &Ctx, s: &dyn PipelineStore, f: &RunFilter) -> recops_tracking::Result<RunPage> {
    let status = match f.status.as_deref().filter(|s| !s.is_empty()) {
        Some(text) => match text.parse::<RunStatus>() {
            Ok(st) => Some(st),
            Err(_) => {
                return Ok(RunPage {
                    runs: Vec::new(),
                    next: None,
                });
            }
        },
        None => None,
    };
    let q = RunQuery {
        pipeline_name: f.pipeline.clone().filter(|p| !p.is_empty()),
        status,
        started_from: day_start(ctx, f.from.as_deref(), 0),
        started_before: day_start(ctx, f.to.as_deref(), 1),
        after: f
            .after
            .as_deref()
            .and_then(|a| a.split_once('|'))
            .map(|(at, id)| (at.to_owned(), id.to_owned())),
        limit: PAGE_SIZE + 1,
    };
    let mut runs = s.list(&q)?;
    let next = (runs.len() > PAGE_SIZE).then(|| {
        runs.truncate(PAGE_SIZE);
        runs.last()
            .map(|r| format!("{}|{}", r.started_at, r.run_id))
            .unwrap_or_default()
    });
    Ok(RunPage {
        runs: rows(ctx, runs),
        next,
    })
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

/// Per pipeline over the period: counts by status (one pass of the `started_at`
/// index), the mean duration of successes and the newest start.
fn summary(
    ctx: &Ctx,
    s: &dyn PipelineStore,
    since: chrono::DateTime<chrono::Utc>,
) -> recops_tracking::Result<Vec<PipelineSummary>> {
    let since = recops_core::format_timestamp(since);
    let mut by_name: BTreeMap<String, PipelineSummary> = BTreeMap::new();
    for (name, status, count, mean) in s.counts_since(&since)? {
        let e = by_name
            .entry(name.clone())
            .or_insert_with(|| PipelineSummary {
                pipeline_name: name,
                runs: 0,
                success: 0,
                failed: 0,
                running: 0,
                success_rate: None,
                avg_duration_seconds: None,
                last_started: None,
            });
        let count = count.max(0) as u64;
        e.runs += count;
        match status.as_str() {
            "success" => {
                e.success += count;
                e.avg_duration_seconds = mean;
            }
            "failed" => e.failed += count,
            "running" => e.running += count,
            _ => {}
        }
    }
    if by_name.is_empty() {
        return Ok(Vec::new());
    }
    // The newest start of each: a short backwards walk of the started_at index (the
    // pipeline ran within the period).
    for (name, e) in by_name.iter_mut() {
        let q = RunQuery {
            pipeline_name: Some(name.clone()),
            limit: 1,
            ..RunQuery::default()
        };
        e.last_started = s
            .list(&q)?
            .first()
            .and_then(|r| ctx.when_str(&r.started_at));
    }
    Ok(by_name
        .into_values()
        .map(|mut e| {
            e.success_rate = (e.success + e.failed > 0)
                .then(|| e.success as f64 / (e.success + e.failed) as f64);
            e
        })
        .collect())
}

/// Which daily trend chart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Trend {
    /// Mean duration of successful runs per day.
    Duration,
    /// Share of finished runs that succeeded, per day.
    SuccessRate,
}

/// At most this many runs are bucketed into a trend chart.
const TREND_ROWS: usize = 200_000;

/// A daily trend per pipeline over the last `days`: the runs of the window (name,
/// start, status, duration) bucketed here by day of the configured zone.
pub(crate) fn trend(ctx: &Ctx, days: u32, which: Trend) -> Panel<Chart> {
    let since = ctx.now() - Duration::days(i64::from(days.clamp(1, 3660)));
    let label = match which {
        Trend::Duration => "mean duration (s)",
        Trend::SuccessRate => "success rate",
    };
    // Days of the configured zone: its offset now shifts the stored UTC times (a zone
    // with daylight saving is off by an hour on the other side of a change).
    let offset = i64::from(
        ctx.tz
            .offset_from_utc_datetime(&ctx.now().naive_utc())
            .fix()
            .local_minus_utc(),
    );
    store::read_pipelines(&ctx.home, HINT, Chart::is_empty, |s| {
        let points = s.points_since(&recops_core::format_timestamp(since), TREND_ROWS)?;
        // (sum, n) per pipeline and day start (UTC seconds).
        let mut buckets: BTreeMap<(String, i64), (f64, u64)> = BTreeMap::new();
        for p in points {
            let Some(t) = recops_core::parse_timestamp(&p.started_at) else {
                continue;
            };
            let day = (t.timestamp() + offset).div_euclid(86_400) * 86_400 - offset;
            let value = match which {
                Trend::Duration => match (p.status, p.duration_seconds) {
                    (RunStatus::Success, Some(d)) => d,
                    _ => continue,
                },
                Trend::SuccessRate => match p.status {
                    RunStatus::Success => 1.0,
                    RunStatus::Failed => 0.0,
                    _ => continue,
                },
            };
            let b = buckets.entry((p.pipeline_name, day)).or_insert((0.0, 0));
            b.0 += value;
            b.1 += 1;
        }
        let mut series: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
        for ((name, day), (sum, n)) in buckets {
            let point = (day as f64, sum / n as f64);
            match series.last_mut() {
                Some((last, points)) if *last == name => points.push(point),
                _ => series.push((name, vec![point])),
            }
        }
        Ok(Chart::time(label).with_series(series))
    })
}

/// The newest run of each pipeline (one indexed lookup per pipeline).
pub(crate) fn latest_of_each(ctx: &Ctx, hint: &str) -> Panel<Vec<RunRow>> {
    store::read_pipelines(&ctx.home, hint, Vec::is_empty, |s| {
        let mut out = Vec::new();
        for name in s.names()? {
            let q = RunQuery {
                pipeline_name: Some(name),
                limit: 1,
                ..RunQuery::default()
            };
            out.extend(rows(ctx, s.list(&q)?));
        }
        Ok(out)
    })
}
