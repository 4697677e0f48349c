//! Timeouts: SIGTERM to the whole process group, SIGKILL after the grace.

use chrono::Duration;
use recops_tracking::RunStatus;
use serde_json::json;

use crate::{Fixture, alive, hcm, messages, read_pid, tick_until};

#[test]
fn a_timeout_kills_the_whole_process_group_grandchildren_included() {
    let f = Fixture::new(hcm(15, 1, 59, 59));
    let work = f.work();
    let grandchild = work.join("grandchild.pid");
    let leader = work.join("leader.pid");
    // The job starts a grandchild that ignores SIGTERM, then sleeps.
    f.script(
        "data-refresh",
        &format!(
            "sh -c 'trap \"\" TERM; echo $$ > {gc}.tmp; mv {gc}.tmp {gc}; exec sleep 1000' &\n\
             echo $$ > {leader}\n\
             sleep 1000",
            gc = grandchild.display(),
            leader = leader.display()
        ),
    );
    f.config(
        &[("data_refresh", "0 2 * * *", 1.0)],
        json!({"kill_grace_seconds": 5}),
    );
    let mut s = f.scheduler();
    s.start().unwrap();
    f.clock.set(hcm(15, 2, 0, 0));
    s.tick().unwrap();
    let pgid = s.running_pgid("data_refresh").unwrap();
    let leader_pid = read_pid(&leader);
    let gc_pid = read_pid(&grandchild);
    assert_eq!(leader_pid, u32::try_from(pgid).unwrap());
    assert!(alive(gc_pid));

    // Within the timeout nothing happens.
    f.clock.advance(Duration::seconds(59));
    s.tick().unwrap();
    assert!(alive(leader_pid) && alive(gc_pid));

    // Timeout: SIGTERM to the group. The leader and its sleep die; the grandchild
    // ignores it, so the job is not finished yet.
    f.clock.advance(Duration::seconds(1));
    s.tick().unwrap();
    for _ in 0..300 {
        s.tick().unwrap();
        if !alive(leader_pid) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(!alive(leader_pid), "the leader got SIGTERM");
    for _ in 0..10 {
        s.tick().unwrap();
    }
    assert!(alive(gc_pid), "the grandchild ignores SIGTERM");
    assert_eq!(
        s.running_jobs(),
        vec!["data_refresh"],
        "waits for the grace"
    );

    // After the kill grace: SIGKILL to the group.
    f.clock.advance(Duration::seconds(5));
    tick_until(&mut s, "job reaped", |s| s.running_jobs().is_empty());
    for _ in 0..300 {
        if !alive(gc_pid) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(!alive(gc_pid), "the grandchild is gone too");

    let run = &f.runs("data_refresh")[0];
    assert_eq!(run.status, RunStatus::Failed);
    assert_eq!(run.metadata["reason"], json!("timeout"));
    assert_eq!(run.duration_seconds, Some(65.0));
    assert!(
        run.error_message
            .as_deref()
            .unwrap()
            .starts_with("timed out after 1m (killed by SIGTERM"),
        "{run:?}"
    );
    let msgs = messages(&f.log());
    let expect = [
        format!(
            "WARNING | Job timed out: data_refresh | timeout=1m | sending SIGTERM to process group {pgid}"
        ),
        format!(
            "WARNING | Killing job: data_refresh | still running 5s after SIGTERM | sending SIGKILL to process group {pgid}"
        ),
    ];
    for e in &expect {
        assert!(msgs.contains(e), "missing {e:?} in {msgs:#?}");
    }
    assert!(
        msgs.iter().any(|m| m.starts_with(
            "ERROR | Job completed: data_refresh | duration=65s | status=failed | reason=timeout"
        )),
        "{msgs:#?}"
    );
    assert_eq!(
        s.state().get("data_refresh").unwrap().unwrap().running,
        None
    );
}

#[test]
fn a_job_that_exits_on_sigterm_is_done_without_waiting_for_the_grace() {
    let f = Fixture::new(hcm(15, 4, 59, 59));
    f.script("model-deployment", "sleep 1000");
    f.config(
        &[("model_deployment", "0 5 * * *", 0.5)],
        json!({"kill_grace_seconds": 3600}),
    );
    let mut s = f.scheduler();
    s.start().unwrap();
    f.clock.set(hcm(15, 5, 0, 0));
    s.tick().unwrap();
    f.clock.advance(Duration::seconds(30));
    tick_until(&mut s, "job reaped", |s| s.running_jobs().is_empty());
    let run = &f.runs("model_deployment")[0];
    assert_eq!(run.metadata["reason"], json!("timeout"));
    assert_eq!(run.duration_seconds, Some(30.0));
    assert!(!f.log().contains("Killing job"));
}

#[test]
fn a_wall_clock_step_does_not_time_out_a_healthy_job() {
    let f = Fixture::new(hcm(15, 4, 59, 59));
    f.script("model-deployment", "sleep 1000");
    f.config(&[("model_deployment", "0 5 * * *", 1.0)], json!({}));
    let mut s = f.scheduler();
    s.start().unwrap();
    f.clock.set(hcm(15, 5, 0, 0));
    s.tick().unwrap();
    let pgid = s.running_pgid("model_deployment").unwrap();
    // The wall clock jumps 3 hours (NTP step, an operator setting the date): only 10
    // seconds really passed.
    f.clock.step_wall(Duration::hours(3));
    f.clock.advance(Duration::seconds(10));
    for _ in 0..5 {
        s.tick().unwrap();
    }
    assert_eq!(
        s.running_pgid("model_deployment"),
        Some(pgid),
        "still running"
    );
    assert!(!f.log().contains("Job timed out"), "{}", f.log());
    // A real minute later it does time out.
    f.clock.advance(Duration::seconds(50));
    tick_until(&mut s, "job reaped", |s| s.running_jobs().is_empty());
    assert_eq!(
        f.runs("model_deployment")[0].metadata["reason"],
        json!("timeout")
    );
}
