//! The operations jobs through the real scheduler and binaries: a health check that
//! finds the system unhealthy is not a failed job (`ok_exit_codes`), and the real
//! `maintenance` job keeps a home's records bounded over simulated years.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use chrono::{Duration, Utc};
use recops_core::{FixedClock, Home, format_timestamp};
use recops_deploy::{DeploymentAction, DeploymentHistory, DeploymentRecord, DeploymentStatus};
use recops_tracking::{
    LatencyHistogram, MinuteRollup, PipelineTracker, RunStatus, ServiceMetricsStore,
};
use serde_json::{Value, json};

/// A home with the shipped scheduler config; the real binaries as job binaries.
fn home_with_shipped_schedule() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::new(dir.path());
    recops_automation::write_default_configs(&home).unwrap();
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/scheduler_config.json");
    std::fs::copy(shipped, home.scheduler_config()).unwrap();
    let bins = Path::new(env!("CARGO_BIN_EXE_health-check"))
        .parent()
        .unwrap()
        .to_path_buf();
    (dir, bins)
}

fn run_now(home: &Path, bins: &Path, job: &str, service_url: &str) -> (Output, Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_scheduler"))
        .arg("--home")
        .arg(home)
        .arg("--bin-dir")
        .arg(bins)
        .args(["--run-now", job, "--json"])
        .env_remove("RECOPS_HOME")
        .env_remove("RECOPS_BIN_DIR")
        .env("RECOPS_SERVICE_URL", service_url)
        .env("RECOPS_LOG", "warn")
        .output()
        .unwrap();
    let v = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out, v)
}

#[test]
fn a_health_check_that_finds_the_system_unhealthy_is_not_a_failed_job() {
    let (dir, bins) = home_with_shipped_schedule();
    // No service at this address: the health check finds the system unhealthy (exit 1).
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let (out, v) = run_now(dir.path(), &bins, "health_check", &url);
    assert!(
        out.status.success(),
        "{v} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(v["status"], "success", "{v}");
    let log = std::fs::read_to_string(v["job_log"].as_str().unwrap()).unwrap();
    assert!(
        log.contains("unhealthy"),
        "the check did find a problem: {log}"
    );
    // The same job without ok_exit_codes: a failure, with the exit code.
    let config = Home::new(dir.path()).scheduler_config();
    let text = std::fs::read_to_string(&config).unwrap();
    let mut c: Value = serde_json::from_str(&text).unwrap();
    c["jobs"]["health_check"]
        .as_object_mut()
        .unwrap()
        .remove("ok_exit_codes");
    std::fs::write(&config, c.to_string()).unwrap();
    let (out, v) = run_now(dir.path(), &bins, "health_check", &url);
    assert_eq!(out.status.code(), Some(1), "{v}");
    assert_eq!(
        (v["status"].as_str(), v["reason"].as_str()),
        (Some("failed"), Some("exit_code"))
    );
    let tracker = PipelineTracker::open(&Home::new(dir.path())).unwrap();
    let runs = tracker
        .get_recent_runs(Some("scheduler.health_check"), 10, None)
        .unwrap();
    let statuses: Vec<RunStatus> = runs.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [RunStatus::Failed, RunStatus::Success]);
}

fn rollup(at: chrono::DateTime<Utc>) -> MinuteRollup {
    let mut latency = LatencyHistogram::new();
    latency.record(20.0);
    MinuteRollup {
        minute: at,
        endpoint: "/recommend".into(),
        model_id: "als_1".into(),
        instance: String::new(),
        request_count: 1,
        error_count: 0,
        fallback_count: 0,
        latency,
    }
}

/// Records of one simulated year ending `end`: a health check every 3 hours, a
/// service rollup an hour, a deployment and a drift summary row a day.
fn fill_year(home: &Home, end: chrono::DateTime<Utc>) {
    let start = end - Duration::days(365);
    let clock = FixedClock::new(start);
    let tracker = PipelineTracker::open_path(&home.pipeline_db(), clock.shared()).unwrap();
    let store = ServiceMetricsStore::open(home).unwrap();
    let mut drift = std::fs::OpenOptions::new()
        .append(true)
        .open(home.drift_summary())
        .unwrap();
    for day in 0..365 {
        let d = start + Duration::days(day);
        let hours: Vec<MinuteRollup> = (0..24).map(|h| rollup(d + Duration::hours(h))).collect();
        store.record(&hours).unwrap();
        for h in (0..24).step_by(3) {
            clock.set(d + Duration::hours(h));
            let id = tracker.start_run("health_check", json!({})).unwrap();
            tracker.complete_run(&id, json!({})).unwrap();
        }
        let record = DeploymentRecord {
            timestamp: format_timestamp(d),
            model_id: recops_core::ModelId::new("als_1").unwrap(),
            previous_model_id: None,
            status: DeploymentStatus::Success,
            verification: None,
            rollback_triggered: false,
            rollback_status: None,
            rollback_verification: None,
            action: DeploymentAction::Deploy,
            reason: None,
            duration_seconds: 0.0,
        };
        DeploymentHistory::append(&home.deployment_history(), record).unwrap();
        writeln!(drift, "| {} | low |", d.format("%Y-%m-%d")).unwrap();
    }
}

#[test]
fn the_real_maintenance_job_keeps_two_simulated_years_bounded() {
    let (dir, bins) = home_with_shipped_schedule();
    let home = Home::new(dir.path());
    let cfg = std::fs::read_to_string(home.recops_config()).unwrap();
    let cfg = cfg
        .replace("service_rollups_days: 90", "service_rollups_days: 7")
        .replace("pipeline_runs_days: 365", "pipeline_runs_days: 30")
        .replace(
            "deployment_history_days: 365",
            "deployment_history_days: 30",
        )
        .replace("drift_summary_rows: 104", "drift_summary_rows: 10");
    std::fs::write(home.recops_config(), cfg).unwrap();
    std::fs::create_dir_all(home.drift_summary().parent().unwrap()).unwrap();
    std::fs::write(
        home.drift_summary(),
        "# Drift\n\n| time | severity |\n|---|---|\n",
    )
    .unwrap();
    let now = Utc::now();
    let mut sizes = Vec::new();
    // The year before last, then last year, each followed by the real job.
    for end in [now - Duration::days(365), now] {
        fill_year(&home, end);
        let (out, v) = run_now(dir.path(), &bins, "maintenance", "http://127.0.0.1:9");
        assert!(
            out.status.success(),
            "{v} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(v["status"], "success", "{v}");
        sizes.push(std::fs::metadata(home.pipeline_db()).unwrap().len());
    }
    let tracker = PipelineTracker::open(&home).unwrap();
    let runs = tracker
        .get_recent_runs(Some("health_check"), 100_000, None)
        .unwrap();
    assert!(
        runs.len() <= 31 * 8,
        "{} health-check runs kept",
        runs.len()
    );
    let history = DeploymentHistory::load(&home.deployment_history()).unwrap();
    assert!(
        history.deployments.len() <= 31,
        "{}",
        history.deployments.len()
    );
    let summary = std::fs::read_to_string(home.drift_summary()).unwrap();
    assert_eq!(
        summary.lines().filter(|l| l.ends_with("| low |")).count(),
        10
    );
    // Nothing lost: the archives hold every other deployment record.
    let archived: usize = std::fs::read_dir(home.logs_dir().join("archive"))
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("deployment_history")
        })
        .map(|e| {
            DeploymentHistory::load(&e.path())
                .unwrap()
                .deployments
                .len()
        })
        .sum();
    assert_eq!(archived + history.deployments.len(), 2 * 365);
    // The second year did not grow the database: SQLite reuses the deleted rows' pages.
    assert!(
        sizes[1] <= sizes[0] * 11 / 10,
        "pipeline db sizes {sizes:?}"
    );
}
