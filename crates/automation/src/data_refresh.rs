//! The data-refresh job (spec Component 7, `automation/data_refresh.py`):
//! PipelineLock("data_refresh") -> track -> [`recops_data::refresh`] -> alert.

use std::path::{Path, PathBuf};

use recops_alerting::{SendReport, Severity};
use recops_core::{Home, SharedClock, SystemClock};
use recops_data::{DataConfig, RefreshOptions, RefreshReport};
use recops_tracking::LockHolder;
use serde::Serialize;
use serde_json::json;

use crate::error::Result;
use crate::job::{Finish, Job, JobOutcome, JobStatus};

/// The pipeline name (lock, tracker, alerts).
pub const PIPELINE: &str = "data_refresh";

/// Options of [`refresh_data_with`].
#[derive(Debug, Clone)]
pub struct DataRefreshOptions {
    /// Rebuild everything even for a few new rows.
    pub force_full: bool,
    /// Staging folder (default: the home's `data/staging/`).
    pub staging_dir: Option<PathBuf>,
    /// The clock (run times, file stamps).
    pub clock: SharedClock,
}

impl Default for DataRefreshOptions {
    fn default() -> Self {
        DataRefreshOptions {
            force_full: false,
            staging_dir: None,
            clock: SystemClock::shared(),
        }
    }
}

/// The result of a data refresh, printed as JSON by `data-refresh --json`.
#[derive(Debug, Clone, Serialize)]
pub struct DataRefreshResult {
    /// Success or skipped (failures are errors).
    pub status: JobStatus,
    /// The pipeline name.
    pub pipeline: &'static str,
    /// The run id in `logs/pipeline_metrics.db` (none when skipped).
    pub run_id: Option<String>,
    /// Why the run was skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The lock holder, when skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub holder: Option<LockHolder>,
    /// What the refresh did.
    #[serde(flatten)]
    pub report: Option<RefreshReport>,
    /// The completion alert (`pipeline_data_refresh_success`) and what each channel did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alert: Option<SendReport>,
    /// Wall time of the run.
    pub duration_seconds: f64,
}

/// One line for people: `data_refresh success (run data_refresh_…): incremental, 1 file,
/// 12 new records (0 rejected), 20012 total, changed, data version xxh3-128:…`.
impl std::fmt::Display for DataRefreshResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(m) = &self.message {
            return f.write_str(m);
        }
        write!(f, "{PIPELINE} {}", self.status)?;
        if let Some(id) = &self.run_id {
            write!(f, " (run {id})")?;
        }
        if let Some(r) = &self.report {
            let kind = match r.kind {
                recops_data::RefreshKind::NoNewData => "no new data",
                recops_data::RefreshKind::Repair => "repair of derived outputs",
                recops_data::RefreshKind::Incremental => "incremental",
                recops_data::RefreshKind::Full => "full",
            };
            write!(
                f,
                ": {kind}, {} file{}, {} new records ({} rejected), {} total, {}, data version {}",
                r.files.len(),
                if r.files.len() == 1 { "" } else { "s" },
                r.new_records,
                r.rejected_records,
                r.total_records,
                if r.changed { "changed" } else { "unchanged" },
                r.data_version.as_deref().unwrap_or("-")
            )?;
        }
        Ok(())
    }
}

/// The spec's `refresh_data(force_full, staging_dir)` on `home`, with the real clock.
pub fn refresh_data(
    home: &Home,
    force_full: bool,
    staging_dir: Option<&Path>,
) -> Result<DataRefreshResult> {
    refresh_data_with(
        home,
        &DataRefreshOptions {
            force_full,
            staging_dir: staging_dir.map(Path::to_path_buf),
            ..DataRefreshOptions::default()
        },
    )
}

/// Runs the data refresh as a [`Job`]: takes the `data_refresh` lock (returns `Skipped`
/// when another run holds it), records the run in `logs/pipeline_metrics.db` with the counts in its
/// metadata, runs [`recops_data::refresh`] (find staging files, count, incremental or
/// full, validate, archive) and sends the completion (info) or failure (warning) alert
/// through recops-alerting (`pipeline_data_refresh_success` / `_failed`).
///
/// A failure is recorded as a failed run, alerted, and returned as
/// [`Error::JobFailed`]; the processed data is unchanged (see [`recops_data::refresh`]).
pub fn refresh_data_with(home: &Home, options: &DataRefreshOptions) -> Result<DataRefreshResult> {
    let staging = options
        .staging_dir
        .clone()
        .unwrap_or_else(|| home.staging_dir());
    let outcome = Job::new(home, PIPELINE, options.clock.clone())
        .metadata(
            json!({"force_full": options.force_full, "staging_dir": staging.display().to_string()}),
        )
        .failure_severity(Severity::Warning)
        .run(|_| {
            let config = DataConfig::load(home)?;
            let report = recops_data::refresh(
                home,
                &config,
                &RefreshOptions {
                    force_full: options.force_full,
                    staging_dir: options.staging_dir.clone(),
                    now: options.clock.now(),
                },
            )?;
            let (metadata, message) = (run_metadata(&report), completion_message(&report));
            Ok(Finish::success(report, metadata)
                .message(message)
                .alert(Severity::Info))
        })?;
    Ok(match outcome {
        JobOutcome::Skipped(skip, duration_seconds) => DataRefreshResult {
            status: JobStatus::Skipped,
            pipeline: PIPELINE,
            run_id: None,
            message: Some(skip.message),
            holder: skip.holder,
            report: None,
            alert: None,
            duration_seconds,
        },
        JobOutcome::Ran(ran) => DataRefreshResult {
            status: ran.status,
            pipeline: PIPELINE,
            run_id: ran.run_id,
            message: None,
            holder: None,
            report: Some(ran.output),
            alert: ran.alert,
            duration_seconds: ran.duration_seconds,
        },
    })
}

/// The counts recorded in the run's metadata.
fn run_metadata(r: &RefreshReport) -> serde_json::Value {
    json!({
        "type": r.kind,
        "new_records": r.new_records,
        "rejected_records": r.rejected_records,
        "total_records": r.total_records,
        "previous_records": r.previous_records,
        "records_added": r.merge.added,
        "records_replaced": r.merge.replaced,
        "records_unchanged": r.merge.unchanged,
        "duplicates_in_staging": r.merge.duplicates_in_incoming,
        "files": r.files.len(),
        "recovered_files": r.recovered_files.len(),
        "data_version": r.data_version,
        "previous_data_version": r.previous_data_version,
        "changed": r.changed,
        "users": r.users,
        "items": r.items,
        "train_interactions": r.train_interactions,
        "test_interactions": r.test_interactions,
        "mean_comment_quality": r.mean_comment_quality,
    })
}

fn completion_message(r: &RefreshReport) -> String {
    let kind = serde_json::to_value(r.kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    format!(
        "type={kind} files={} new_records={} rejected={} total_records={} changed={} data_version={}",
        r.files.len(),
        r.new_records,
        r.rejected_records,
        r.total_records,
        r.changed,
        r.data_version.as_deref().unwrap_or("-")
    )
}
