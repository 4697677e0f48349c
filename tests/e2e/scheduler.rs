//! The `scheduler` binary: --check-config, --list, --run-now, and the foreground
//! daemon stopping cleanly on SIGTERM.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use recops_core::Home;
use serde_json::Value;

struct Setup {
    _dir: tempfile::TempDir,
    home: PathBuf,
    bins: PathBuf,
}

fn setup(config: &str, scripts: &[(&str, &str)]) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let bins = dir.path().join("bin");
    std::fs::create_dir_all(home.join("config")).unwrap();
    std::fs::create_dir_all(&bins).unwrap();
    std::fs::write(Home::new(&home).scheduler_config(), config).unwrap();
    for (name, body) in scripts {
        let p = bins.join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    Setup {
        _dir: dir,
        home,
        bins,
    }
}

fn command(s: &Setup, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_scheduler"));
    c.arg("--home")
        .arg(&s.home)
        .arg("--bin-dir")
        .arg(&s.bins)
        .args(args)
        .env_remove("RECOPS_HOME")
        .env_remove("RECOPS_BIN_DIR");
    c
}

fn scheduler(s: &Setup, args: &[&str]) -> Output {
    command(s, args).output().unwrap()
}

const CONFIG: &str = r#"{
  "timezone": "Asia/Ho_Chi_Minh",
  "kill_grace_seconds": 30,
  "jobs": {
    "data_refresh": {"enabled": true, "cron": "0 2 * * *", "timeout_minutes": 30},
    "health_check": {"enabled": true, "cron": "0 * * * *", "timeout_minutes": 0.02},
    "model_training": {"enabled": false, "cron": "0 3 * * 0", "timeout_minutes": 120}
  }
}"#;

fn scripts() -> Vec<(&'static str, &'static str)> {
    vec![
        ("data-refresh", "echo refreshed; exit 0"),
        ("health-check", "sleep 1000"),
        ("model-training", "echo failing >&2; exit 4"),
    ]
}

#[test]
fn check_config_accepts_a_good_config_and_names_file_key_and_reason_of_a_bad_one() {
    let s = setup(CONFIG, &scripts());
    let out = scheduler(&s, &["--check-config", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["enabled"],
        serde_json::json!(["data_refresh", "health_check"])
    );
    assert_eq!(v["disabled"], serde_json::json!(["model_training"]));

    let bad = setup(&CONFIG.replace("0 2 * * *", "0 2 * *"), &scripts());
    let out = scheduler(&bad, &["--check-config"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("scheduler_config.json at key `jobs.data_refresh.cron`"),
        "{err}"
    );
    assert!(err.contains("expected 5"), "{err}");
    // The scheduler itself refuses to start with the same message.
    let out = scheduler(&bad, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("jobs.data_refresh.cron"));

    let out = scheduler(&s, &["--list", "--run-now", "x"]);
    assert_eq!(out.status.code(), Some(2), "usage error");
}

#[test]
fn list_prints_three_next_fires_per_job() {
    let s = setup(CONFIG, &scripts());
    let out = scheduler(&s, &["--list", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let jobs = v["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 3);
    for j in jobs {
        assert_eq!(j["next_fires"].as_array().unwrap().len(), 3, "{j}");
        assert!(
            j["next_fires"][0].as_str().unwrap().ends_with("+07:00"),
            "{j}"
        );
    }
    let out = scheduler(&s, &["--list"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("NEXT FIRES") && text.contains("data_refresh"),
        "{text}"
    );
}

#[test]
fn run_now_runs_records_and_reports_success_failure_and_timeout() {
    let s = setup(CONFIG, &scripts());
    let out = scheduler(&s, &["--run-now", "data_refresh", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["status"], "success");
    assert_eq!(v["trigger"], "manual");

    let out = scheduler(&s, &["--run-now", "model_training", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["reason"], "exit_code");

    // The job gets the SIGTERM the scheduler sends (its signal mask is not inherited
    // from the scheduler's signal thread set-up), well before the 30 s kill grace.
    let t = Instant::now();
    let out = scheduler(&s, &["--run-now", "health_check", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["reason"], "timeout");
    assert_eq!(v["error"], "timed out after 1s (killed by SIGTERM)");
    assert!(t.elapsed() < Duration::from_secs(20));

    let out = scheduler(&s, &["--run-now", "no_such_job"]);
    assert_eq!(out.status.code(), Some(2));

    let log = std::fs::read_to_string(Home::new(&s.home).scheduler_log()).unwrap();
    assert!(
        log.contains("| INFO | Starting job: data_refresh | trigger=manual"),
        "{log}"
    );
    assert!(
        log.contains("| INFO | Job completed: data_refresh | duration="),
        "{log}"
    );
    let stats = recops_tracking::PipelineTracker::open(&Home::new(&s.home))
        .unwrap()
        .get_stats(1)
        .unwrap();
    assert_eq!(stats.stats_by_pipeline["scheduler.data_refresh"].success, 1);
    assert_eq!(stats.stats_by_pipeline["scheduler.health_check"].failed, 1);
}

fn sigterm(child: &std::process::Child) {
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
}

fn wait_for(path: &Path, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.contains(needle) {
            return text;
        }
        assert!(Instant::now() < deadline, "no {needle:?} in {text}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_daemon_refuses_a_twin_and_stops_cleanly_on_sigterm() {
    let s = setup(CONFIG, &scripts());
    let before = scheduler(&s, &["--status"]);
    assert_eq!(before.status.code(), Some(3), "not running yet");
    assert!(String::from_utf8_lossy(&before.stdout).starts_with("scheduler not running"));
    let mut daemon = command(&s, &[])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let log = Home::new(&s.home).scheduler_log();
    wait_for(&log, "Scheduler started");

    let twin = scheduler(&s, &[]);
    assert_eq!(twin.status.code(), Some(1));
    let err = String::from_utf8_lossy(&twin.stderr);
    assert!(
        err.contains("another scheduler is already running"),
        "{err}"
    );
    assert!(err.contains(&daemon.id().to_string()), "{err}");

    // --status names it, with the next fires, and exits 0.
    let status = scheduler(&s, &["--status", "--json"]);
    assert_eq!(status.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(v["running"], true);
    assert_eq!(v["pid"], daemon.id());
    assert!(v["since"].as_str().is_some(), "{v}");
    let jobs = v["jobs"].as_array().unwrap();
    assert!(
        jobs.iter()
            .any(|j| j["enabled"] == true && j["next_fires"][0].is_string()),
        "{v}"
    );

    sigterm(&daemon);
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = daemon.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the scheduler did not stop");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(0));
    let text = wait_for(&log, "Scheduler stopped");
    assert_eq!(
        scheduler(&s, &["--status"]).status.code(),
        Some(3),
        "stopped"
    );
    assert!(
        text.contains("| INFO | Scheduler stopping: no job running"),
        "{text}"
    );
}

#[test]
fn recops_init_writes_the_default_scheduler_config_and_keeps_an_edited_one() {
    let dir = tempfile::tempdir().unwrap();
    let recops = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_recops"))
            .arg("--home")
            .arg(dir.path())
            .args(args)
            .env_remove("RECOPS_HOME")
            .output()
            .unwrap()
    };
    assert!(recops(&["init"]).status.success());
    let path = Home::new(dir.path()).scheduler_config();
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        recops_scheduler::DEFAULT_SCHEDULER_CONFIG
    );
    std::fs::write(&path, "{}").unwrap();
    let out = recops(&["init"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("kept     {}", path.display())));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "{}");
}

#[test]
fn the_daemon_raises_job_overdue_through_the_alerting_log_channel() {
    let config = r#"{"timezone": "Asia/Ho_Chi_Minh", "jobs": {
        "yearly_report": {"cron": "0 2 1 1 *", "timeout_minutes": 1, "binary": "data-refresh"}}}"#;
    let s = setup(config, &scripts());
    let home = Home::new(&s.home);
    // The scheduler has known the job for three years and it never succeeded: more
    // than twice its (yearly) period.
    let first_seen = chrono::Utc::now() - chrono::Duration::days(3 * 365);
    recops_scheduler::StateStore::open(&home.scheduler_state_db())
        .unwrap()
        .ensure("yearly_report", first_seen)
        .unwrap();
    let mut daemon = command(&s, &[])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let alerts = wait_for(&home.alerts_log(), "job_overdue_yearly_report");
    assert!(
        alerts.contains(
            "| CRITICAL | alerting | job_overdue_yearly_report: Job yearly_report has not succeeded"
        ),
        "{alerts}"
    );
    let log = wait_for(&home.scheduler_log(), "Job overdue: yearly_report");
    assert!(
        log.contains("| ERROR | Job overdue: yearly_report | no success since"),
        "{log}"
    );
    sigterm(&daemon);
    let deadline = Instant::now() + Duration::from_secs(20);
    while daemon.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the scheduler did not stop");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(daemon.wait().unwrap().code(), Some(0));
}
