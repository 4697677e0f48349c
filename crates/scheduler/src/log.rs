//! `logs/scheduler/scheduler.log`: the spec's scheduler lines.

use chrono::Duration;
use recops_core::{LogFile, LogLevel};

use crate::schedule::Trigger;

/// `Starting job: data_refresh` (the spec's line), followed by ` | trigger=...` for a
/// run that is not an on-time cron run.
pub fn starting_line(job: &str, trigger: Trigger, scheduled: Option<&str>) -> String {
    match (trigger, scheduled) {
        (Trigger::Cron, _) => format!("Starting job: {job}"),
        (t, Some(s)) => format!("Starting job: {job} | trigger={t} | scheduled={s}"),
        (t, None) => format!("Starting job: {job} | trigger={t}"),
    }
}

/// `Job completed: data_refresh | duration=90s | status=success` (the spec's line);
/// a failure adds ` | reason=... | error=...`.
pub fn completed_line(job: &str, duration: Duration, failure: Option<(&str, &str)>) -> String {
    let secs = (duration.num_milliseconds().max(0) as f64 / 1000.0).round() as i64;
    match failure {
        None => format!("Job completed: {job} | duration={secs}s | status=success"),
        Some((reason, error)) => format!(
            "Job completed: {job} | duration={secs}s | status=failed | reason={reason} | error={error}"
        ),
    }
}

/// Writes scheduler lines to `scheduler.log` and mirrors them as `tracing` events.
#[derive(Debug)]
pub(crate) struct SchedulerLog {
    file: LogFile,
}

impl SchedulerLog {
    pub(crate) fn new(file: LogFile) -> Self {
        SchedulerLog { file }
    }

    pub(crate) fn write(&self, level: LogLevel, message: &str) {
        match level {
            LogLevel::Debug => tracing::debug!("{message}"),
            LogLevel::Info => tracing::info!("{message}"),
            LogLevel::Warning => tracing::warn!("{message}"),
            LogLevel::Error | LogLevel::Critical => tracing::error!("{message}"),
        }
        if let Err(e) = self.file.write_line(level, None, message) {
            tracing::error!(path = %self.file.path().display(), error = %recops_core::error_chain(&e), "cannot write the scheduler log");
        }
    }

    pub(crate) fn info(&self, message: &str) {
        self.write(LogLevel::Info, message);
    }

    pub(crate) fn warn(&self, message: &str) {
        self.write(LogLevel::Warning, message);
    }

    pub(crate) fn error(&self, message: &str) {
        self.write(LogLevel::Error, message);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_match_the_spec() {
        assert_eq!(
            starting_line("data_refresh", Trigger::Cron, Some("x")),
            "Starting job: data_refresh"
        );
        assert_eq!(
            completed_line("data_refresh", Duration::milliseconds(90_400), None),
            "Job completed: data_refresh | duration=90s | status=success"
        );
        assert_eq!(
            completed_line("health_check", Duration::seconds(5), None),
            "Job completed: health_check | duration=5s | status=success"
        );
        assert_eq!(
            completed_line(
                "model_training",
                Duration::minutes(120),
                Some(("timeout", "timed out after 2h"))
            ),
            "Job completed: model_training | duration=7200s | status=failed | reason=timeout | error=timed out after 2h"
        );
        assert_eq!(
            starting_line(
                "data_refresh",
                Trigger::CatchUp,
                Some("2025-01-15 02:00 +07")
            ),
            "Starting job: data_refresh | trigger=catch-up | scheduled=2025-01-15 02:00 +07"
        );
        assert_eq!(
            starting_line("data_refresh", Trigger::Manual, None),
            "Starting job: data_refresh | trigger=manual"
        );
    }
}
