//! The dead-man's switch's way out: a small trait the scheduler sends `job_overdue`
//! alerts through, so the alerting crate (or a test) plugs in without the scheduler
//! depending on it.

use std::fmt;

use chrono::{DateTime, Utc};
use recops_core::Severity;
use serde::Serialize;

/// The name of the dead-man's-switch alert.
pub const JOB_OVERDUE: &str = "job_overdue";

/// An alert raised by the scheduler.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SchedulerAlert {
    /// The alert name ([`JOB_OVERDUE`]).
    pub name: &'static str,
    /// The job concerned.
    pub job: String,
    /// The alert's severity (`critical` for `job_overdue`), the same when it resolves.
    pub severity: Severity,
    /// False when the alert fires, true when the condition has cleared (the job
    /// succeeded again).
    pub resolved: bool,
    /// The human message (several lines: job, last success, expected period).
    pub message: String,
    /// The last success of the job, if it ever succeeded.
    pub last_success: Option<DateTime<Utc>>,
}

impl SchedulerAlert {
    /// The alert's name for one job: `job_overdue_<job>` (as the spec's
    /// `pipeline_<pipeline>_<status>`), so each job has its own alert state and
    /// `job_overdue_*` silences them all.
    pub fn alert_name(&self) -> String {
        format!("{}_{}", self.name, self.job)
    }
}

/// Where scheduler alerts go.
///
/// The scheduler calls [`send`](Self::send) with `resolved: false` when a job becomes
/// overdue and again at every overdue check (about once a minute) while it stays
/// overdue, and once with `resolved: true` when the job succeeds again. A sink
/// therefore deduplicates, as `recops_alerting::AlertManager::observe` does (one
/// notification, a reminder after the repeat interval, a resolved notice).
/// Implementations must not block for long and must not fail the scheduler: they
/// report delivery problems through their own logs.
pub trait AlertSink: Send + Sync + fmt::Debug {
    /// Hands over the current state of `alert`; returns whether a notification went out
    /// on at least one channel.
    fn send(&self, alert: &SchedulerAlert) -> bool;
}

/// A sink that delivers nothing (the alert is still written to `scheduler.log`).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoAlertSink;

impl AlertSink for NoAlertSink {
    fn send(&self, _alert: &SchedulerAlert) -> bool {
        false
    }
}
