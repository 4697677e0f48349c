//! The daily `maintenance` job: retention as configured in `retention:` of
//! `config/recops.yaml`, run through the job runner (locked, tracked, alerted on
//! failure like every job).
//!
//! 1. `cleanup_stale_runs`: runs still `running` after `stale_run_hours` are failed;
//! 2. per-minute service rollups older than `service_rollups_days` are deleted;
//! 3. finished pipeline runs older than `pipeline_runs_days` and finished training
//!    runs (with their iterations) older than `training_runs_days` are deleted
//!    (training runs of active registered models are kept);
//! 4. registry audit lines older than `registry_audit_days` move to
//!    `logs/archive/registry_audit.<date>.log`, deployment records older than
//!    `deployment_history_days` to `logs/archive/deployment_history.<date>.json`
//!    (the newest 20 records always stay, for rollbacks);
//! 5. `reports/drift/drift_summary.md` keeps its header and newest
//!    `drift_summary_rows` rows; older rows move to
//!    `reports/drift/archive/drift_summary.<date>.md`.
//!
//! Nothing is ever deleted from the text records: old entries are moved to dated
//! archive files.

use std::fmt;
use std::io::Write;
use std::path::Path;

use chrono::Duration;
use recops_core::{Home, RecopsConfig, SharedClock, format_timestamp};
use recops_deploy::DeploymentLog;
use recops_registry::Registry;
use recops_tracking::{PipelineTracker, ServiceMetricsStore, TrainingTracker};
use serde::Serialize;
use serde_json::json;

use crate::error::{Error, Result};
use crate::job::{Finish, Job, JobOutcome, JobStatus};

/// The pipeline name.
pub const PIPELINE: &str = "maintenance";

/// Deployment records always kept in the history (rollback targets).
pub const KEEP_DEPLOYMENTS: usize = 20;

/// What one maintenance run did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MaintenanceReport {
    /// `success` or `skipped`.
    pub status: String,
    /// The run in `logs/pipeline_metrics.db`.
    pub run_id: Option<String>,
    /// Stale `running` runs marked failed.
    pub stale_runs_failed: usize,
    /// Service rollup rows deleted.
    pub rollups_deleted: usize,
    /// Pipeline runs deleted.
    pub pipeline_runs_deleted: usize,
    /// Training runs deleted.
    pub training_runs_deleted: usize,
    /// Audit lines moved to the archive.
    pub audit_lines_archived: usize,
    /// Deployment records moved to the archive.
    pub deployments_archived: usize,
    /// Drift summary rows moved to the archive.
    pub drift_rows_archived: usize,
}

impl fmt::Display for MaintenanceReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "maintenance {}: {} stale run(s) failed, {} rollup(s), {} pipeline run(s) and {} training run(s) deleted; archived {} audit line(s), {} deployment(s), {} drift row(s)",
            self.status,
            self.stale_runs_failed,
            self.rollups_deleted,
            self.pipeline_runs_deleted,
            self.training_runs_deleted,
            self.audit_lines_archived,
            self.deployments_archived,
            self.drift_rows_archived
        )
    }
}

/// Runs the maintenance job on `home` with `clock` (see the module docs).
pub fn run_maintenance(home: &Home, clock: &SharedClock) -> Result<MaintenanceReport> {
    let config = RecopsConfig::load(home)?;
    let outcome = Job::new(home, PIPELINE, clock.clone()).run(|ctx| {
        let _ = ctx;
        recops_core::faults::point("maintenance.start");
        let mut r = retain(home, &config, clock)?;
        r.status = "success".into();
        let metadata = serde_json::to_value(&r).unwrap_or_else(|_| json!({}));
        let message = r.to_string();
        Ok(Finish::success(r, metadata).message(message.trim_end()))
    })?;
    Ok(match outcome {
        JobOutcome::Ran(ran) => MaintenanceReport {
            run_id: ran.run_id,
            status: match ran.status {
                JobStatus::Success => "success".into(),
                other => other.as_str().into(),
            },
            ..ran.output
        },
        JobOutcome::Skipped(skip, _) => MaintenanceReport {
            status: format!("skipped: {}", skip.message),
            ..MaintenanceReport::default()
        },
    })
}

fn retain(home: &Home, config: &RecopsConfig, clock: &SharedClock) -> Result<MaintenanceReport> {
    let r = &config.retention;
    let now = clock.now();
    let days = |d: u32| now - Duration::days(i64::from(d));
    let date = now.format("%Y-%m-%d").to_string();
    let pipelines = PipelineTracker::open_home(home, clock.clone())?;
    let mut report = MaintenanceReport {
        stale_runs_failed: pipelines.cleanup_stale_runs(r.stale_run_hours)?,
        ..MaintenanceReport::default()
    };
    report.rollups_deleted =
        ServiceMetricsStore::open(home)?.prune_before(days(r.service_rollups_days))?;
    report.pipeline_runs_deleted = pipelines.prune_finished_before(days(r.pipeline_runs_days))?;
    report.training_runs_deleted = TrainingTracker::open_home(home, clock.clone())?
        .prune_finished_before(days(r.training_runs_days))?;
    let archive = home.logs_dir().join("archive");
    report.audit_lines_archived = Registry::with_clock(home, clock.clone()).archive_audit_before(
        days(r.registry_audit_days),
        &archive.join(format!("registry_audit.{date}.log")),
    )?;
    report.deployments_archived = DeploymentLog::open(home).archive_before(
        days(r.deployment_history_days),
        KEEP_DEPLOYMENTS,
        &archive.join(format!("deployment_history.{date}.json")),
    )?;
    let drift_archive = home
        .drift_reports_dir()
        .join("archive")
        .join(format!("drift_summary.{date}.md"));
    report.drift_rows_archived =
        bound_drift_summary(&home.drift_summary(), r.drift_summary_rows, &drift_archive)?;
    tracing::debug!(at = %format_timestamp(now), "retention applied");
    Ok(report)
}

/// Keeps the header (lines before the first data row) and the newest `rows` table
/// rows of the drift summary; older rows are appended to `archive`.
fn bound_drift_summary(path: &Path, rows: usize, archive: &Path) -> Result<usize> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(recops_core::Error::io("cannot read", path, e).into()),
    };
    let lines: Vec<&str> = text.lines().collect();
    // Data rows: table lines after the header separator (`|---|`).
    let Some(sep) = lines
        .iter()
        .position(|l| l.starts_with("|-") || l.starts_with("| -"))
    else {
        return Ok(0);
    };
    let data = &lines[sep + 1..];
    if data.len() <= rows {
        return Ok(0);
    }
    let (old, keep) = data.split_at(data.len() - rows);
    let mut archived = old.join("\n");
    archived.push('\n');
    recops_core::ensure_parent(archive)?;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(archive)
        .map_err(|e| Error::Io {
            action: "cannot open",
            path: archive.to_path_buf(),
            source: e,
        })?;
    f.write_all(archived.as_bytes()).map_err(|e| Error::Io {
        action: "cannot append to",
        path: archive.to_path_buf(),
        source: e,
    })?;
    let mut out = lines[..=sep].join("\n");
    out.push('\n');
    for l in keep {
        out.push_str(l);
        out.push('\n');
    }
    recops_core::write_atomic(path, out.as_bytes())?;
    Ok(old.len())
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use recops_core::FixedClock;
    use recops_deploy::{DeploymentAction, DeploymentHistory, DeploymentRecord, DeploymentStatus};
    use recops_tracking::{LatencyHistogram, MinuteRollup, RunStatus};

    use super::*;

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

    /// A simulated year: every day 24 hourly health-check runs, one deployment record,
    /// one drift summary row and 24 rollup minutes; maintenance daily. What the home
    /// holds stays bounded by the retention settings.
    #[test]
    fn a_simulated_year_keeps_the_records_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::new(dir.path());
        crate::write_default_configs(&home).unwrap();
        // Short limits so the simulation runs quickly; the mechanism is the same.
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
        let t0 = Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap();
        let clock = FixedClock::new(t0);
        let shared = clock.shared();
        let tracker = PipelineTracker::open_path(&home.pipeline_db(), shared.clone()).unwrap();
        let store = ServiceMetricsStore::open(&home).unwrap();
        std::fs::create_dir_all(home.drift_summary().parent().unwrap()).unwrap();
        std::fs::write(
            home.drift_summary(),
            "# Drift\n\n| time | severity |\n|---|---|\n",
        )
        .unwrap();
        let mut sizes = Vec::new();
        for day in 0..365 {
            let start = t0 + Duration::days(day);
            for h in 0..24 {
                clock.set(start + Duration::hours(h));
                let id = tracker.start_run("health_check", json!({})).unwrap();
                tracker.complete_run(&id, json!({})).unwrap();
                store.record(&[rollup(start + Duration::hours(h))]).unwrap();
            }
            let record = DeploymentRecord {
                timestamp: format_timestamp(start),
                model_id: "als_1".parse().unwrap(),
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
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(home.drift_summary())
                .unwrap();
            writeln!(f, "| day {day} | low |").unwrap();
            clock.set(start + Duration::hours(23) + Duration::minutes(30));
            let r = run_maintenance(&home, &shared).unwrap();
            assert_eq!(r.status, "success", "{r:?}");
            if day == 200 || day == 364 {
                sizes.push(std::fs::metadata(home.pipeline_db()).unwrap().len());
            }
        }
        // Rows: 30 days of 25 runs a day (24 health checks + maintenance) at most.
        let runs = tracker.get_recent_runs(None, 100_000, None).unwrap();
        assert!(runs.len() <= 31 * 25, "{} pipeline runs", runs.len());
        assert!(runs.iter().all(|r| r.status != RunStatus::Running));
        let rollups = store
            .rollups(t0, t0 + Duration::days(400), None)
            .unwrap()
            .len();
        assert!(rollups <= 8 * 24, "{rollups} rollups");
        let history = DeploymentHistory::load(&home.deployment_history()).unwrap();
        assert!(
            history.deployments.len() <= 31,
            "{}",
            history.deployments.len()
        );
        let summary = std::fs::read_to_string(home.drift_summary()).unwrap();
        assert_eq!(
            summary.lines().filter(|l| l.starts_with("| day")).count(),
            10
        );
        // Nothing lost: the archives hold the rest.
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
        assert_eq!(archived + history.deployments.len(), 365);
        // The database stops growing: SQLite reuses the pages of deleted rows.
        assert!(sizes[1] <= sizes[0] * 11 / 10, "pipeline db {sizes:?}");
    }
}
