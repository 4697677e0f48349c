//! `/alerts` and the silence actions.

use axum::Form;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use maud::{Markup, html};

use super::{Flash, badge, flash, num, panel, redirect, when};
use crate::actions::{self, SilenceForm, SimpleForm};
use crate::auth::CSRF_NAME;
use crate::data::alerts::AlertsView;
use crate::server::{AppState, blocking};

/// Renders `/alerts`.
pub(crate) fn render(v: &AlertsView, f: &Flash, actions_enabled: bool, csrf: &str) -> Markup {
    html! {
        (flash(f))
        (panel("states", "Alert states", &v.states, |rows| html! {
            table { thead { tr { th { "alert" } th { "status" } th { "severity" } th { "firing since" } th { "value" } th { "message" } th { "last evaluated" } th { "notifications" } } }
            tbody { @for s in rows { tr {
                td { (s.alert_name) } td { (badge(&s.status)) } td { (badge(&s.severity)) }
                td { (when(&s.firing_since)) } td { (num(s.last_value, 3)) }
                td { (s.last_message.as_deref().unwrap_or("")) }
                td { (when(&s.last_evaluated_at)) } td { (s.notification_count) }
            } } } }
        }))
        (panel("silences", "Silences", &v.silences, |rows| html! {
            table #silence-list { thead { tr { th { "matcher" } th { "until" } th { "reason" } th { "by" } th {} } }
            tbody { @for s in rows { tr {
                td.matcher { (s.matcher) } td { (when(&s.until)) } td { (s.reason) }
                td { (s.created_by.as_deref().unwrap_or("-")) }
                td { @if actions_enabled {
                    form.inline method="post" action="/alerts/silences/expire" {
                        input type="hidden" name=(CSRF_NAME) value=(csrf);
                        input type="hidden" name="matcher" value=(s.matcher);
                        input type="password" name="admin_token" placeholder="admin token" autocomplete="off" required;
                        button type="submit" { "Expire" }
                    }
                } }
            } } } }
        }))
        (silence_form(actions_enabled, csrf))
        (panel("rules", "Rules", &v.rules, |rows| html! {
            table { thead { tr { th { "alert" } th { "condition" } th { "severity" } th { "channels" } th { "for" } th { "repeat" } th { "about" } } }
            tbody { @for r in rows { tr {
                td { (r.alert_name) } td.mono { (r.condition) } td { (badge(&r.severity)) }
                td { (r.channels.join(", ")) } td { (r.for_evaluations) " eval." } td { (r.repeat_interval) }
                td { (r.description.as_deref().unwrap_or("")) }
            } } } }
        }))
        (panel("notifications", "Notification history (alerts.log, newest first)", &v.notifications, |rows| html! {
            table { thead { tr { th { "time" } th { "level" } th { "message" } } }
            tbody { @for l in rows { tr { td.mono { (l.time) } td { (badge(&l.level.to_lowercase())) } td { (l.message) } } } } }
        }))
    }
}

fn silence_form(enabled: bool, csrf: &str) -> Markup {
    html! {
        section.panel #new-silence data-panel="new-silence" data-state="ready" {
            h2 { "New silence" }
            @if enabled {
                form.action method="post" action="/alerts/silences" #silence-form {
                    input type="hidden" name=(CSRF_NAME) value=(csrf);
                    label { "alert (or prefix*) " input type="text" name="matcher" required placeholder="high_latency"; }
                    label { "for " input type="text" name="duration" required value="2h" size="6"; }
                    label { "reason " input type="text" name="reason" required placeholder="why"; }
                    label { "admin token " input type="password" name="admin_token" autocomplete="off" required; }
                    button type="submit" { "Silence" }
                }
            } @else {
                p.muted { "Silences are disabled here: start the dashboard with RECOPS_ADMIN_TOKEN set to enable actions (or use `recops alert silence`)." }
            }
        }
    }
}

/// `POST /alerts/silences`.
pub(crate) async fn create_silence(
    State(s): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<SilenceForm>,
) -> Response {
    if let Err(refusal) =
        s.guard
            .check(&headers, f.admin_token.as_deref(), f.recops_csrf.as_deref())
    {
        return redirect("/alerts", Err(refusal.message()));
    }
    match blocking(&s, move |c| actions::silence(c, &f)).await {
        Ok(r) => redirect("/alerts", r),
        Err(r) => r,
    }
}

/// `POST /alerts/silences/expire`.
pub(crate) async fn expire_silence(
    State(s): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<SimpleForm>,
) -> Response {
    if let Err(refusal) =
        s.guard
            .check(&headers, f.admin_token.as_deref(), f.recops_csrf.as_deref())
    {
        return redirect("/alerts", Err(refusal.message()));
    }
    let matcher = f.matcher.unwrap_or_default();
    match blocking(&s, move |c| actions::expire(c, &matcher)).await {
        Ok(r) => redirect("/alerts", r),
        Err(r) => r,
    }
}
