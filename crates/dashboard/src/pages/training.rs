//! `/training`, one run's page, and the comparison of several runs.

use maud::{Markup, html};

use super::{badge, chart, encode, num, panel, when};
use crate::data::training::{MAX_COMPARED, TrainingDetail, TrainingRow, TrainingView};
use crate::store::Panel;
use crate::timefmt;

/// Renders `/training`.
pub(crate) fn render(v: &TrainingView) -> Markup {
    html! {
        form.filters method="get" action="/training" {
            label { "model type " select name="model_type" {
                option value="" { "all" }
                @for t in ["als", "bpr"] { option value=(t) selected[v.filter.model_type.as_deref() == Some(t)] { (t) } }
            } }
            button type="submit" { "Filter" }
        }
        div.charts { (chart("Evaluation of completed runs vs the popularity baseline", "/api/v1/training/evaluation")) }
        (panel("runs", "Training runs", &v.runs, |p| html! {
            form method="get" action="/training/compare" #compare-form {
                (table(&p.runs, true))
                button type="submit" { "Compare selected runs" }
            }
            @if let Some(next) = &p.next {
                p { a.next href={"/training?after=" (encode(next)) @if let Some(t) = &v.filter.model_type { "&model_type=" (encode(t)) }} { "Older runs →" } }
            }
        }))
    }
}

fn table(rows: &[TrainingRow], selectable: bool) -> Markup {
    html! {
        table.runs { thead { tr {
            @if selectable { th { "compare" } }
            th { "run" } th { "type" } th { "status" } th { "started" } th { "recall@10" } th { "baseline" } th { "ndcg@10" } th { "coverage" } th { "vs baseline" } th { "time" } th { "model" }
        } }
        tbody { @for r in rows { tr {
            @if selectable { td { input type="checkbox" name="run" value=(r.run_id) aria-label={"compare " (r.run_id)}; } }
            td { a href={"/training/runs/" (encode(&r.run_id))} { (r.run_id) } }
            td { (r.model_type.as_deref().unwrap_or("-")) }
            td { (badge(r.status.as_deref().unwrap_or("-"))) }
            td { (when(&r.started_at)) }
            td { (num(r.recall_at_10, 4)) } td { (num(r.baseline_recall_at_10, 4)) }
            td { (num(r.ndcg_at_10, 4)) } td { (num(r.coverage, 3)) }
            td { (r.improvement_pct.map(|p| format!("{p:+.1} %")).unwrap_or_else(|| "-".into())) }
            td { (r.training_time_seconds.map(timefmt::duration).unwrap_or_else(|| "-".into())) }
            td { (r.model_id.as_deref().unwrap_or("-")) " " @if let Some(s) = &r.registry_status { (badge(s)) } }
        } } } }
    }
}

/// Renders one run.
pub(crate) fn render_run(p: &Panel<TrainingDetail>) -> Markup {
    let charts = match p {
        Panel::Ready { data } => {
            let src = format!("/api/v1/training/runs/{}/curves", encode(&data.run.run_id));
            chart("Loss and validation metrics per iteration", &src)
        }
        _ => html! {},
    };
    html! {
        div.charts { (charts) }
        (panel("run", "Run", p, |d| html! {
            (table(std::slice::from_ref(&d.run), false))
            dl {
                dt { "iterations logged" } dd { (d.iterations) }
                dt { "data version" } dd { (d.run.data_version.as_deref().unwrap_or("-")) }
                dt { "git commit" } dd { (d.git_commit.as_deref().unwrap_or("-")) }
                dt { "artifacts" } dd { (d.artifacts_path.as_deref().unwrap_or("-")) }
            }
            h3 { "Config" }
            pre { (serde_json::to_string_pretty(&d.hyperparameters).unwrap_or_default()) }
        }))
    }
}

/// Renders the comparison of `runs` (from `?run=a&run=b` checkboxes or `?runs=a,b`).
pub(crate) fn render_compare(runs: &[String]) -> Markup {
    let list = runs
        .iter()
        .take(MAX_COMPARED)
        .cloned()
        .collect::<Vec<_>>()
        .join(",");
    let src = |curve: &str| {
        format!(
            "/api/v1/training/compare?runs={}&curve={curve}",
            encode(&list)
        )
    };
    html! {
        @if runs.is_empty() {
            section.panel data-panel="compare" data-state="empty" { p.empty { "Pick runs to compare on " a href="/training" { "the training page" } "." } }
        } @else {
            p { "Comparing " (runs.len().min(MAX_COMPARED)) " runs: " (list) }
            div.charts {
                (chart("Validation ndcg@10 per iteration", &src("validation_ndcg")))
                (chart("Validation recall@10 per iteration", &src("validation_recall")))
                (chart("Loss per iteration", &src("loss")))
            }
        }
    }
}
