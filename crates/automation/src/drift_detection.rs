//! The drift-detection job (spec Component 4, `automation/drift_detection.py`):
//! PipelineLock("drift_detection") -> track -> [`recops_drift::detect_drift`] ->
//! report -> `data_drift` alert -> optional retraining.

use std::path::PathBuf;

use recops_alerting::Severity as AlertSeverity;
use recops_core::{Home, RecopsConfig, SharedClock, SystemClock};
use recops_drift::{DriftInput, DriftResults, Severity, generate_drift_report};
use serde::Serialize;
use serde_json::json;
use tracing::info;

use crate::error::Result;
use crate::job::{Finish, Job, JobOutcome, JobStatus};
use crate::model_training::{TrainModelsOptions, TrainModelsReport, train_models};

/// The pipeline name (lock, tracker, alerts).
pub const PIPELINE: &str = "drift_detection";

/// The alert raised on high-severity drift (a rule of `config/alerts_config.yaml`).
pub const DRIFT_ALERT: &str = "data_drift";

/// Options of [`detect_drift`].
#[derive(Debug, Clone)]
pub struct DriftJobOptions {
    /// Run the training job when the overall severity is high; `None` = the
    /// `drift.retrain_on_drift` setting of `config/recops.yaml`.
    pub retrain_on_drift: Option<bool>,
    /// The clock (report date, run times).
    pub clock: SharedClock,
}

impl Default for DriftJobOptions {
    fn default() -> Self {
        DriftJobOptions {
            retrain_on_drift: None,
            clock: SystemClock::shared(),
        }
    }
}

/// The result of a drift detection run (`drift-detection --json`).
#[derive(Debug, Clone, Serialize)]
pub struct DriftJobResult {
    /// `success` or `skipped` (another run holds the lock).
    pub status: JobStatus,
    /// The pipeline name.
    pub pipeline: &'static str,
    /// The run in `logs/pipeline_metrics.db`.
    pub run_id: Option<String>,
    /// `reports/drift/drift_report_YYYYMMDD.json`.
    pub report_path: Option<PathBuf>,
    /// low / medium / high.
    pub overall_severity: Option<Severity>,
    /// The three detectors and their windows.
    pub results: Option<DriftResults>,
    /// Whether the `data_drift` alert fired (or stayed firing).
    pub alert_firing: bool,
    /// The retraining run, when drift asked for one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retraining: Option<TrainModelsReport>,
    /// One line for people.
    pub message: String,
    /// Wall time.
    pub duration_seconds: f64,
}

/// The spec's `detect_drift`: compares the last week of processed interactions with
/// the data before it, writes the drift report and the summary row, records the run,
/// raises `data_drift` on high severity (and resolves it when drift is gone), and
/// retrains when asked to.
pub fn detect_drift(home: &Home, options: &DriftJobOptions) -> Result<DriftJobResult> {
    let started = std::time::Instant::now();
    let outcome = Job::new(home, PIPELINE, options.clock.clone()).run(|ctx| {
        let config = RecopsConfig::load(home)?;
        let (input, data_version) = DriftInput::load(home)?;
        let results = recops_drift::detect_drift(&input, &config.drift);
        let path =
            generate_drift_report(home, &results, data_version.as_deref(), options.clock.now())?;
        let retrain = options
            .retrain_on_drift
            .unwrap_or(config.drift.retrain_on_drift);
        let firing = results.overall_severity == Severity::High;
        let message = summary(&results);
        let level = ctx
            .alerts
            .manager()
            .and_then(|m| m.config().alerts.get(DRIFT_ALERT).map(|r| r.severity))
            .unwrap_or(AlertSeverity::Warning);
        ctx.alerts.observe(DRIFT_ALERT, firing, &message, level);
        let metadata = json!({
            "overall_severity": results.overall_severity,
            "rating_drift": results.rating_drift.drift_detected,
            "popularity_shift": results.popularity_drift.shift_detected,
            "interaction_drift": results.interaction_drift.drift_detected,
            "insufficient_data": results.windows.insufficient_data,
            "report": path.display().to_string(),
        });
        Ok(Finish::success((results, path, firing && retrain), metadata).message(message))
    })?;
    let ran = match outcome {
        JobOutcome::Skipped(skip, duration_seconds) => {
            return Ok(DriftJobResult {
                status: JobStatus::Skipped,
                pipeline: PIPELINE,
                run_id: None,
                report_path: None,
                overall_severity: None,
                results: None,
                alert_firing: false,
                retraining: None,
                message: skip.message,
                duration_seconds,
            });
        }
        JobOutcome::Ran(ran) => ran,
    };
    // The lock is released: retraining takes its own.
    let (results, path, retrain) = ran.output;
    let retraining = if retrain {
        info!("high drift severity: running model training");
        Some(train_models(
            home,
            &TrainModelsOptions {
                clock: options.clock.clone(),
                ..TrainModelsOptions::default()
            },
        )?)
    } else {
        None
    };
    Ok(DriftJobResult {
        status: ran.status,
        pipeline: PIPELINE,
        run_id: ran.run_id,
        report_path: Some(path),
        overall_severity: Some(results.overall_severity),
        alert_firing: results.overall_severity == Severity::High,
        results: Some(results),
        retraining,
        message: ran.message,
        duration_seconds: started.elapsed().as_secs_f64(),
    })
}

/// `drift severity high: rating max diff 0.234 (high), popularity Jaccard 0.61 (shift), volume +45.0% (drift)`.
fn summary(r: &DriftResults) -> String {
    if r.windows.insufficient_data {
        return format!(
            "drift severity low: insufficient data ({} historical, {} new interactions)",
            r.windows.historical_count, r.windows.new_count
        );
    }
    format!(
        "drift severity {}: rating max diff {:.3} ({}), popularity Jaccard {:.2}{}, volume {:+.1}%, activity {:+.1}%{}",
        r.overall_severity.as_str(),
        r.rating_drift.max_difference,
        r.rating_drift.severity.as_str(),
        r.popularity_drift.jaccard_similarity,
        if r.popularity_drift.shift_detected {
            " (shift)"
        } else {
            ""
        },
        r.interaction_drift.volume_change_pct,
        r.interaction_drift.user_activity_change_pct,
        if r.interaction_drift.drift_detected {
            " (drift)"
        } else {
            ""
        },
    )
}
