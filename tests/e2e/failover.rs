//! Scheduler failover with real processes: two `scheduler` daemons on two homes (as on
//! two hosts) share one PostgreSQL. The leader fires a job every minute; it is killed
//! with SIGKILL; the follower takes the lease over within the configured time and runs
//! the next fire; no fire runs twice. Takes one to two minutes (cron has minutes).
//! Skipped with a NOTICE when PostgreSQL is not installed, unless `CI=true` or
//! `RECOPS_REQUIRE_POSTGRES=1`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use recops_core::Home;
use recops_testkit::PgCluster;

/// Lease 3 s, renewed every second: a takeover within about 4 s of the leader's death.
const CONFIG: &str = r#"{
  "timezone": "UTC",
  "jobs": {"minutely": {"cron": "* * * * *", "timeout_minutes": 1, "binary": "minutely"}},
  "failover": {"lease_seconds": 3, "renew_interval_seconds": 1}
}"#;

struct Host {
    home: PathBuf,
    bins: PathBuf,
}

fn host(root: &Path, name: &str) -> Host {
    let home = root.join(name).join("home");
    let bins = root.join(name).join("bin");
    std::fs::create_dir_all(home.join("config")).unwrap();
    std::fs::create_dir_all(&bins).unwrap();
    std::fs::write(Home::new(&home).scheduler_config(), CONFIG).unwrap();
    let script = bins.join("minutely");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"$RECOPS_SCHEDULER_RUN_ID\" >> {}\n",
            root.join(name).join("marks").display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    Host { home, bins }
}

fn spawn(h: &Host, url: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_scheduler"))
        .arg("--home")
        .arg(&h.home)
        .arg("--bin-dir")
        .arg(&h.bins)
        .env("RECOPS_STORAGE_URL", url)
        .env_remove("RECOPS_HOME")
        .env_remove("RECOPS_BIN_DIR")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Waits (up to `secs`) until the scheduler log of `h` contains `needle` `n` times.
fn wait_log(h: &Host, needle: &str, n: usize, secs: u64) -> String {
    let log = Home::new(&h.home).scheduler_log();
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.matches(needle).count() >= n {
            return text;
        }
        assert!(Instant::now() < deadline, "no {needle:?} in {text}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn signal(child: &Child, sig: nix::sys::signal::Signal) {
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap());
    nix::sys::signal::kill(pid, sig).unwrap();
}

#[test]
fn the_follower_takes_over_from_a_killed_leader_and_no_fire_runs_twice() {
    let Some(pg) = PgCluster::shared() else {
        return;
    };
    let url = pg.fresh_database();
    let db = url.rsplit('/').next().unwrap().to_owned();
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (host(dir.path(), "a"), host(dir.path(), "b"));
    let mut leader = spawn(&a, &url);
    wait_log(&a, "| Leader: ", 1, 30);
    let mut follower = spawn(&b, &url);
    wait_log(&b, "| Standing by: ", 1, 30);

    // The leader runs the next fire; the follower does not.
    wait_log(&a, "Job completed: minutely", 1, 75);
    signal(&leader, nix::sys::signal::Signal::SIGKILL);
    leader.wait().unwrap();
    let expired_ms: i64 = pg
        .psql(&db, "SELECT expires_at_ms FROM scheduler_leader")
        .parse()
        .unwrap();

    // The follower takes over once the dead leader's lease expires, then fires.
    let text = wait_log(&b, "| Leader: ", 1, 30);
    assert!(text.contains("fencing_token=2"), "{text}");
    let acquired_ms: i64 = pg
        .psql(&db, "SELECT acquired_at_ms FROM scheduler_leader")
        .parse()
        .unwrap();
    let late_ms = acquired_ms - expired_ms;
    eprintln!("takeover {late_ms} ms after the dead leader's lease expired");
    // One renew interval (1 s) plus the poll (0.5 s), with room for a loaded machine.
    assert!((0..=4_000).contains(&late_ms), "{late_ms} ms");
    wait_log(&b, "Job completed: minutely", 1, 75);
    signal(&follower, nix::sys::signal::Signal::SIGTERM);
    assert!(follower.wait().unwrap().success());

    // Every fire ran exactly once: one run per scheduled time, each in the ledger
    // under the token of the scheduler that led then.
    let runs = pg.psql(
        &db,
        "SELECT string_agg((metadata::json->>'scheduled_at') || '=' || status, ',' \
         ORDER BY run_id) FROM pipeline_runs WHERE pipeline_name = 'scheduler.minutely' \
         AND status <> 'cancelled'",
    );
    let runs: Vec<&str> = runs.split(',').collect();
    assert!(runs.len() >= 2, "{runs:?}");
    let mut times: Vec<&str> = runs.iter().map(|r| r.split('=').next().unwrap()).collect();
    assert!(runs.iter().all(|r| r.ends_with("=success")), "{runs:?}");
    times.sort_unstable();
    times.dedup();
    assert_eq!(times.len(), runs.len(), "a fire ran twice: {runs:?}");
    let ledger = pg.psql(
        &db,
        "SELECT string_agg(fencing_token::text, ',' ORDER BY scheduled_at) FROM scheduler_fires",
    );
    let tokens: Vec<&str> = ledger.split(',').collect();
    assert_eq!(tokens.len(), runs.len(), "{ledger} vs {runs:?}");
    assert_eq!(tokens.first(), Some(&"1"), "{ledger}");
    assert_eq!(tokens.last(), Some(&"2"), "{ledger}");
    let marks = |n: &str| {
        std::fs::read_to_string(dir.path().join(n).join("marks"))
            .unwrap_or_default()
            .lines()
            .count()
    };
    assert_eq!(marks("a") + marks("b"), runs.len());
    assert_eq!(marks("a"), 1, "the leader was killed after its first run");
    // No SQLite state file in PostgreSQL mode.
    assert!(!Home::new(&a.home).scheduler_state_db().exists());
    assert!(!Home::new(&b.home).scheduler_state_db().exists());
}
