//! Fires missed while the scheduler was down: caught up within the grace, skipped
//! (and logged) beyond it.

use recops_scheduler::StopSignal;
use recops_tracking::RunStatus;
use serde_json::json;

use crate::{Fixture, hcm, messages, tick_until};

#[test]
fn a_missed_fire_within_the_grace_runs_once_as_catch_up_and_older_ones_are_logged() {
    let f = Fixture::new(hcm(15, 1, 0, 0));
    f.script("data-refresh", "exit 0");
    f.config(&[("data_refresh", "0 2 * * *", 30.0)], json!({}));
    // The scheduler runs at 01:00, then is down over the 02:00 fire.
    let mut a = f.scheduler();
    a.start().unwrap();
    a.shutdown(&StopSignal::new()).unwrap();
    drop(a);

    // Back at 03:30: 1 h 30 m late, within the 6 h grace of a daily job.
    f.clock.set(hcm(15, 3, 30, 0));
    let mut b = f.scheduler();
    b.start().unwrap();
    assert_eq!(b.running_jobs(), vec!["data_refresh"]);
    tick_until(&mut b, "catch-up finished", |s| s.running_jobs().is_empty());
    b.tick().unwrap();
    let runs = f.runs("data_refresh");
    assert_eq!(runs.len(), 1, "run once");
    assert_eq!(runs[0].status, RunStatus::Success);
    assert_eq!(runs[0].metadata["trigger"], json!("catch-up"));
    assert_eq!(
        runs[0].metadata["scheduled_at"],
        json!("2025-01-14T19:00:00.000000+00:00")
    );
    let msgs = messages(&f.log());
    assert!(
        msgs.contains(
            &"INFO | Catch-up: data_refresh | missed fire 2025-01-15 02:00 +07 | late by 1h 30m"
                .to_owned()
        ),
        "{msgs:#?}"
    );
    assert!(
        msgs.contains(&"INFO | Starting job: data_refresh | trigger=catch-up | scheduled=2025-01-15 02:00 +07".to_owned()),
        "{msgs:#?}"
    );
    b.shutdown(&StopSignal::new()).unwrap();
    drop(b);

    // Down for three days, back at 09:00 on the 18th: 7 h after the 02:00 fire, beyond
    // the grace. Nothing runs; the three missed fires are logged as skipped.
    f.clock.set(hcm(18, 9, 0, 0));
    let mut c = f.scheduler();
    c.start().unwrap();
    assert!(c.running_jobs().is_empty());
    c.tick().unwrap();
    assert_eq!(f.runs("data_refresh").len(), 1);
    let msgs = messages(&f.log());
    assert!(
        msgs.contains(&"WARNING | Missed fire skipped: data_refresh | 3 fire(s) scheduled 2025-01-16 02:00 +07 to 2025-01-18 02:00 +07 | older than the catch-up grace of 6h or superseded by a newer fire".to_owned()),
        "{msgs:#?}"
    );
    let st = c.state().get("data_refresh").unwrap().unwrap();
    assert_eq!(st.last_fire, Some(hcm(18, 2, 0, 0)));
    assert_eq!(st.next_fire, Some(hcm(19, 2, 0, 0)));
    c.shutdown(&StopSignal::new()).unwrap();
}

#[test]
fn after_two_missed_fires_only_the_newest_is_caught_up() {
    let f = Fixture::new(hcm(15, 9, 30, 0));
    f.script("health-check", "exit 0");
    f.write_config(
        r#"{"timezone": "Asia/Ho_Chi_Minh", "jobs": {
            "health_check": {"cron": "0 * * * *", "timeout_minutes": 5, "catch_up_grace_minutes": 45}
        }}"#,
    );
    let mut a = f.scheduler();
    a.start().unwrap();
    a.shutdown(&StopSignal::new()).unwrap();
    drop(a);
    // Down over 10:00 and 11:00; back at 11:40, within the configured 45 min grace.
    f.clock.set(hcm(15, 11, 40, 0));
    let mut b = f.scheduler();
    b.start().unwrap();
    tick_until(&mut b, "catch-up finished", |s| s.running_jobs().is_empty());
    let runs = f.runs("health_check");
    assert_eq!(runs.len(), 1);
    assert_eq!(
        runs[0].metadata["scheduled_at"],
        json!("2025-01-15T04:00:00.000000+00:00")
    );
    let msgs = messages(&f.log());
    assert!(
        msgs.iter().any(|m| m.starts_with(
            "WARNING | Missed fire skipped: health_check | 1 fire(s) scheduled 2025-01-15 10:00 +07 |"
        )),
        "{msgs:#?}"
    );
    b.shutdown(&StopSignal::new()).unwrap();
}

#[test]
fn a_first_start_owes_nothing_and_a_disabled_job_is_not_caught_up_when_re_enabled() {
    let f = Fixture::new(hcm(15, 3, 0, 0));
    f.script("data-refresh", "exit 0");
    let disabled = r#"{"timezone": "Asia/Ho_Chi_Minh", "jobs": {
        "data_refresh": {"enabled": false, "cron": "0 2 * * *", "timeout_minutes": 30}}}"#;
    f.write_config(disabled);
    let mut a = f.scheduler();
    a.start().unwrap();
    assert!(a.running_jobs().is_empty());
    f.clock.set(hcm(16, 2, 0, 0));
    a.tick().unwrap();
    assert!(a.running_jobs().is_empty(), "disabled");
    f.clock.set(hcm(16, 3, 0, 0));
    a.shutdown(&StopSignal::new()).unwrap();
    drop(a);
    // Re-enabled at 03:10: the 02:00 fire happened while it was disabled; not owed.
    f.clock.set(hcm(16, 3, 10, 0));
    f.config(&[("data_refresh", "0 2 * * *", 30.0)], json!({}));
    let mut b = f.scheduler();
    b.start().unwrap();
    assert!(b.running_jobs().is_empty());
    assert!(f.runs("data_refresh").is_empty());
    assert!(!f.log().contains("Missed fire skipped"));
    b.shutdown(&StopSignal::new()).unwrap();
}
