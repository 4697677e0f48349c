//! Two schedulers (two homes, as on two hosts) sharing one PostgreSQL: only the
//! holder of the leader lease fires; when it stops renewing, the other takes over
//! with a new fencing token, and every fire runs exactly once. Skipped with a NOTICE
//! when PostgreSQL is not installed, unless `CI=true` or `RECOPS_REQUIRE_POSTGRES=1`.

use chrono::{DateTime, Duration, Utc};
use recops_scheduler::{Scheduler, StateStore};
use recops_testkit::PgCluster;
use recops_tracking::RunStatus;
use serde_json::json;

use crate::{Fixture, hcm, messages, tick_until};

/// A home whose stores are in the database `url`, with one job firing every minute.
fn host(url: &str, now: DateTime<Utc>) -> Fixture {
    let f = Fixture::new(now);
    let marks = f.work().join("marks");
    f.script(
        "minutely",
        &format!("echo \"$RECOPS_SCHEDULER_RUN_ID\" >> {}", marks.display()),
    );
    let mut c = serde_json::Map::new();
    c.insert(
        "minutely".into(),
        json!({"cron": "* * * * *", "timeout_minutes": 1, "binary": "minutely"}),
    );
    f.write_config(
        &json!({
            "timezone": "Asia/Ho_Chi_Minh",
            "jobs": c,
            "failover": {"lease_seconds": 10, "renew_interval_seconds": 2}
        })
        .to_string(),
    );
    let shipped = include_str!("../../../../config/recops.yaml");
    assert!(shipped.contains("  url: \"\"\n"));
    std::fs::write(
        f.home.root().join("config/recops.yaml"),
        shipped.replacen("  url: \"\"\n", &format!("  url: {url}\n"), 1),
    )
    .unwrap();
    f
}

fn set(hosts: &[&Fixture], now: DateTime<Utc>) {
    for h in hosts {
        h.clock.set(now);
    }
}

fn done(s: &Scheduler) -> bool {
    s.running_jobs().is_empty()
}

#[test]
fn the_follower_takes_over_when_the_leader_stops_renewing_and_each_fire_runs_once() {
    let Some(pg) = PgCluster::shared() else {
        return;
    };
    let url = pg.fresh_database();
    let t = hcm(15, 2, 0, 55);
    let (fa, fb) = (host(&url, t), host(&url, t));
    let mut a = fa.scheduler();
    let mut b = fb.scheduler();
    a.start().unwrap();
    b.start().unwrap();
    assert!(
        !fb.home.scheduler_state_db().exists(),
        "no SQLite state in PostgreSQL mode"
    );

    // 02:01, within the lease taken at 02:00:55: only the leader fires.
    set(&[&fa, &fb], hcm(15, 2, 1, 0));
    b.tick().unwrap();
    a.tick().unwrap();
    b.tick().unwrap();
    assert_eq!(a.running_jobs(), vec!["minutely"]);
    assert!(b.running_jobs().is_empty());
    tick_until(&mut a, "the leader's run finished", done);

    // The leader stalls (no more ticks). Within its lease the follower waits...
    set(&[&fb], hcm(15, 2, 1, 9));
    b.tick().unwrap();
    assert!(
        !messages(&fb.log())
            .iter()
            .any(|m| m.starts_with("INFO | Leader:"))
    );
    // ...and takes over once the lease has not been renewed for 10 s.
    set(&[&fb], hcm(15, 2, 1, 11));
    b.tick().unwrap();
    let log_b = messages(&fb.log());
    assert!(
        log_b
            .iter()
            .any(|m| m.starts_with("INFO | Leader:") && m.contains("fencing_token=2")),
        "{log_b:#?}"
    );

    // The new leader renews its lease as time goes by (a tick a second).
    for sec in 12..60 {
        set(&[&fb], hcm(15, 2, 1, sec));
        b.tick().unwrap();
    }
    // 02:02: the stale leader wakes up and finds it no longer leads; the new one fires.
    set(&[&fa, &fb], hcm(15, 2, 2, 0));
    a.tick().unwrap();
    b.tick().unwrap();
    a.tick().unwrap();
    assert!(a.running_jobs().is_empty(), "the stale leader fired");
    assert_eq!(b.running_jobs(), vec!["minutely"]);
    tick_until(&mut b, "the new leader's run finished", done);
    let log_a = messages(&fa.log());
    assert!(
        log_a
            .iter()
            .any(|m| m.starts_with("WARNING | Lost the leader lease")),
        "{log_a:#?}"
    );

    // Each fire ran once, under the token of the scheduler that held the lease.
    let runs = fa.runs("minutely");
    let scheduled: Vec<_> = runs
        .iter()
        .filter(|r| r.status != RunStatus::Cancelled)
        .map(|r| (r.status, r.metadata["scheduled_at"].clone()))
        .collect();
    assert_eq!(
        scheduled,
        vec![
            (
                RunStatus::Success,
                json!("2025-01-14T19:01:00.000000+00:00")
            ),
            (
                RunStatus::Success,
                json!("2025-01-14T19:02:00.000000+00:00")
            ),
        ]
    );
    let state = StateStore::open_home(&fa.home).unwrap();
    let tokens: Vec<i64> = state
        .fires("minutely")
        .unwrap()
        .iter()
        .map(|f| f.fencing_token)
        .collect();
    assert_eq!(tokens, vec![1, 2]);
    let marks = |f: &Fixture| {
        std::fs::read_to_string(f.work().join("marks"))
            .unwrap_or_default()
            .lines()
            .count()
    };
    assert_eq!((marks(&fa), marks(&fb)), (1, 1));

    // A clean shutdown hands the lease over at once.
    b.shutdown(&recops_scheduler::StopSignal::new()).unwrap();
    set(&[&fa], hcm(15, 2, 2, 1) + Duration::milliseconds(2500));
    a.tick().unwrap();
    assert_eq!(state.leader().unwrap().unwrap().fencing_token, 3);
}
