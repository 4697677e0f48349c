//! Graceful shutdown: stop starting jobs, wait for running ones up to a grace, then
//! stop them; a scheduler that died leaves runs that are adopted or closed.

use std::time::Duration as StdDuration;

use chrono::Duration;
use recops_scheduler::{RunningClaim, StopSignal};
use recops_tracking::{PipelineTracker, RunStatus};
use serde_json::json;

use crate::{Fixture, alive, hcm, messages, read_pid, tick_until, wait_for_file};

#[test]
fn shutdown_waits_for_running_jobs_and_starts_no_new_one() {
    let f = Fixture::new(hcm(15, 1, 59, 59));
    let work = f.work();
    let (started, release) = (work.join("started"), work.join("release"));
    f.script(
        "data-refresh",
        &format!(
            "touch {}; while [ ! -f {} ]; do sleep 0.02; done; echo done",
            started.display(),
            release.display()
        ),
    );
    f.script("health-check", "exit 0");
    f.config(
        &[
            ("data_refresh", "0 2 * * *", 30.0),
            ("health_check", "5 * * * *", 5.0),
        ],
        json!({"shutdown_grace_seconds": 600}),
    );
    let mut s = f.scheduler();
    s.start().unwrap();
    f.clock.set(hcm(15, 2, 0, 0));
    s.tick().unwrap();
    wait_for_file(&started);
    // health_check is due at 02:05, but the stop comes first.
    f.clock.set(hcm(15, 2, 5, 0));
    let stop = StopSignal::new();
    stop.request();
    let releaser = {
        let release = release.clone();
        std::thread::spawn(move || {
            std::thread::sleep(StdDuration::from_millis(300));
            std::fs::write(release, "").unwrap();
        })
    };
    s.shutdown(&stop).unwrap();
    releaser.join().unwrap();

    assert_eq!(f.runs("data_refresh")[0].status, RunStatus::Success);
    assert!(
        f.runs("health_check").is_empty(),
        "no job starts while stopping"
    );
    assert!(f.job_log("data_refresh").contains("done"));
    let msgs = messages(&f.log());
    let stopping = msgs
        .iter()
        .position(|m| {
            m == "INFO | Scheduler stopping: waiting up to 10m for 1 running job(s): data_refresh"
        })
        .unwrap_or_else(|| panic!("{msgs:#?}"));
    let completed = msgs
        .iter()
        .position(|m| m.starts_with("INFO | Job completed: data_refresh"))
        .unwrap();
    let stopped = msgs
        .iter()
        .position(|m| m == "INFO | Scheduler stopped")
        .unwrap();
    assert!(stopping < completed && completed < stopped, "{msgs:#?}");
    // The lock is released: a new scheduler starts.
    f.scheduler().start().unwrap();
}

#[test]
fn jobs_still_running_after_the_shutdown_grace_are_stopped_and_recorded() {
    let f = Fixture::new(hcm(15, 2, 59, 59));
    let pid = f.work().join("pid");
    f.script(
        "model-training",
        &format!("echo $$ > {}; sleep 1000", pid.display()),
    );
    f.config(
        &[("model_training", "0 3 * * *", 120.0)],
        json!({"shutdown_grace_seconds": 60}),
    );
    let mut s = f.scheduler();
    s.start().unwrap();
    f.clock.set(hcm(15, 3, 0, 0));
    s.tick().unwrap();
    let leader = read_pid(&pid);
    let stop = StopSignal::new();
    stop.request();
    let clock = f.clock.clone();
    let mover = std::thread::spawn(move || {
        // Let the grace pass while shutdown waits.
        std::thread::sleep(StdDuration::from_millis(200));
        clock.advance(Duration::seconds(61));
    });
    s.shutdown(&stop).unwrap();
    mover.join().unwrap();
    assert!(!alive(leader));
    let run = &f.runs("model_training")[0];
    assert_eq!(run.status, RunStatus::Failed);
    assert_eq!(run.metadata["reason"], json!("shutdown"));
    assert_eq!(
        run.error_message.as_deref(),
        Some("stopped at scheduler shutdown (killed by SIGTERM)")
    );
    assert!(f.log().contains(
        "| WARNING | Stopping job: model_training | still running after the shutdown grace of 1m"
    ));
}

#[test]
fn run_now_stops_its_job_when_interrupted() {
    let f = Fixture::new(hcm(15, 12, 0, 0));
    let pid = f.work().join("pid");
    f.script(
        "drift-detection",
        &format!("echo $$ > {}; sleep 1000", pid.display()),
    );
    f.config(&[("drift_detection", "0 9 * * 1", 15.0)], json!({}));
    let mut s = f.scheduler();
    let stop = StopSignal::new();
    let interrupter = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            read_pid(&pid);
            stop.request();
        })
    };
    let outcome = s.run_now("drift_detection", &stop).unwrap();
    interrupter.join().unwrap();
    assert!(!outcome.success());
    assert_eq!(outcome.reason.as_deref(), Some("shutdown"));
}

#[test]
fn a_run_left_by_a_dead_scheduler_is_adopted_while_alive_then_closed() {
    let f = Fixture::new(hcm(15, 1, 59, 59));
    let release = f.work().join("release");
    f.script(
        "data-refresh",
        &format!("while [ ! -f {} ]; do sleep 0.02; done", release.display()),
    );
    f.config(&[("data_refresh", "0 2 * * *", 30.0)], json!({}));
    let mut a = f.scheduler();
    a.start().unwrap();
    f.clock.set(hcm(15, 2, 0, 0));
    a.tick().unwrap();
    let pgid = a.running_pgid("data_refresh").unwrap();
    // The scheduler dies without shutting down (its job keeps running).
    drop(a);

    f.clock.set(hcm(15, 2, 10, 0));
    let mut b = f.scheduler();
    b.start().unwrap();
    assert_eq!(b.running_pgid("data_refresh"), Some(pgid), "adopted");
    assert!(
        f.log()
            .contains(&format!("| WARNING | Adopted job: data_refresh | left running by a scheduler that exited | process group {pgid}"))
    );
    std::fs::write(&release, "").unwrap();
    tick_until(&mut b, "adopted job gone", |s| s.running_jobs().is_empty());
    let run = &f.runs("data_refresh")[0];
    assert_eq!(run.status, RunStatus::Failed);
    assert_eq!(run.metadata["reason"], json!("orphaned"));
    assert_eq!(run.duration_seconds, Some(600.0));
    b.shutdown(&StopSignal::new()).unwrap();
}

#[test]
fn a_run_whose_supervisor_and_processes_are_gone_is_closed_at_start() {
    let f = Fixture::new(hcm(15, 12, 0, 0));
    f.script("health-check", "exit 0");
    f.config(&[("health_check", "0 * * * *", 5.0)], json!({}));
    // A claim as a crashed scheduler would leave it: a dead owner, a dead group.
    let mut dead = std::process::Command::new("true").spawn().unwrap();
    let dead_pid = dead.id();
    dead.wait().unwrap();
    let tracker = PipelineTracker::open_path(&f.home.pipeline_db(), f.clock.shared()).unwrap();
    let run_id = tracker
        .start_run("scheduler.health_check", json!({"trigger": "cron"}))
        .unwrap();
    let state = recops_scheduler::StateStore::open(&f.home.scheduler_state_db()).unwrap();
    state
        .claim(
            "health_check",
            &RunningClaim {
                run_id: run_id.clone(),
                owner_pid: dead_pid,
                pgid: Some(i64::from(dead_pid)),
                since: hcm(15, 11, 0, 0),
                trigger: "cron".into(),
                scheduled_at: Some(hcm(15, 11, 0, 0)),
                ..RunningClaim::default()
            },
            &|_| true,
            None,
        )
        .unwrap();
    drop(state);
    let mut s = f.scheduler();
    s.start().unwrap();
    let run = tracker.get_run(&run_id).unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Failed);
    assert_eq!(run.metadata["reason"], json!("orphaned"));
    assert!(f.log().contains(
        "| WARNING | Job completed: health_check | duration=3600s | status=failed | reason=orphaned"
    ));
    // At noon sharp the hourly job is on time and runs normally.
    tick_until(&mut s, "noon run", |s| s.running_jobs().is_empty());
    assert_eq!(f.runs("health_check").len(), 2);
    let st = s.state().get("health_check").unwrap().unwrap();
    assert_eq!(st.running, None);
    assert_eq!(st.last_status.as_deref(), Some("success"));
}

/// A live process group that is not the job's: another boot, or the same pid started
/// at another time. The scheduler must neither adopt it nor (at the job's timeout)
/// kill it; the run is closed as orphaned.
fn a_reused_pid_is_never_adopted(edit: impl FnOnce(&mut RunningClaim)) {
    use std::os::unix::process::CommandExt;
    let f = Fixture::new(hcm(15, 12, 0, 30));
    f.script("health-check", "exit 0");
    f.config(&[("health_check", "0 * * * *", 5.0)], json!({}));
    // An unrelated process leading its own group, holding the pid the claim names.
    let mut stranger = std::process::Command::new("sleep")
        .arg("1000")
        .process_group(0)
        .spawn()
        .unwrap();
    let pid = stranger.id();
    let tracker = PipelineTracker::open_path(&f.home.pipeline_db(), f.clock.shared()).unwrap();
    let run_id = tracker
        .start_run("scheduler.health_check", json!({"trigger": "cron"}))
        .unwrap();
    let mut claim = RunningClaim {
        run_id: run_id.clone(),
        owner_pid: pid,
        pgid: Some(i64::from(pid)),
        since: hcm(15, 12, 0, 0),
        trigger: "cron".into(),
        scheduled_at: Some(hcm(15, 12, 0, 0)),
        owner_start_ticks: recops_core::procid::process_start_ticks(pid),
        pgid_start_ticks: recops_core::procid::process_start_ticks(pid),
        boot_id: recops_core::procid::boot_id(),
    };
    edit(&mut claim);
    let state = recops_scheduler::StateStore::open(&f.home.scheduler_state_db()).unwrap();
    state
        .claim("health_check", &claim, &|_| true, None)
        .unwrap();
    drop(state);

    let mut s = f.scheduler();
    s.start().unwrap();
    assert_eq!(s.running_pgid("health_check"), None, "not adopted");
    assert!(!f.log().contains("Adopted job"), "{}", f.log());
    let run = tracker.get_run(&run_id).unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Failed);
    assert_eq!(run.metadata["reason"], json!("orphaned"));
    // Far past the job's timeout: the stranger is never signalled.
    f.clock.advance(Duration::hours(2));
    for _ in 0..5 {
        s.tick().unwrap();
    }
    assert!(alive(pid), "a process that is not the job's was killed");
    stranger.kill().unwrap();
    stranger.wait().unwrap();
}

#[test]
fn a_claim_from_another_boot_is_closed_not_adopted() {
    a_reused_pid_is_never_adopted(|c| c.boot_id = Some("00000000-another-boot".into()));
}

#[test]
fn a_claim_whose_pid_now_belongs_to_a_later_process_is_closed_not_adopted() {
    a_reused_pid_is_never_adopted(|c| {
        c.owner_start_ticks = c.owner_start_ticks.map(|t| t.saturating_sub(1));
        c.pgid_start_ticks = c.pgid_start_ticks.map(|t| t.saturating_sub(1));
    });
}
