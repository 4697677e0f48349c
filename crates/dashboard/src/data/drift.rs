//! `/drift`: drift reports over time (severity, popularity overlap, volume), the
//! newest report in detail (rating distribution old vs new, items that entered or
//! left the top), and the data versions the refreshes produced.

use std::sync::Arc;
use std::time::Duration;

use recops_drift::{DriftReport, Severity};
use serde::Serialize;
use serde_json::Value;

use super::{Ctx, When};
use crate::charts::Chart;
use crate::store::{self, Panel};

const HINT: &str = "no drift reports yet: run drift-detection";

/// One report in the list.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct ReportRow {
    pub(crate) file: String,
    pub(crate) generated_at: Option<When>,
    pub(crate) severity: Severity,
    pub(crate) rating_max_difference: f64,
    pub(crate) jaccard_similarity: f64,
    pub(crate) volume_change_pct: f64,
    pub(crate) data_version: Option<String>,
}

/// A data version produced by a refresh.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct DataVersionRow {
    pub(crate) at: Option<When>,
    pub(crate) data_version: Option<String>,
    pub(crate) total_records: Option<u64>,
    pub(crate) users: Option<u64>,
    pub(crate) items: Option<u64>,
    pub(crate) rejected_records: Option<u64>,
    /// Mean comment quality of the data version, in [0, 1].
    pub(crate) quality: Option<f64>,
}

/// Everything `/drift` shows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct DriftView {
    pub(crate) reports: Panel<Vec<ReportRow>>,
    pub(crate) latest: Panel<DriftReport>,
    pub(crate) data_versions: Panel<Vec<DataVersionRow>>,
}

/// Reads `/drift`.
pub(crate) fn load(ctx: &Ctx) -> DriftView {
    let reports = reports(ctx);
    let rows = reports.by_ref().map(|r| {
        r.iter()
            .rev()
            .map(|(f, rep)| row(ctx, f, rep))
            .collect::<Vec<_>>()
    });
    let latest = reports.by_ref().and_then(|r| match r.last() {
        Some((_, rep)) => Panel::Ready { data: rep.clone() },
        None => Panel::empty(HINT),
    });
    DriftView {
        reports: rows,
        latest,
        data_versions: data_versions(ctx),
    }
}

/// The newest report's row (the overview).
pub(crate) fn latest_row(ctx: &Ctx) -> Panel<ReportRow> {
    reports(ctx).by_ref().and_then(|r| match r.last() {
        Some((f, rep)) => Panel::Ready {
            data: row(ctx, f, rep),
        },
        None => Panel::empty(HINT),
    })
}

fn row(ctx: &Ctx, file: &str, rep: &DriftReport) -> ReportRow {
    ReportRow {
        file: file.to_owned(),
        generated_at: ctx.when_str(&rep.generated_at),
        severity: rep.overall_severity,
        rating_max_difference: rep.rating_drift.max_difference,
        jaccard_similarity: rep.popularity_drift.jaccard_similarity,
        volume_change_pct: rep.interaction_drift.volume_change_pct,
        data_version: rep.data_version.clone(),
    }
}

/// Which drift chart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum DriftChart {
    /// Overall severity (0 low, 1 medium, 2 high) and rating max difference.
    Severity,
    /// Jaccard and rank-biased overlap of the top items.
    Popularity,
    /// Interactions per day, historical vs new window.
    Volume,
}

/// One chart over the reports.
pub(crate) fn chart(ctx: &Ctx, which: DriftChart) -> Panel<Chart> {
    reports(ctx).by_ref().map(|r| {
        let pts = |f: &dyn Fn(&DriftReport) -> f64| -> Vec<(f64, f64)> {
            r.iter()
                .filter_map(|(_, rep)| {
                    let t = recops_core::parse_timestamp(&rep.generated_at)?;
                    Some((t.timestamp() as f64, f(rep)))
                })
                .collect()
        };
        let (label, series) = match which {
            DriftChart::Severity => (
                "severity (0 low, 1 medium, 2 high)",
                vec![
                    (
                        "severity".to_owned(),
                        pts(&|x| f64::from(x.overall_severity as u8)),
                    ),
                    (
                        "rating max difference x10".to_owned(),
                        pts(&|x| x.rating_drift.max_difference * 10.0),
                    ),
                ],
            ),
            DriftChart::Popularity => (
                "overlap of the top items",
                vec![
                    (
                        "jaccard".to_owned(),
                        pts(&|x| x.popularity_drift.jaccard_similarity),
                    ),
                    (
                        "rank-biased overlap".to_owned(),
                        pts(&|x| x.popularity_drift.rank_biased_overlap),
                    ),
                ],
            ),
            DriftChart::Volume => (
                "interactions per day",
                vec![
                    (
                        "historical".to_owned(),
                        pts(&|x| x.interaction_drift.historical.interactions_per_day),
                    ),
                    (
                        "new".to_owned(),
                        pts(&|x| x.interaction_drift.new.interactions_per_day),
                    ),
                ],
            ),
        };
        Chart::time(label).with_series(series)
    })
}

/// Every readable report, oldest first, cached for 10 s.
fn reports(ctx: &Ctx) -> Arc<Panel<Vec<(String, DriftReport)>>> {
    ctx.cache
        .get_or("drift:reports", Duration::from_secs(10), || {
            read_reports(ctx)
        })
}

fn read_reports(ctx: &Ctx) -> Panel<Vec<(String, DriftReport)>> {
    let dir = ctx.home.drift_reports_dir();
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Panel::empty(HINT),
        Err(e) => {
            return Panel::Unavailable {
                message: format!("cannot list {}: {e}", dir.display()),
            };
        }
    };
    let mut files: Vec<String> = entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("drift_report_") && n.ends_with(".json"))
        .collect();
    files.sort();
    let reports: Vec<(String, DriftReport)> = files
        .into_iter()
        .filter_map(|f| {
            let text = std::fs::read(dir.join(&f)).ok()?;
            match serde_json::from_slice::<DriftReport>(&text) {
                Ok(r) => Some((f, r)),
                Err(e) => {
                    tracing::warn!(file = %f, error = %e, "skipping an unreadable drift report");
                    None
                }
            }
        })
        .collect();
    let empty = reports.is_empty();
    Panel::of(reports, empty, HINT)
}

fn data_versions(ctx: &Ctx) -> Panel<Vec<DataVersionRow>> {
    store::read_pipelines(
        &ctx.home,
        "no data versions yet: run data-refresh",
        Vec::is_empty,
        |s| {
            let q = recops_tracking::RunQuery {
                pipeline_name: Some("data_refresh".into()),
                status: Some(recops_tracking::RunStatus::Success),
                limit: 100,
                ..Default::default()
            };
            Ok(s.list(&q)?
                .into_iter()
                .map(|r| {
                    let meta = &r.metadata;
                    let n = |k: &str| meta.get(k).and_then(Value::as_u64);
                    DataVersionRow {
                        at: r.finished_at.as_deref().and_then(|s| ctx.when_str(s)),
                        data_version: meta
                            .get("data_version")
                            .and_then(Value::as_str)
                            .map(str::to_owned),
                        total_records: n("total_records"),
                        users: n("users"),
                        items: n("items"),
                        rejected_records: n("rejected_records"),
                        quality: meta.get("mean_comment_quality").and_then(Value::as_f64),
                    }
                })
                .collect())
        },
    )
}
