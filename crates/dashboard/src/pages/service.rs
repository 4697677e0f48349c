//! `/service` and `/drift`: mostly charts.

use maud::{Markup, html};

use super::{badge, chart, num, panel, pct, when};
use crate::data::drift::DriftView;
use crate::data::service::{Range, ServiceView};

/// Renders `/service`.
pub(crate) fn render(v: &ServiceView) -> Markup {
    let r = v.range.as_str();
    html! {
        nav.ranges {
            @for range in Range::ALL {
                a href={"/service?range=" (range.as_str())} class=[(range == v.range).then_some("active")] { (range.as_str()) }
            }
            span.muted { " · one point per " (v.bucket_seconds / 60) " min · /recommend" }
        }
        (panel("totals", &format!("Last {r}"), &v.totals, |t| html! {
            div.stats {
                div { strong { (t.requests) } " requests" }
                div { strong { (num(Some(t.requests_per_minute), 2)) } " per minute" }
                div { strong { (pct(t.error_rate)) } " errors" }
                div { strong { (pct(t.fallback_rate)) } " fallbacks" }
                div { strong { (num(t.worst_p99_ms, 1)) " ms" } " worst p99" }
                div { "last data " (when(&t.last_minute)) }
            }
        }))
        div.charts {
            (chart("Requests per minute (model reloads marked)", &format!("/api/v1/service/chart?range={r}&chart=requests")))
            (chart("Latency p50 / p95 / p99 (ms)", &format!("/api/v1/service/chart?range={r}&chart=latency")))
            (chart("Error and fallback rates", &format!("/api/v1/service/chart?range={r}&chart=rates")))
        }
    }
}

/// Renders `/drift`.
pub(crate) fn render_drift(v: &DriftView) -> Markup {
    html! {
        div.charts {
            (chart("Severity over time", "/api/v1/drift/chart?chart=severity"))
            (chart("Popularity overlap of the top items", "/api/v1/drift/chart?chart=popularity"))
            (chart("Interactions per day: historical vs new window", "/api/v1/drift/chart?chart=volume"))
        }
        (panel("latest", "Latest report", &v.latest, |rep| html! {
            p { (badge(rep.overall_severity.as_str())) " generated " (rep.generated_at) }
            @for r in &rep.recommendations { p { (r) } }
            h3 { "Rating distribution: historical vs new" }
            table { thead { tr { th { "rating" } th { "historical" } th { "new" } th { "difference" } } }
            tbody { @for (rating, h) in &rep.rating_drift.rating_comparison.historical { tr {
                td { (rating) } td { (pct(Some(*h))) }
                td { (pct(rep.rating_drift.rating_comparison.new.get(rating).copied())) }
                td { (pct(rep.rating_drift.rating_comparison.differences.get(rating).copied())) }
            } } } }
            h3 { "Top " (rep.popularity_drift.top_k) " items" }
            p { "Jaccard " (num(Some(rep.popularity_drift.jaccard_similarity), 3)) " · stable " (rep.popularity_drift.stable_count) }
            p { "Entered: " (ids(&rep.popularity_drift.new_trending)) }
            p { "Left: " (ids(&rep.popularity_drift.dropped_out)) }
        }))
        (panel("reports", "Reports", &v.reports, |rows| html! {
            table { thead { tr { th { "report" } th { "generated" } th { "severity" } th { "rating max diff" } th { "jaccard" } th { "volume change" } th { "data version" } } }
            tbody { @for r in rows { tr {
                td.mono { (r.file) } td { (when(&r.generated_at)) } td { (badge(r.severity.as_str())) }
                td { (num(Some(r.rating_max_difference), 3)) } td { (num(Some(r.jaccard_similarity), 3)) }
                td { (num(Some(r.volume_change_pct), 1)) " %" } td.mono { (r.data_version.as_deref().unwrap_or("-")) }
            } } } }
        }))
        (panel("data-versions", "Data versions", &v.data_versions, |rows| html! {
            table { thead { tr { th { "refreshed" } th { "data version" } th { "rows" } th { "users" } th { "items" } th { "rejected" } th { "quality" } } }
            tbody { @for d in rows { tr {
                td { (when(&d.at)) } td.mono { (d.data_version.as_deref().unwrap_or("-")) }
                td { (opt(d.total_records)) } td { (opt(d.users)) } td { (opt(d.items)) } td { (opt(d.rejected_records)) }
                td { (num(d.quality, 3)) }
            } } } }
        }))
    }
}

fn ids(v: &[i64]) -> String {
    if v.is_empty() {
        return "none".to_owned();
    }
    v.iter().map(i64::to_string).collect::<Vec<_>>().join(", ")
}

fn opt(v: Option<u64>) -> String {
    v.map(|v| v.to_string()).unwrap_or_else(|| "-".to_owned())
}
