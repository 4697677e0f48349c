//! Running jobs on time, recording them, logging them; one instance at a time.

use chrono::Duration;
use recops_scheduler::{Error, StopSignal, list_jobs};
use recops_tracking::RunStatus;
use serde_json::json;

use crate::{Fixture, hcm, messages, tick_until};

#[test]
fn a_due_job_runs_with_the_home_and_is_recorded_and_logged_in_the_spec_format() {
    let f = Fixture::new(hcm(15, 1, 59, 30));
    f.script(
        "data-refresh",
        "echo \"refreshing in $(pwd) home=$RECOPS_HOME trigger=$RECOPS_SCHEDULER_TRIGGER\"",
    );
    f.config(&[("data_refresh", "0 2 * * *", 30.0)], json!({}));
    let mut s = f.scheduler();
    s.start().unwrap();
    s.tick().unwrap();
    assert!(s.running_jobs().is_empty(), "nothing is due at 01:59:30");

    f.clock.set(hcm(15, 2, 0, 0));
    s.tick().unwrap();
    assert_eq!(s.running_jobs(), vec!["data_refresh"]);
    // The job takes (by the clock) 90 seconds.
    f.clock.advance(Duration::seconds(90));
    tick_until(&mut s, "job finished", |s| s.running_jobs().is_empty());

    let runs = f.runs("data_refresh");
    assert_eq!(runs.len(), 1);
    let run = &runs[0];
    assert_eq!(run.pipeline_name, "scheduler.data_refresh");
    assert_eq!(run.status, RunStatus::Success);
    assert_eq!(run.duration_seconds, Some(90.0));
    assert_eq!(run.metadata["trigger"], json!("cron"));
    assert_eq!(
        run.metadata["scheduled_at"],
        json!("2025-01-14T19:00:00.000000+00:00")
    );

    let msgs = messages(&f.log());
    assert!(
        msgs.contains(&"INFO | Starting job: data_refresh".to_owned()),
        "{msgs:#?}"
    );
    assert!(
        msgs.contains(
            &"INFO | Job completed: data_refresh | duration=90s | status=success".to_owned()
        ),
        "{msgs:#?}"
    );
    assert!(
        msgs.iter().any(|m| m
            == "INFO | Scheduled job: data_refresh | cron=0 2 * * * | next=2025-01-15 02:00 +07"),
        "{msgs:#?}"
    );

    // The job ran in the home, with the home in its environment; its output is in its
    // own log, between the scheduler's header and footer lines.
    let out = f.job_log("data_refresh");
    let root = f.home.root().display().to_string();
    assert!(
        out.contains(&format!("refreshing in {root} home={root} trigger=cron")),
        "{out}"
    );
    assert!(out.contains("| INFO | Starting job: data_refresh | run_id=scheduler.data_refresh_"));
    assert!(out.contains("Job completed: data_refresh | duration=90s | status=success"));

    let st = s.state().get("data_refresh").unwrap().unwrap();
    assert_eq!(st.last_fire, Some(hcm(15, 2, 0, 0)));
    assert_eq!(st.next_fire, Some(hcm(16, 2, 0, 0)));
    assert_eq!(st.last_success, Some(hcm(15, 2, 1, 30)));
    assert_eq!(st.running, None);

    // Nothing more until tomorrow.
    f.clock.set(hcm(16, 1, 59, 0));
    s.tick().unwrap();
    assert!(s.running_jobs().is_empty());
    assert_eq!(f.runs("data_refresh").len(), 1);
}

#[test]
fn failing_and_crashing_jobs_are_recorded_failed_and_the_scheduler_keeps_going() {
    let f = Fixture::new(hcm(15, 0, 59, 0));
    f.script("exits-3", "echo boom >&2; exit 3");
    f.script("crashes", "kill -SEGV $$");
    f.script("health-check", "exit 0");
    f.script("finds-a-problem", "exit 1");
    f.write_config(
        r#"{"timezone": "Asia/Ho_Chi_Minh", "jobs": {
            "model_training": {"enabled": true, "cron": "0 1 * * *", "timeout_minutes": 5, "binary": "finds-a-problem", "ok_exit_codes": [0, 1]},
            "data_refresh": {"enabled": true, "cron": "0 1 * * *", "timeout_minutes": 5, "binary": "exits-3", "ok_exit_codes": [0, 1]},
            "drift_detection": {"enabled": true, "cron": "0 1 * * *", "timeout_minutes": 5, "binary": "crashes"},
            "health_check": {"enabled": true, "cron": "0 * * * *", "timeout_minutes": 5}
        }}"#,
    );
    let mut s = f.scheduler();
    s.start().unwrap();
    f.clock.set(hcm(15, 1, 0, 0));
    tick_until(&mut s, "all three ran", |s| s.running_jobs().is_empty());

    let dr = &f.runs("data_refresh")[0];
    assert_eq!(dr.status, RunStatus::Failed);
    assert_eq!(dr.error_message.as_deref(), Some("exit code 3"));
    assert_eq!(dr.metadata["reason"], json!("exit_code"));
    let dd = &f.runs("drift_detection")[0];
    assert_eq!(dd.status, RunStatus::Failed);
    assert_eq!(dd.error_message.as_deref(), Some("killed by SIGSEGV"));
    assert_eq!(dd.metadata["reason"], json!("signal"));
    assert_eq!(f.runs("health_check")[0].status, RunStatus::Success);
    // An exit code listed in ok_exit_codes is "the job ran", not a failure.
    assert_eq!(f.runs("model_training")[0].status, RunStatus::Success);
    assert!(f.job_log("data_refresh").contains("boom"));
    let msgs = messages(&f.log());
    assert!(
        msgs.contains(
            &"ERROR | Job completed: data_refresh | duration=0s | status=failed | reason=exit_code | error=exit code 3"
                .to_owned()
        ),
        "{msgs:#?}"
    );

    // The next hour the healthy job runs again.
    f.clock.set(hcm(15, 2, 0, 0));
    tick_until(&mut s, "second health check", |s| {
        s.running_jobs().is_empty()
    });
    assert_eq!(f.runs("health_check").len(), 2);
    assert_eq!(f.runs("data_refresh").len(), 1);
}

#[test]
fn a_job_still_running_at_its_next_fire_is_skipped_not_started_twice() {
    let f = Fixture::new(hcm(15, 9, 59, 0));
    let release = f.work().join("release");
    f.script(
        "slow",
        &format!("while [ ! -f {} ]; do sleep 0.02; done", release.display()),
    );
    f.write_config(
        r#"{"timezone": "Asia/Ho_Chi_Minh", "jobs": {
            "slow": {"cron": "* * * * *", "timeout_minutes": 30}
        }}"#,
    );
    let mut s = f.scheduler();
    s.start().unwrap();
    f.clock.set(hcm(15, 10, 0, 0));
    s.tick().unwrap();
    let pgid = s.running_pgid("slow").unwrap();
    // Two more fires while it runs: both skipped with a log line.
    for minute in 1..=2 {
        f.clock.set(hcm(15, 10, minute, 0));
        s.tick().unwrap();
        assert_eq!(s.running_pgid("slow"), Some(pgid));
    }
    assert_eq!(f.runs("slow").len(), 1);
    let skipped: Vec<_> = messages(&f.log())
        .into_iter()
        .filter(|m| m.starts_with("WARNING | Skipping job: slow | previous run still running"))
        .collect();
    assert_eq!(skipped.len(), 2, "{skipped:#?}");
    assert!(
        skipped[1].ends_with("| scheduled=2025-01-15 10:02 +07"),
        "{skipped:#?}"
    );

    // Another process (a `--run-now`) is refused while the scheduler's instance runs.
    let mut other = f.scheduler();
    let stop = StopSignal::new();
    match other.run_now("slow", &stop) {
        Err(Error::JobRunning { job, pgid: g, .. }) => {
            assert_eq!(job, "slow");
            assert_eq!(g, i64::from(pgid));
        }
        other => panic!("expected JobRunning, got {other:?}"),
    }
    assert_eq!(f.runs("slow").len(), 1);

    std::fs::write(&release, "").unwrap();
    tick_until(&mut s, "slow finished", |s| s.running_jobs().is_empty());
    f.clock.set(hcm(15, 10, 3, 0));
    s.tick().unwrap();
    assert!(
        s.running_pgid("slow").is_some(),
        "runs again at the next fire"
    );
    tick_until(&mut s, "slow finished again", |s| {
        s.running_jobs().is_empty()
    });
    assert_eq!(f.runs("slow").len(), 2);
}

#[test]
fn run_now_runs_a_disabled_job_manually_and_a_second_scheduler_is_refused() {
    let f = Fixture::new(hcm(15, 12, 0, 0));
    f.script("model-training", "echo trained; exit 0");
    f.write_config(
        r#"{"timezone": "Asia/Ho_Chi_Minh", "jobs": {
            "model_training": {"enabled": false, "cron": "0 3 * * 0", "timeout_minutes": 120}
        }}"#,
    );
    let mut s = f.scheduler();
    let outcome = s.run_now("model_training", &StopSignal::new()).unwrap();
    assert!(outcome.success(), "{outcome:?}");
    assert_eq!(outcome.trigger.as_str(), "manual");
    let runs = f.runs("model_training");
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].metadata["trigger"], json!("manual"));
    assert!(
        f.log()
            .contains("| INFO | Starting job: model_training | trigger=manual")
    );
    assert!(f.job_log("model_training").contains("trained"));
    match s.run_now("nope", &StopSignal::new()) {
        Err(e @ Error::UnknownJob { .. }) => {
            assert!(e.to_string().contains("model_training"), "{e}")
        }
        other => panic!("{other:?}"),
    }

    let mut a = f.scheduler();
    a.start().unwrap();
    let mut b = f.scheduler();
    let e = b.start().unwrap_err();
    assert!(matches!(e, Error::AlreadyRunning { .. }), "{e}");
    assert!(
        e.to_string().contains(&std::process::id().to_string()),
        "{e}"
    );
    a.shutdown(&StopSignal::new()).unwrap();
    // Once stopped, another scheduler may start.
    f.scheduler().start().unwrap();
}

#[test]
fn a_binary_that_vanished_is_recorded_as_a_failed_start_and_the_scheduler_goes_on() {
    let f = Fixture::new(hcm(15, 4, 59, 0));
    let bin = f.script("model-deployment", "exit 0");
    f.config(&[("model_deployment", "0 5 * * *", 10.0)], json!({}));
    let mut s = f.scheduler();
    s.start().unwrap();
    std::fs::remove_file(bin).unwrap();
    f.clock.set(hcm(15, 5, 0, 0));
    s.tick().unwrap();
    assert!(s.running_jobs().is_empty());
    let run = &f.runs("model_deployment")[0];
    assert_eq!(run.status, RunStatus::Failed);
    assert_eq!(run.metadata["reason"], json!("spawn"));
    assert!(
        run.error_message
            .as_deref()
            .unwrap()
            .starts_with("cannot start job model_deployment"),
        "{run:?}"
    );
    assert_eq!(
        s.state().get("model_deployment").unwrap().unwrap().running,
        None
    );
}

#[test]
fn list_shows_the_next_three_fires_in_the_configured_time_zone() {
    let f = Fixture::new(hcm(15, 12, 0, 0));
    f.script("data-refresh", "exit 0");
    f.write_config(
        r#"{"timezone": "Asia/Ho_Chi_Minh", "jobs": {
            "data_refresh": {"cron": "0 2 * * *", "timeout_minutes": 30},
            "bert_embeddings": {"cron": "0 3 * * 2", "timeout_minutes": 60},
            "model_training": {"enabled": false, "cron": "0 3 * * 0", "timeout_minutes": 120}
        }}"#,
    );
    let listing = list_jobs(&f.home, &f.bins, hcm(15, 12, 0, 0), 3).unwrap();
    assert_eq!(listing.timezone, "Asia/Ho_Chi_Minh");
    let dr = listing
        .jobs
        .iter()
        .find(|j| j.job == "data_refresh")
        .unwrap();
    assert_eq!(
        dr.next_fires_local,
        vec![
            "Thu 2025-01-16 02:00 +07",
            "Fri 2025-01-17 02:00 +07",
            "Sat 2025-01-18 02:00 +07"
        ]
    );
    assert_eq!(dr.next_fires[0], "2025-01-16T02:00:00+07:00");
    assert!(dr.binary_problem.is_none());
    let bert = listing
        .jobs
        .iter()
        .find(|j| j.job == "bert_embeddings")
        .unwrap();
    assert_eq!(bert.next_fires_local[0], "Tue 2025-01-21 03:00 +07");
    assert!(
        bert.binary_problem
            .as_deref()
            .unwrap()
            .contains("does not exist")
    );
    let table = listing.to_table();
    assert!(table.contains("JOB"), "{table}");
    assert!(
        table.contains("model_training   no       0 3 * * 0"),
        "{table}"
    );
    assert!(table.contains("- (disabled)"), "{table}");
    // Listing creates nothing in the home.
    assert!(!f.home.scheduler_state_db().exists());
}
