//! The scheduler's dead-man's switch (`job_overdue`) delivered through recops-alerting.

use std::sync::Arc;

use recops_alerting::{AlertManager, AlertsConfig};
use recops_core::{Home, error_chain};
use recops_scheduler::{AlertSink, NoAlertSink, SchedulerAlert};

/// Delivers the scheduler's alerts through an [`AlertManager`] with
/// [`observe`](AlertManager::observe) on `job_overdue_<job>`: a job that stays overdue
/// notifies once on the channels of its severity (or of a `job_overdue_<job>` rule),
/// reminds after the repeat interval, and sends a resolved notice when it succeeds
/// again; silences (`recops alert silence 'job_overdue_*'`) apply.
#[derive(Debug)]
pub struct SchedulerAlerts {
    alerts: AlertManager,
}

impl SchedulerAlerts {
    /// Wraps `alerts`.
    pub fn new(alerts: AlertManager) -> Self {
        SchedulerAlerts { alerts }
    }

    /// The alert sink of the scheduler of `home`. An alerts config that does not load
    /// must not stop every job: the error is logged and alerts go to the alert log
    /// through a log-only manager ([`AlertsConfig::log_only`], as the jobs'
    /// [`JobAlerts`](crate::job::JobAlerts) do), and to `logs/scheduler/scheduler.log`.
    pub fn for_home(home: &Home) -> Arc<dyn AlertSink> {
        match AlertManager::load(home) {
            Ok(alerts) => Arc::new(SchedulerAlerts::new(alerts)),
            Err(e) => {
                tracing::error!(
                    error = %error_chain(&e),
                    "the alerts config is unusable: job_overdue alerts go to the alert log only"
                );
                match AlertManager::builder(home)
                    .config(AlertsConfig::log_only())
                    .build()
                {
                    Ok(alerts) => Arc::new(SchedulerAlerts::new(alerts)),
                    Err(_) => Arc::new(NoAlertSink),
                }
            }
        }
    }
}

impl AlertSink for SchedulerAlerts {
    fn send(&self, alert: &SchedulerAlert) -> bool {
        let severity = alert.severity;
        let evaluation = self.alerts.observe(
            &alert.alert_name(),
            !alert.resolved,
            &alert.message,
            severity,
        );
        evaluation.delivery.is_some_and(|d| d.any_sent())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone, Utc};
    use recops_core::{FixedClock, Home, Severity};

    fn alert(resolved: bool) -> SchedulerAlert {
        SchedulerAlert {
            name: recops_scheduler::JOB_OVERDUE,
            job: "data_refresh".into(),
            severity: Severity::Critical,
            resolved,
            message: "Job data_refresh has not succeeded for 2d 1h".into(),
            last_success: None,
        }
    }

    #[test]
    fn an_overdue_job_is_notified_once_reminded_later_and_resolved() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::new(dir.path());
        let clock = FixedClock::new(Utc.with_ymd_and_hms(2025, 1, 17, 2, 0, 0).unwrap());
        let manager = AlertManager::builder(&home)
            .clock(clock.shared())
            .build()
            .unwrap();
        let sink = SchedulerAlerts::new(manager);
        assert!(
            sink.send(&alert(false)),
            "first notice goes out (log channel)"
        );
        // The scheduler checks every minute; within the repeat interval nothing more.
        for _ in 0..10 {
            clock.advance(Duration::minutes(1));
            assert!(!sink.send(&alert(false)));
        }
        let log = std::fs::read_to_string(home.alerts_log()).unwrap();
        assert_eq!(
            log.matches("job_overdue_data_refresh: Job data_refresh has not succeeded")
                .count(),
            1,
            "{log}"
        );
        assert!(log.contains("| CRITICAL | alerting |"), "{log}");
        // After the repeat interval (4 h by default), a reminder.
        clock.advance(Duration::hours(4));
        assert!(sink.send(&alert(false)));
        // Success: resolved.
        clock.advance(Duration::minutes(5));
        assert!(sink.send(&alert(true)));
        let log = std::fs::read_to_string(home.alerts_log()).unwrap();
        assert!(log.contains("job_overdue_data_refresh resolved"), "{log}");
    }

    #[test]
    fn a_broken_alerts_config_falls_back_instead_of_stopping_the_scheduler() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::new(dir.path());
        std::fs::create_dir_all(home.config_dir()).unwrap();
        std::fs::write(home.alerts_config(), "alerts: [not, a, map]\n").unwrap();
        let sink = SchedulerAlerts::for_home(&home);
        // The alert still reaches the alert log, through the log-only manager.
        assert!(sink.send(&alert(false)));
        let log = std::fs::read_to_string(home.alerts_log()).unwrap();
        assert!(log.contains("job_overdue_data_refresh"), "{log}");
        // A good home gets a working sink.
        let ok = tempfile::tempdir().unwrap();
        assert!(SchedulerAlerts::for_home(&Home::new(ok.path())).send(&alert(false)));
    }
}
