//! `GET /metrics`: pipeline freshness for Prometheus (text format 0.0.4).
//!
//! The dashboard is the long-running process that already reads every store, so it
//! exports what a dead-man alert needs: per pipeline, when its last successful run
//! finished (`recops_pipeline_last_success_timestamp_seconds`), when its last run
//! started (`recops_pipeline_last_run_timestamp_seconds`) and the status of that run
//! (`recops_pipeline_last_run_success`, 1 or 0). `config/prometheus/recops_rules.yml`
//! alerts when a pipeline has not succeeded for too long.

use std::fmt::Write as _;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};

use crate::data::Ctx;
use crate::server::{AppState, blocking};
use crate::store;

/// The freshness of one pipeline.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Freshness {
    pub(crate) pipeline: String,
    /// End of the newest successful run.
    pub(crate) last_success: Option<DateTime<Utc>>,
    /// Start of the newest run, and whether it succeeded (`None` while running).
    pub(crate) last_run: Option<(DateTime<Utc>, String)>,
}

/// Reads every pipeline's freshness through the pipeline store (SQLite or
/// PostgreSQL): index lookups per pipeline.
pub(crate) fn freshness(
    store: &dyn recops_tracking::PipelineStore,
) -> recops_tracking::Result<Vec<Freshness>> {
    Ok(store
        .freshness()?
        .into_iter()
        .map(|f| Freshness {
            last_success: f
                .last_success
                .and_then(|s| recops_core::parse_timestamp(&s)),
            last_run: f.last_run.and_then(|(s, status)| {
                recops_core::parse_timestamp(&s).map(|t| (t, status.as_str().to_owned()))
            }),
            pipeline: f.pipeline_name,
        })
        .collect())
}

fn seconds(t: DateTime<Utc>) -> f64 {
    t.timestamp_millis() as f64 / 1000.0
}

/// Escapes a label value of the text format.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The exposition text for `rows`; `ok` is false when the store could not be read.
pub(crate) fn render(rows: &[Freshness], ok: bool) -> String {
    let mut out = String::with_capacity(256 + rows.len() * 256);
    out.push_str(
        "# HELP recops_pipeline_last_success_timestamp_seconds End of the newest successful run of the pipeline.\n\
         # TYPE recops_pipeline_last_success_timestamp_seconds gauge\n",
    );
    for r in rows {
        if let Some(t) = r.last_success {
            let _ = writeln!(
                out,
                "recops_pipeline_last_success_timestamp_seconds{{pipeline=\"{}\"}} {}",
                label(&r.pipeline),
                seconds(t)
            );
        }
    }
    out.push_str(
        "# HELP recops_pipeline_last_run_timestamp_seconds Start of the newest run of the pipeline.\n\
         # TYPE recops_pipeline_last_run_timestamp_seconds gauge\n",
    );
    for r in rows {
        if let Some((t, _)) = &r.last_run {
            let _ = writeln!(
                out,
                "recops_pipeline_last_run_timestamp_seconds{{pipeline=\"{}\"}} {}",
                label(&r.pipeline),
                seconds(*t)
            );
        }
    }
    out.push_str(
        "# HELP recops_pipeline_last_run_success Whether the newest finished or running run succeeded (1), failed or was cancelled (0); absent while it runs.\n\
         # TYPE recops_pipeline_last_run_success gauge\n",
    );
    for r in rows {
        if let Some((_, status)) = &r.last_run
            && status != "running"
        {
            let _ = writeln!(
                out,
                "recops_pipeline_last_run_success{{pipeline=\"{}\"}} {}",
                label(&r.pipeline),
                u8::from(status == "success")
            );
        }
    }
    out.push_str(
        "# HELP recops_pipeline_store_up Whether the pipeline runs could be read (1) or not (0).\n\
         # TYPE recops_pipeline_store_up gauge\n",
    );
    let _ = writeln!(out, "recops_pipeline_store_up {}", u8::from(ok));
    out
}

fn read(ctx: &Ctx) -> String {
    let rows =
        store::pipeline_store(&ctx.home).and_then(|s| s.map(|s| freshness(s.as_ref())).transpose());
    match rows {
        Ok(rows) => render(&rows.unwrap_or_default(), true),
        Err(e) => {
            tracing::warn!(home = %ctx.home.root().display(), error = %e, "cannot read pipeline runs for /metrics");
            render(&[], false)
        }
    }
}

/// `GET /metrics`.
pub(crate) async fn handler(State(s): State<AppState>) -> Response {
    match blocking(&s, read).await {
        Ok(text) => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(r) => r,
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn the_newest_success_and_run_of_each_pipeline_are_exported() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("pipeline_metrics.db");
        let clock =
            recops_core::FixedClock::new(Utc.with_ymd_and_hms(2025, 1, 15, 2, 0, 0).unwrap());
        let t = recops_tracking::PipelineTracker::open_path(&db, clock.shared()).unwrap();
        let ok = t.start_run("data_refresh", serde_json::json!({})).unwrap();
        clock.set(Utc.with_ymd_and_hms(2025, 1, 15, 2, 5, 0).unwrap());
        t.complete_run(&ok, serde_json::json!({})).unwrap();
        clock.set(Utc.with_ymd_and_hms(2025, 1, 16, 2, 0, 0).unwrap());
        let bad = t.start_run("data_refresh", serde_json::json!({})).unwrap();
        t.fail_run(&bad, "disk full").unwrap();
        let _running = t
            .start_run("model_training", serde_json::json!({}))
            .unwrap();

        let store =
            recops_tracking::SqlitePipelineStore::open_read_only(&db, store::READ_BUSY_TIMEOUT)
                .unwrap()
                .unwrap();
        let text = render(&freshness(&store).unwrap(), true);
        let jan15_0205 = Utc
            .with_ymd_and_hms(2025, 1, 15, 2, 5, 0)
            .unwrap()
            .timestamp();
        let jan16_0200 = Utc
            .with_ymd_and_hms(2025, 1, 16, 2, 0, 0)
            .unwrap()
            .timestamp();
        assert!(text.contains(&format!(
            "recops_pipeline_last_success_timestamp_seconds{{pipeline=\"data_refresh\"}} {jan15_0205}\n"
        )), "{text}");
        assert!(text.contains(&format!(
            "recops_pipeline_last_run_timestamp_seconds{{pipeline=\"data_refresh\"}} {jan16_0200}\n"
        )), "{text}");
        assert!(text.contains("recops_pipeline_last_run_success{pipeline=\"data_refresh\"} 0\n"));
        // Never succeeded, still running: no success sample, no success flag.
        assert!(!text.contains("last_success_timestamp_seconds{pipeline=\"model_training\"}"));
        assert!(!text.contains("recops_pipeline_last_run_success{pipeline=\"model_training\"}"));
        assert!(
            text.contains(
                "recops_pipeline_last_run_timestamp_seconds{pipeline=\"model_training\"}"
            )
        );
        assert!(text.contains("recops_pipeline_store_up 1\n"));
        assert_eq!(label("a\"b\\c"), "a\\\"b\\\\c");
    }
}
