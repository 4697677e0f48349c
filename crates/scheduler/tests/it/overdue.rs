//! The dead-man's switch: `job_overdue` when a job has not succeeded within twice its
//! period; resolved when it succeeds again.

use chrono::Duration;
use recops_core::Severity;
use recops_scheduler::{JOB_OVERDUE, StopSignal};
use serde_json::json;

use crate::{Fixture, hcm, messages, tick_until};

#[test]
fn a_job_failing_for_two_periods_raises_job_overdue_once_then_resolves() {
    let f = Fixture::new(hcm(15, 1, 0, 0));
    let ok = f.work().join("ok");
    f.script(
        "data-refresh",
        &format!("[ -f {} ] || exit 1", ok.display()),
    );
    f.config(&[("data_refresh", "0 2 * * *", 30.0)], json!({}));
    let mut s = f.scheduler();
    s.start().unwrap();
    for day in [15, 16] {
        f.clock.set(hcm(day, 2, 0, 0));
        s.tick().unwrap();
        tick_until(&mut s, "run finished", |s| s.running_jobs().is_empty());
    }
    // 47 h after the scheduler first saw it: not yet overdue (period 24 h).
    f.clock.set(hcm(17, 0, 0, 0));
    s.tick().unwrap();
    assert!(f.alerts.alerts.lock().unwrap().is_empty());
    // 48 h + 1 min: overdue.
    f.clock.set(hcm(17, 1, 1, 0));
    s.tick().unwrap();
    {
        let alerts = f.alerts.alerts.lock().unwrap();
        assert_eq!(alerts.len(), 1);
        let a = &alerts[0];
        assert_eq!(a.name, JOB_OVERDUE);
        assert_eq!(a.job, "data_refresh");
        assert_eq!(a.severity, Severity::Critical);
        assert!(!a.resolved);
        assert!(
            a.message.contains("has not succeeded for 2d"),
            "{}",
            a.message
        );
    }
    let msgs = messages(&f.log());
    assert!(
        msgs.iter().any(|m| m.starts_with(
            "ERROR | Job overdue: data_refresh | no success since the scheduler first saw it at 2025-01-15 01:00 +07 | 2d"
        )),
        "{msgs:#?}"
    );
    // Checked again a minute later: the sink hears it still holds (and deduplicates);
    // the scheduler log says it once per episode.
    f.clock.advance(Duration::seconds(59));
    s.tick().unwrap();
    assert_eq!(
        f.alerts.alerts.lock().unwrap().len(),
        1,
        "checked once a minute"
    );
    f.clock.advance(Duration::seconds(1));
    s.tick().unwrap();
    {
        let alerts = f.alerts.alerts.lock().unwrap();
        assert_eq!(alerts.len(), 2);
        assert!(!alerts[1].resolved);
        assert_eq!(alerts[1].alert_name(), "job_overdue_data_refresh");
    }
    let overdue_lines = messages(&f.log())
        .iter()
        .filter(|m| m.starts_with("ERROR | Job overdue:"))
        .count();
    assert_eq!(overdue_lines, 1);
    assert!(
        s.state()
            .get("data_refresh")
            .unwrap()
            .unwrap()
            .overdue_since
            .is_some()
    );

    // It succeeds at the next fire: resolved.
    std::fs::write(&ok, "").unwrap();
    f.clock.set(hcm(17, 2, 0, 0));
    s.tick().unwrap();
    tick_until(&mut s, "run finished", |s| s.running_jobs().is_empty());
    {
        let alerts = f.alerts.alerts.lock().unwrap();
        let last = alerts.last().unwrap();
        assert!(last.resolved);
        assert_eq!(last.severity, Severity::Critical);
        assert!(last.message.contains("succeeded again"), "{}", last.message);
    }
    assert_eq!(
        s.state()
            .get("data_refresh")
            .unwrap()
            .unwrap()
            .overdue_since,
        None
    );
    assert!(
        f.log()
            .contains("| INFO | Job overdue resolved: data_refresh")
    );
    s.shutdown(&StopSignal::new()).unwrap();
}

#[test]
fn the_overdue_episode_survives_a_restart_without_a_second_log_line() {
    let f = Fixture::new(hcm(15, 1, 0, 0));
    f.script("health-check", "exit 1");
    f.config(&[("health_check", "0 * * * *", 5.0)], json!({}));
    let mut s = f.scheduler();
    s.start().unwrap();
    f.clock.set(hcm(15, 3, 1, 0)); // > 2 h without success
    s.tick().unwrap();
    tick_until(&mut s, "run finished", |s| s.running_jobs().is_empty());
    f.clock.advance(Duration::minutes(2));
    s.tick().unwrap();
    assert_eq!(f.alerts.alerts.lock().unwrap().len(), 1);
    s.shutdown(&StopSignal::new()).unwrap();
    drop(s);
    let mut s = f.scheduler();
    s.start().unwrap();
    f.clock.advance(Duration::minutes(2));
    s.tick().unwrap();
    // Still overdue: the sink hears it again, the log line is not repeated.
    let alerts = f.alerts.alerts.lock().unwrap().clone();
    assert_eq!(alerts.len(), 2);
    assert!(alerts.iter().all(|a| !a.resolved));
    let lines = f
        .log()
        .matches("| ERROR | Job overdue: health_check")
        .count();
    assert_eq!(lines, 1);
    s.shutdown(&StopSignal::new()).unwrap();
}
