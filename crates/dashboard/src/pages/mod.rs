//! The HTML pages: one module per page, a shared layout, and the helpers every page
//! uses (panels with their empty, stale and unavailable states, times, charts).
//! maud escapes every interpolated string, so stored text always renders as text.

mod alerts;
mod models;
mod overview;
mod pipelines;
mod scheduler;
mod service;
mod training;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};
use serde::Deserialize;

use crate::data::{self, When};
use crate::server::{AppState, blocking};
use crate::store::Panel;

pub(crate) use alerts::{create_silence, expire_silence};
pub(crate) use models::rollback;

/// Header the live refresh sends to get only the `<main>` content.
pub(crate) const FRAGMENT_HEADER: &str = "x-recops-fragment";

const NAV: &[(&str, &str)] = &[
    ("/", "Overview"),
    ("/pipelines", "Pipelines"),
    ("/training", "Training"),
    ("/models", "Models"),
    ("/service", "Service"),
    ("/drift", "Drift"),
    ("/alerts", "Alerts"),
    ("/scheduler", "Scheduler"),
];

/// A one-line notice after an action (`?notice=` / `?error=`).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Flash {
    pub(crate) notice: Option<String>,
    pub(crate) error: Option<String>,
}

/// Wraps `body` in the layout (or returns it alone for a live refresh), with the
/// CSRF cookie.
pub(crate) fn page(
    s: &AppState,
    headers: &HeaderMap,
    path: &str,
    title: &str,
    body: Markup,
) -> Response {
    let markup = if headers.contains_key(FRAGMENT_HEADER) {
        body
    } else {
        layout(s, path, title, body)
    };
    let mut res = markup.into_response();
    if let Ok(v) = HeaderValue::from_str(&s.guard.cookie()) {
        res.headers_mut().insert(header::SET_COOKIE, v);
    }
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

fn layout(s: &AppState, path: &str, title: &str, body: Markup) -> Markup {
    let tz = s.ctx.tz.name();
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "recops · " (title) }
                link rel="icon" href="/assets/favicon.svg" type="image/svg+xml";
                link rel="stylesheet" href="/assets/uPlot.min.css";
                link rel="stylesheet" href="/assets/dashboard.css";
                script src="/assets/uPlot.iife.min.js" defer {}
                script src="/assets/dashboard.js" defer {}
            }
            body data-tz=(tz) data-refresh-seconds="15" {
                header {
                    span.brand { "recops" }
                    nav {
                        @for (href, label) in NAV {
                            a href=(href) class=[(*href == path).then_some("active")] { (label) }
                        }
                    }
                    span #live { "live · times in " (tz) " · " span #updated { "" } }
                }
                main #main { h1 { (title) } (body) }
                footer {
                    "recops dashboard · read-only except protected actions · charts by "
                    a href="/assets/uPlot.LICENSE" { "uPlot (MIT)" }
                }
            }
        }
    }
}

/// A panel: its data rendered by `f`, or its empty, stale or unavailable state.
pub(crate) fn panel<T>(
    id: &str,
    title: &str,
    p: &Panel<T>,
    f: impl FnOnce(&T) -> Markup,
) -> Markup {
    let state = match p {
        Panel::Ready { .. } => "ready",
        Panel::Empty { .. } => "empty",
        Panel::Stale { .. } => "stale",
        Panel::Unavailable { .. } => "unavailable",
    };
    html! {
        section.panel id=(id) data-panel=(id) data-state=(state) {
            h2 { (title) }
            @match p {
                Panel::Ready { data } => (f(data)),
                Panel::Empty { hint } => p.empty { (hint) },
                Panel::Stale { notice } => p.stale { "stale: " (notice) },
                Panel::Unavailable { message } => p.unavailable { (message) },
            }
        }
    }
}

/// A chart drawn by the browser from `src` (an `/api/v1` URL returning a chart panel).
pub(crate) fn chart(title: &str, src: &str) -> Markup {
    html! {
        figure.chart-box {
            figcaption { (title) }
            div.chart data-src=(src) data-title=(title) {}
        }
    }
}

/// A time: local in the configured zone, relative, UTC on hover.
pub(crate) fn when(w: &Option<When>) -> Markup {
    match w {
        Some(w) => html! {
            time datetime=(w.utc) title=(w.utc) { (w.local) } " " span.rel { "(" (w.relative) ")" }
        },
        None => html! { span.muted { "-" } },
    }
}

/// A status as a coloured badge.
pub(crate) fn badge(status: &str) -> Markup {
    let class = match status {
        "success" | "completed" | "ok" | "healthy" | "active" | "green" | "low" => "good",
        "running" | "pending" | "warning" | "amber" | "medium" | "cancelled" => "warn",
        "failed" | "firing" | "unhealthy" | "red" | "high" | "critical" => "bad",
        _ => "neutral",
    };
    html! { span class={"badge " (class)} { (status) } }
}

/// A number with `digits` decimals, `-` when absent.
pub(crate) fn num(v: Option<f64>, digits: usize) -> String {
    v.filter(|v| v.is_finite())
        .map(|v| format!("{v:.digits$}"))
        .unwrap_or_else(|| "-".to_owned())
}

/// A share as a percentage.
pub(crate) fn pct(v: Option<f64>) -> String {
    v.filter(|v| v.is_finite())
        .map(|v| format!("{:.1} %", v * 100.0))
        .unwrap_or_else(|| "-".to_owned())
}

/// The one-line result of an action.
pub(crate) fn flash(f: &Flash) -> Markup {
    html! {
        @if let Some(n) = &f.notice { p.flash.good role="status" { (n) } }
        @if let Some(e) = &f.error { p.flash.bad role="alert" { (e) } }
    }
}

/// Redirects after a POST with a notice or an error.
pub(crate) fn redirect(to: &str, result: Result<String, String>) -> Response {
    let (key, text) = match result {
        Ok(m) => ("notice", m),
        Err(e) => ("error", e),
    };
    let location = format!("{to}?{key}={}", encode(&text));
    (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response()
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `GET /`.
pub(crate) async fn overview(State(s): State<AppState>, headers: HeaderMap) -> Response {
    match blocking(&s, data::overview::load).await {
        Ok(v) => page(&s, &headers, "/", "Overview", overview::render(&v)),
        Err(r) => r,
    }
}

/// `GET /pipelines`.
pub(crate) async fn pipelines(
    State(s): State<AppState>,
    Query(f): Query<data::pipelines::RunFilter>,
    headers: HeaderMap,
) -> Response {
    match blocking(&s, move |c| data::pipelines::load(c, f)).await {
        Ok(v) => page(
            &s,
            &headers,
            "/pipelines",
            "Pipelines",
            pipelines::render(&v),
        ),
        Err(r) => r,
    }
}

/// `GET /pipelines/runs/{run_id}`.
pub(crate) async fn pipeline_run(
    State(s): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let title = format!("Pipeline run {id}");
    match blocking(&s, move |c| data::pipelines::detail(c, &id)).await {
        Ok(v) => page(
            &s,
            &headers,
            "/pipelines",
            &title,
            pipelines::render_run(&v),
        ),
        Err(r) => r,
    }
}

/// `GET /training`.
pub(crate) async fn training(
    State(s): State<AppState>,
    Query(f): Query<data::training::TrainingFilter>,
    headers: HeaderMap,
) -> Response {
    match blocking(&s, move |c| data::training::load(c, f)).await {
        Ok(v) => page(&s, &headers, "/training", "Training", training::render(&v)),
        Err(r) => r,
    }
}

/// `GET /training/runs/{run_id}`.
pub(crate) async fn training_run(
    State(s): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let title = format!("Training run {id}");
    match blocking(&s, move |c| data::training::detail(c, &id)).await {
        Ok(v) => page(&s, &headers, "/training", &title, training::render_run(&v)),
        Err(r) => r,
    }
}

/// `GET /training/compare?runs=a,b`.
pub(crate) async fn training_compare(
    Query(q): Query<crate::api::CompareQuery>,
    State(s): State<AppState>,
    headers: HeaderMap,
) -> Response {
    page(
        &s,
        &headers,
        "/training",
        "Compare training runs",
        training::render_compare(&q.ids()),
    )
}

/// `GET /models`.
pub(crate) async fn models(
    State(s): State<AppState>,
    Query(f): Query<Flash>,
    headers: HeaderMap,
) -> Response {
    let enabled = s.guard.actions_enabled();
    let csrf = s.guard.csrf().to_owned();
    match blocking(&s, data::models::load).await {
        Ok(v) => page(
            &s,
            &headers,
            "/models",
            "Models",
            models::render(&v, &f, enabled, &csrf),
        ),
        Err(r) => r,
    }
}

/// `GET /service`.
pub(crate) async fn service(
    State(s): State<AppState>,
    Query(q): Query<data::service::ServiceQuery>,
    headers: HeaderMap,
) -> Response {
    match blocking(&s, move |c| data::service::load(c, q)).await {
        Ok(v) => page(&s, &headers, "/service", "Service", service::render(&v)),
        Err(r) => r,
    }
}

/// `GET /drift`.
pub(crate) async fn drift(State(s): State<AppState>, headers: HeaderMap) -> Response {
    match blocking(&s, data::drift::load).await {
        Ok(v) => page(&s, &headers, "/drift", "Drift", service::render_drift(&v)),
        Err(r) => r,
    }
}

/// `GET /alerts`.
pub(crate) async fn alerts(
    State(s): State<AppState>,
    Query(f): Query<Flash>,
    headers: HeaderMap,
) -> Response {
    let enabled = s.guard.actions_enabled();
    let csrf = s.guard.csrf().to_owned();
    match blocking(&s, data::alerts::load).await {
        Ok(v) => page(
            &s,
            &headers,
            "/alerts",
            "Alerts",
            alerts::render(&v, &f, enabled, &csrf),
        ),
        Err(r) => r,
    }
}

/// `GET /scheduler`.
pub(crate) async fn scheduler(State(s): State<AppState>, headers: HeaderMap) -> Response {
    match blocking(&s, data::scheduler::load).await {
        Ok(v) => page(
            &s,
            &headers,
            "/scheduler",
            "Scheduler",
            scheduler::render(&v),
        ),
        Err(r) => r,
    }
}

/// Anything else.
pub(crate) async fn not_found(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let body = html! { p.empty { "No such page. " a href="/" { "Back to the overview" } } };
    let mut res = page(&s, &headers, "", "Not found", body);
    *res.status_mut() = StatusCode::NOT_FOUND;
    res
}
