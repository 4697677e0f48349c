//! `/scheduler`.

use maud::{Markup, html};

use super::{badge, panel, when};
use crate::data::scheduler::SchedulerView;

/// Renders `/scheduler`.
pub(crate) fn render(v: &SchedulerView) -> Markup {
    html! {
        p.muted { "Config: " (v.config_file) " · times in " (v.timezone) }
        (panel("jobs", "Jobs", &v.jobs, |rows| html! {
            table { thead { tr { th { "job" } th { "cron" } th { "next fires" } th { "last result" } th { "last success" } th { "state" } } }
            tbody { @for j in rows { tr {
                td { (j.job) @if !j.enabled { " " span.badge.neutral { "disabled" } } }
                td.mono { (j.cron) " " span.muted { "(timeout " (j.timeout_minutes) " min)" } }
                td { @for f in &j.next_fires { div { (when(&Some(f.clone()))) } } }
                td { @if let Some(s) = &j.last_status { (badge(s)) " " (when(&j.last_finished)) } @else { span.muted { "never ran" } } }
                td { (when(&j.last_success)) }
                td {
                    @if j.running_since.is_some() { span.badge.warn { "running" } " since " (when(&j.running_since)) }
                    @if j.overdue_since.is_some() { span.badge.bad { "overdue" } " since " (when(&j.overdue_since)) }
                }
            } } } }
        }))
        (panel("scheduler-state", "Scheduler state", &v.state, |n| html! { p { (n) " jobs have scheduler state (logs/scheduler_state.db, or the PostgreSQL of storage.url)" } }))
    }
}
