//! `/pipelines` and one run's page.

use maud::{Markup, html};

use super::{badge, chart, panel, when};
use crate::data::pipelines::{PipelinesView, RunDetail, RunFilter, RunRow};
use crate::store::Panel;
use crate::timefmt;

const STATUSES: &[&str] = &["running", "success", "failed", "cancelled"];

/// Renders `/pipelines`.
pub(crate) fn render(v: &PipelinesView) -> Markup {
    let days = v.days;
    html! {
        (filters(v))
        div.charts {
            (chart("Mean duration of successful runs per day (s)", &format!("/api/v1/pipelines/trend?chart=duration&days={days}")))
            (chart("Success rate per day", &format!("/api/v1/pipelines/trend?chart=success_rate&days={days}")))
        }
        (panel("summary", &format!("Last {days} days"), &v.summary, |rows| html! {
            table { thead { tr { th { "pipeline" } th { "runs" } th { "success" } th { "failed" } th { "running" } th { "success rate" } th { "mean duration" } th { "last start" } } }
            tbody { @for r in rows { tr {
                td { a href={"/pipelines?pipeline=" (super::encode(&r.pipeline_name))} { (r.pipeline_name) } }
                td { (r.runs) } td { (r.success) } td { (r.failed) } td { (r.running) }
                td { (super::pct(r.success_rate)) }
                td { (r.avg_duration_seconds.map(timefmt::duration).unwrap_or_else(|| "-".into())) }
                td { (when(&r.last_started)) }
            } } } }
        }))
        (panel("stale", "Runs still running long after they started", &v.stale_running, |rows| run_table(rows)))
        (panel("runs", "Runs", &v.runs, |p| html! {
            (run_table(&p.runs))
            @if let Some(next) = &p.next {
                p { a.next href=(next_link(&v.filter, next)) { "Older runs →" } }
            }
        }))
        (panel("failures", "Recent failures", &v.failures, |rows| run_table(rows)))
    }
}

fn filters(v: &PipelinesView) -> Markup {
    let f = &v.filter;
    html! {
        form.filters method="get" action="/pipelines" {
            label { "pipeline " select name="pipeline" {
                option value="" { "all" }
                @for p in &v.pipelines { option value=(p) selected[f.pipeline.as_deref() == Some(p.as_str())] { (p) } }
            } }
            label { "status " select name="status" {
                option value="" { "all" }
                @for s in STATUSES { option value=(s) selected[f.status.as_deref() == Some(*s)] { (s) } }
            } }
            label { "from " input type="date" name="from" value=(f.from.as_deref().unwrap_or("")); }
            label { "to " input type="date" name="to" value=(f.to.as_deref().unwrap_or("")); }
            label { "trend days " input type="number" name="days" min="1" max="3660" value=(v.days); }
            button type="submit" { "Filter" }
        }
    }
}

fn next_link(f: &RunFilter, cursor: &str) -> String {
    let mut next = f.clone();
    next.after = Some(cursor.to_owned());
    format!("/pipelines?{}", serde_urlencoded(&next))
}

/// Query string of a filter (only the fields set).
fn serde_urlencoded(f: &RunFilter) -> String {
    let pairs = [
        ("pipeline", &f.pipeline),
        ("status", &f.status),
        ("from", &f.from),
        ("to", &f.to),
        ("after", &f.after),
    ];
    let mut out: Vec<String> = pairs
        .iter()
        .filter_map(|(k, v)| {
            v.as_ref()
                .filter(|v| !v.is_empty())
                .map(|v| format!("{k}={}", super::encode(v)))
        })
        .collect();
    if let Some(d) = f.days {
        out.push(format!("days={d}"));
    }
    out.join("&")
}

/// A table of runs.
pub(crate) fn run_table(rows: &[RunRow]) -> Markup {
    html! {
        table.runs { thead { tr { th { "run" } th { "pipeline" } th { "status" } th { "started" } th { "duration" } th { "error" } } }
        tbody { @for r in rows { tr {
            td { a href={"/pipelines/runs/" (super::encode(&r.run_id))} { (r.run_id) } }
            td { (r.pipeline_name) }
            td { (badge(&r.status)) @if r.stale { " " span.badge.bad title="running for longer than the stale limit: the process probably died" { "stale" } } }
            td { (when(&r.started_at)) }
            td { (r.duration_seconds.map(timefmt::duration).unwrap_or_else(|| "-".into())) }
            td.error { (r.error_message.as_deref().unwrap_or("")) }
        } } } }
    }
}

/// Renders one run.
pub(crate) fn render_run(p: &Panel<RunDetail>) -> Markup {
    panel("run", "Run", p, |d| {
        let r = &d.run;
        html! {
            dl {
                dt { "pipeline" } dd { a href={"/pipelines?pipeline=" (super::encode(&r.pipeline_name))} { (r.pipeline_name) } }
                dt { "status" } dd { (badge(&r.status)) }
                dt { "started" } dd { (when(&r.started_at)) }
                dt { "finished" } dd { (when(&r.finished_at)) }
                dt { "duration" } dd { (r.duration_seconds.map(timefmt::duration).unwrap_or_else(|| "-".into())) }
                dt { "error" } dd.error { (r.error_message.as_deref().unwrap_or("-")) }
            }
            h3 { "Metadata" }
            pre { (serde_json::to_string_pretty(&d.metadata).unwrap_or_default()) }
        }
    })
}
