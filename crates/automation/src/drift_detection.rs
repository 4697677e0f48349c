//! The drift-detection job (spec Component 4, `automation/drift_detection.py`):
//! PipelineLock("drift_detection") -> track -> [`recops_drift::detect_drift`] ->
//! report -> `data_drift` alert -> optional retraining.

use std::path::PathBuf;
use std::time::Instant;

use recops_alerting::{AlertManager, Severity as AlertSeverity};
use recops_core::{Home, RecopsConfig, SharedClock, SystemClock};
use recops_drift::{DriftInput, DriftResults, Severity, generate_drift_report};
use recops_tracking::{PipelineLock, PipelineTracker};
use serde::Serialize;
use serde_json::json;
use tracing::{error, info, warn};

use crate::error::{Error, Result};
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
    pub status: String,
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
    let started = Instant::now();
    let lock = PipelineLock::acquire(home, PIPELINE)?;
    if !lock.acquired() {
        let message = format!("another {PIPELINE} run is in progress; skipped");
        warn!("{message}");
        return Ok(DriftJobResult {
            status: "skipped".into(),
            pipeline: PIPELINE,
            run_id: None,
            report_path: None,
            overall_severity: None,
            results: None,
            alert_firing: false,
            retraining: None,
            message,
            duration_seconds: started.elapsed().as_secs_f64(),
        });
    }
    let tracker = PipelineTracker::open_path(&home.pipeline_db(), options.clock.clone())?;
    let run_id = tracker.start_run(PIPELINE, json!({}))?;
    let outcome = (|| -> Result<(DriftResults, PathBuf, bool)> {
        let config = RecopsConfig::load(home)?;
        let (input, data_version) = DriftInput::load(home)?;
        let results = recops_drift::detect_drift(&input, &config.drift);
        let path =
            generate_drift_report(home, &results, data_version.as_deref(), options.clock.now())?;
        let retrain = options
            .retrain_on_drift
            .unwrap_or(config.drift.retrain_on_drift);
        Ok((results, path, retrain))
    })();
    let (results, path, retrain) = match outcome {
        Ok(v) => v,
        Err(e) => {
            let text = e.to_string();
            error!(run_id = %run_id, "drift detection failed: {text}");
            tracker.fail_run(&run_id, &text)?;
            if let Ok(alerts) = AlertManager::builder(home)
                .clock(options.clock.clone())
                .build()
            {
                alerts.send_pipeline_alert(PIPELINE, "failed", &text, AlertSeverity::Warning);
            }
            return Err(Error::JobFailed {
                pipeline: PIPELINE,
                run_id,
                source: Box::new(e),
            });
        }
    };
    let severity = results.overall_severity;
    let firing = severity == Severity::High;
    let message = summary(&results);
    match AlertManager::builder(home)
        .clock(options.clock.clone())
        .build()
    {
        Ok(alerts) => {
            let level = alerts
                .config()
                .alerts
                .get(DRIFT_ALERT)
                .map_or(AlertSeverity::Warning, |r| r.severity);
            alerts.observe(DRIFT_ALERT, firing, &message, level);
        }
        Err(e) => {
            error!(error = %format!("{e:#}"), "alerting is unavailable: the data_drift alert was not sent")
        }
    }
    tracker.complete_run(
        &run_id,
        json!({
            "overall_severity": severity,
            "rating_drift": results.rating_drift.drift_detected,
            "popularity_shift": results.popularity_drift.shift_detected,
            "interaction_drift": results.interaction_drift.drift_detected,
            "insufficient_data": results.windows.insufficient_data,
            "report": path.display().to_string(),
        }),
    )?;
    info!(run_id = %run_id, report = %path.display(), "{message}");
    drop(lock);
    let retraining = if firing && retrain {
        info!("high drift severity: running model training");
        Some(train_models(home, &TrainModelsOptions::default())?)
    } else {
        None
    };
    Ok(DriftJobResult {
        status: "success".into(),
        pipeline: PIPELINE,
        run_id: Some(run_id),
        report_path: Some(path),
        overall_severity: Some(severity),
        results: Some(results),
        alert_firing: firing,
        retraining,
        message,
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
