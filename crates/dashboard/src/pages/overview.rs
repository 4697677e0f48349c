//! `/`: the overview.

use maud::{Markup, html};

use super::{badge, panel, when};
use crate::data::overview::{Light, OverviewView};
use crate::store::Panel;

/// Renders `/`.
pub(crate) fn render(v: &OverviewView) -> Markup {
    html! {
        section.panel #health data-panel="health" data-state="ready" {
            h2 { "Health" }
            div.lights {
                @for c in &v.health {
                    div class={"light " (light(c.light))} {
                        strong { (c.component) } " " (badge(light(c.light)))
                        p { (c.reason) }
                    }
                }
            }
        }
        section.panel #serving data-panel="serving" data-state="ready" {
            h2 { "Model" }
            p { "Serving: " strong { (v.serving.model_id.as_deref().unwrap_or("none")) } " " span.muted { "(" (v.serving.source) ")" } }
            p { "Registry champion: " strong { (v.champion.as_deref().unwrap_or("none")) } }
            @if v.champion.is_some() && v.serving.model_id != v.champion {
                p.warn-text { "The serving model is not the champion: run model-deployment." }
            }
        }
        (panel("firing", "Alerts firing", &v.firing, |rows| html! {
            table { thead { tr { th { "alert" } th { "severity" } th { "since" } th { "message" } } }
                tbody { @for a in rows { tr {
                    td { a href="/alerts" { (a.alert_name) } } td { (badge(&a.severity)) }
                    td { (when(&a.firing_since)) } td { (a.last_message.as_deref().unwrap_or("")) }
                } } } }
        }))
        (panel("last-runs", "Last run of each pipeline", &v.last_runs, |rows| super::pipelines::run_table(rows)))
        (panel("drift", "Latest drift", &v.drift, |r| html! {
            p { (badge(r.severity.as_str())) " " (when(&r.generated_at)) " · " a href="/drift" { (r.file) } }
        }))
        (panel("next-jobs", "Next scheduled jobs", &v.next_jobs, |rows| html! {
            table { tbody { @for (job, at) in rows { tr { td { a href="/scheduler" { (job) } } td { (when(&Some(at.clone()))) } } } } }
        }))
        @if matches!(v.last_runs, Panel::Empty { .. }) {
            p.muted { "A fresh home: run `recops demo` to fill every page with a real run." }
        }
    }
}

fn light(l: Light) -> &'static str {
    match l {
        Light::Green => "green",
        Light::Amber => "amber",
        Light::Red => "red",
    }
}
