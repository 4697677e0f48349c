//! The health-check job (spec Component 3, `automation/health_check.py`): service,
//! data, model, pipelines, embeddings and service metrics -> `logs/health_check.log`
//! -> an alert while unhealthy.

use std::time::Duration;

use recops_alerting::Severity;
use recops_core::{
    Home, LogFile, LogFileOptions, LogLevel, RecopsConfig, SharedClock, SystemClock, error_chain,
    format_timestamp,
};
use recops_health::{
    ComponentStatus, HealthChecks, check_data_health, check_deployment, check_embeddings_health,
    check_model_health, check_pipeline_health, check_replicas_health, read_service_metrics,
};
use serde_json::json;
use tracing::{error, info, warn};

/// The health report, aggregated by recops-health.
pub use recops_health::HealthReport;

use crate::error::{Error, Result};
use crate::job::{Finish, Job, JobAlerts, JobOutcome, LockPolicy, Tracking};

/// The pipeline name (tracker, alerts).
pub const PIPELINE: &str = "health_check";

/// The alert raised while the system is unhealthy (and resolved when it recovers).
pub const UNHEALTHY_ALERT: &str = "health_check_unhealthy";

/// The alert kept firing while the product embeddings are stale (older than
/// `freshness.stale_after_days`) or made by another model than the configured one.
pub const EMBEDDINGS_STALE_ALERT: &str = "embeddings_stale";

/// Options of [`run_health_check`].
#[derive(Debug, Clone)]
pub struct HealthJobOptions {
    /// The service (one replica); `None` = every replica of `service.urls` (default
    /// `service.url`) of `config/recops.yaml`.
    pub service_url: Option<String>,
    /// How long `/health` may take (the spec: 5 s).
    pub service_timeout: Duration,
    /// Window of service metrics run through the alert rules (1 hour).
    pub metrics_window: chrono::Duration,
    /// Days of pipeline statistics (the spec: 7).
    pub pipeline_days: u32,
    /// A pipeline below this success rate is unhealthy (the spec: 0.5).
    pub min_success_rate: f64,
    /// The clock.
    pub clock: SharedClock,
}

impl Default for HealthJobOptions {
    fn default() -> Self {
        HealthJobOptions {
            service_url: None,
            service_timeout: Duration::from_secs(5),
            metrics_window: chrono::Duration::hours(1),
            pipeline_days: 7,
            min_success_rate: 0.5,
            clock: SystemClock::shared(),
        }
    }
}

/// The spec's `run_health_check`: runs every check (none of them can crash the run),
/// aggregates, appends one line to `logs/health_check.log`, records the run, and keeps
/// the `health_check_unhealthy` alert firing while something is unhealthy (deduplicated
/// by recops-alerting, resolved when health returns).
///
/// `Err` only when the check cannot run at all (the home or its config).
pub fn run_health_check(home: &Home, options: &HealthJobOptions) -> Result<HealthReport> {
    let config = RecopsConfig::load(home)?;
    let outcome = Job::new(home, PIPELINE, options.clock.clone())
        .lock(LockPolicy::Unlocked)
        .tracking(Tracking::BestEffort)
        .run(|ctx| {
            let report = check_all(home, &config, options, ctx.alerts);
            let metadata = json!({"healthy": report.healthy, "problems": report.problems()});
            Ok(Finish::success(report, metadata))
        })?;
    match outcome {
        JobOutcome::Ran(ran) => {
            let mut report = ran.output;
            report.run_id = ran.run_id;
            Ok(report)
        }
        // Unlocked jobs are never skipped.
        JobOutcome::Skipped(skip, _) => Err(Error::Skipped {
            message: skip.message,
        }),
    }
}

/// Every check, aggregated, logged to `logs/health_check.log`, with the
/// `health_check_unhealthy` alert kept firing while unhealthy.
fn check_all(
    home: &Home,
    config: &RecopsConfig,
    options: &HealthJobOptions,
    alerts: &JobAlerts,
) -> HealthReport {
    let now = options.clock.now();
    // `--service-url` probes one service; else every replica of `service.urls`.
    let urls = match &options.service_url {
        Some(url) => vec![url.clone()],
        None => config.service.urls(),
    };
    let service = check_replicas_health(&urls, options.service_timeout);
    let data = check_data_health(home, &config.health.required_files);
    let model = check_model_health(home);
    let pipeline = check_pipeline_health(home, options.pipeline_days, options.min_success_rate);
    let embeddings = check_embeddings_health(home, &*options.clock);
    let deployment = check_deployment(home, &service);
    let mut service_metrics = read_service_metrics(home, now, options.metrics_window);
    if let (Some(m), Some(a)) = (&service_metrics.metrics, alerts.manager()) {
        // The rules of alerts_config.yaml over the window, with their own dedup state.
        let evaluations = a.process(&m.alert_metrics());
        let triggered: Vec<_> = evaluations.iter().filter(|e| e.breached).collect();
        let worst = triggered.iter().map(|e| e.severity).max();
        service_metrics.status = match worst {
            Some(Severity::Critical) => ComponentStatus::Unhealthy,
            Some(_) => ComponentStatus::Warning,
            None => ComponentStatus::Healthy,
        };
        service_metrics.healthy = service_metrics.status != ComponentStatus::Unhealthy;
        service_metrics.triggered = triggered
            .iter()
            .map(|e| {
                json!({
                    "alert_name": e.alert_name, "metric": e.metric, "value": e.value,
                    "threshold": e.threshold, "severity": e.severity,
                })
            })
            .collect();
    }

    let report = HealthReport::aggregate(
        format_timestamp(now),
        HealthChecks {
            service,
            data,
            model,
            pipeline,
            embeddings,
            service_metrics,
            deployment,
        },
    );
    let healthy = report.healthy;
    let problems = report.problems();
    let summary = report.summary_line();
    match LogFile::open(
        home.health_check_log(),
        LogFileOptions {
            max_files: config.logging.max_files,
            clock: options.clock.clone(),
        },
    ) {
        Ok(log) => {
            let level = if healthy {
                LogLevel::Info
            } else {
                LogLevel::Error
            };
            if let Err(e) = log.write_line(level, None, &summary) {
                warn!(error = %error_chain(&e), "cannot write logs/health_check.log");
            }
        }
        Err(e) => warn!(error = %error_chain(&e), "cannot open logs/health_check.log"),
    }
    // Stale or mismatched embeddings: the spec's "alert if stale" (deduplicated,
    // resolved once fresh embeddings are written).
    let stale =
        report.embeddings.is_stale == Some(true) || report.embeddings.model_mismatch == Some(true);
    alerts.observe(
        EMBEDDINGS_STALE_ALERT,
        stale,
        report
            .embeddings
            .message
            .as_deref()
            .unwrap_or("product embeddings are stale"),
        Severity::Warning,
    );
    alerts.observe(
        UNHEALTHY_ALERT,
        !healthy,
        &problems.join("\n"),
        Severity::Critical,
    );
    if healthy {
        info!("{summary}");
    } else {
        error!("{summary}");
    }
    report
}

#[cfg(test)]
mod deployment_tests {
    use recops_health::ServiceHealth;
    use recops_registry::{DeployedBy, NewModel, Registry};

    use super::*;

    #[test]
    fn a_service_serving_another_model_than_the_deployed_one_is_a_warning_with_both_ids() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::new(dir.path());
        let als_1: recops_core::ModelId = "als_1".parse().unwrap();
        std::fs::create_dir_all(home.model_dir(&als_1)).unwrap();
        let reg = Registry::open(&home);
        reg.register(
            &NewModel {
                model_id: als_1.clone(),
                model_type: recops_core::ModelType::Als,
                metrics: Default::default(),
                baseline: Default::default(),
                data_version: "v".into(),
            },
            "t",
        )
        .unwrap();
        let service = |id: &str| ServiceHealth {
            healthy: true,
            status: ComponentStatus::Healthy,
            url: "http://127.0.0.1:1/health".into(),
            latency_ms: Some(1.0),
            response: Some(json!({"status": "ok", "model_id": id})),
            error: None,
            instances: Vec::new(),
        };
        // Nothing deployed yet: nothing to compare.
        assert_eq!(
            check_deployment(&home, &service("bpr_2")).status,
            ComponentStatus::Healthy
        );
        reg.record_deployment(&als_1, DeployedBy::Operator, "t")
            .unwrap();
        assert_eq!(
            check_deployment(&home, &service("als_1")).status,
            ComponentStatus::Healthy
        );
        let h = check_deployment(&home, &service("bpr_2"));
        assert_eq!(h.status, ComponentStatus::Warning);
        let m = h.message.unwrap();
        assert!(m.contains("bpr_2") && m.contains("als_1"), "{m}");
    }
}
