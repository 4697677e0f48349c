//! `/models` and the rollback action.

use axum::Form;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use maud::{Markup, html};

use super::{Flash, badge, flash, num, panel, redirect, when};
use crate::actions::{self, SimpleForm};
use crate::auth::CSRF_NAME;
use crate::data::models::ModelsView;
use crate::server::{AppState, blocking};

/// Renders `/models`.
pub(crate) fn render(v: &ModelsView, f: &Flash, actions_enabled: bool, csrf: &str) -> Markup {
    html! {
        (flash(f))
        section.panel #serving data-panel="serving" data-state="ready" {
            h2 { "Serving" }
            p { "Serving: " strong { (v.serving.model_id.as_deref().unwrap_or("none")) } " " span.muted { "(" (v.serving.source) ")" } " · champion: " strong { (v.champion.as_deref().unwrap_or("none")) }
                @if let Some(d) = &v.deployed { " · deployed (registry): " strong { (d) } } }
            (rollback_form(actions_enabled, csrf))
        }
        (panel("models", "Registry", &v.models, |rows| html! {
            table { thead { tr { th { "model" } th { "type" } th { "status" } th { "ndcg@10" } th { "recall@10" } th { "baseline recall@10" } th { "registered" } th { "data version" } } }
            tbody { @for m in rows { tr {
                td { (m.model_id) @if m.champion { " " span.badge.good { "champion" } } @if m.serving { " " span.badge.neutral { "serving" } } }
                td { (m.model_type) } td { (badge(&m.status)) }
                td { (num(m.metrics.get("ndcg@10").copied(), 4)) }
                td { (num(m.metrics.get("recall@10").copied(), 4)) }
                td { (num(m.baseline.get("recall@10").copied(), 4)) }
                td { (when(&m.registered_at)) }
                td.mono { (m.data_version) }
            } } } }
        }))
        (panel("deployments", "Deployments", &v.deployments, |rows| html! {
            table { thead { tr { th { "when" } th { "action" } th { "model" } th { "previous" } th { "status" } th { "verification" } th { "rollback" } th { "reason" } } }
            tbody { @for d in rows { tr {
                td { (when(&d.at)) }
                td { (format!("{:?}", d.record.action).to_lowercase()) }
                td { (d.record.model_id) } td { (d.record.previous_model_id.as_deref().unwrap_or("-")) }
                td { (badge(&format!("{:?}", d.record.status).to_lowercase())) }
                td { @match &d.record.verification {
                    Some(v) if v.success() => span.badge.good { "passed" },
                    Some(v) => { span.badge.bad { "failed" } " " (v.errors.join("; ")) },
                    None => span.muted { "-" },
                } }
                td { @if d.record.rollback_triggered { (badge(&format!("{:?}", d.record.rollback_status).to_lowercase())) } @else { "-" } }
                td { (d.record.reason.as_deref().unwrap_or("")) }
            } } } }
        }))
        (panel("audit", "Registry audit trail", &v.audit, |rows| html! {
            table { thead { tr { th { "time" } th { "operation" } th { "model" } th { "current_best before → after" } th { "reason" } } }
            tbody { @for a in rows { tr {
                td.mono { (a.time) } td { (a.operation) } td { (a.model_id.as_deref().unwrap_or("-")) }
                td { (a.previous_current_best.as_deref().unwrap_or("-")) " → " (a.current_best.as_deref().unwrap_or("-")) }
                td { (a.reason) }
            } } } }
        }))
    }
}

fn rollback_form(enabled: bool, csrf: &str) -> Markup {
    html! {
        @if enabled {
            form.action method="post" action="/models/rollback" #rollback-form {
                input type="hidden" name=(CSRF_NAME) value=(csrf);
                label { "admin token " input type="password" name="admin_token" autocomplete="off" required; }
                button type="submit" { "Roll back to the previous model" }
            }
        } @else {
            p.muted { "Rollback is disabled: start the dashboard with RECOPS_ADMIN_TOKEN set to enable actions." }
        }
    }
}

/// `POST /models/rollback`.
pub(crate) async fn rollback(
    State(s): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<SimpleForm>,
) -> Response {
    if let Err(refusal) =
        s.guard
            .check(&headers, f.admin_token.as_deref(), f.recops_csrf.as_deref())
    {
        return redirect("/models", Err(refusal.message()));
    }
    let token = s.guard.admin_token().map(str::to_owned);
    let result = blocking(&s, move |c| actions::rollback(c, token)).await;
    match result {
        Ok(r) => redirect("/models", r),
        Err(r) => r,
    }
}
