//! The model-deployment job (spec Component 6, `automation/model_deployment.py`):
//! PipelineLock("model_deployment") -> track -> [`recops_deploy::Deployer`] -> alert.

use std::time::Instant;

use recops_alerting::{AlertManager, Severity};
use recops_cf_training::CfModel;
use recops_core::{Home, RecopsConfig, SharedClock, SystemClock};
use recops_deploy::{
    DeployOptions, Deployer, DeploymentOutcome, DeploymentRecord, RollbackStatus, TestUsers,
};
use recops_registry::{ModelStatus, Registry};
use recops_tracking::{PipelineLock, PipelineTracker};
use serde::Serialize;
use serde_json::json;
use tracing::{error, info, warn};

use crate::error::Result;

/// The pipeline name (lock, tracker, alerts).
pub const PIPELINE: &str = "model_deployment";

/// Known users verified per model (plus one unknown user for the fallback).
pub const DEFAULT_TEST_USERS: usize = 10;

/// Options of [`deploy_model`].
#[derive(Debug, Clone)]
pub struct DeployJobOptions {
    /// The model to deploy; `None` = the registry's `current_best`.
    pub model_id: Option<String>,
    /// The service; `None` = `service.url` of `config/recops.yaml`.
    pub service_url: Option<String>,
    /// Verify from outside after the reload (spec default true).
    pub verify: bool,
    /// Roll back automatically when verification fails (spec default true).
    pub rollback_on_failure: bool,
    /// Instead of deploying, return to the model that served before the newest
    /// successful deployment (`model-deployment --rollback`).
    pub rollback: bool,
    /// Known users verified per model.
    pub test_users: usize,
    /// The clock (history timestamps, run times).
    pub clock: SharedClock,
}

impl Default for DeployJobOptions {
    fn default() -> Self {
        DeployJobOptions {
            model_id: None,
            service_url: None,
            verify: true,
            rollback_on_failure: true,
            rollback: false,
            test_users: DEFAULT_TEST_USERS,
            clock: SystemClock::shared(),
        }
    }
}

/// The result of a deployment run, printed as JSON by `model-deployment --json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeployJobResult {
    /// `deployed`, `unchanged` (already live), `rolled_back`, `failed` or `skipped`
    /// (another deployment holds the lock).
    pub status: String,
    /// The pipeline name.
    pub pipeline: &'static str,
    /// The run in `logs/pipeline_metrics.db` (none when skipped).
    pub run_id: Option<String>,
    /// The model deployed (or rolled back to).
    pub model_id: Option<String>,
    /// One line for people.
    pub message: String,
    /// The entry appended to `logs/deployment_history.json`.
    pub record: Option<DeploymentRecord>,
    /// Wall time.
    pub duration_seconds: f64,
}

impl DeployJobResult {
    /// True unless the deployment failed (a rollback that restored service counts as
    /// a failure of the deployment).
    pub fn ok(&self) -> bool {
        matches!(self.status.as_str(), "deployed" | "unchanged" | "skipped")
    }
}

/// The spec's `deploy_model`: deploys `options.model_id` (or the registry's
/// `current_best`) to the service with hot reload, verifies every test user, rolls back
/// on failure, records the deployment in `logs/deployment_history.json` and the run in
/// `logs/pipeline_metrics.db`, and alerts on failure and on rollback.
///
/// Service failures are results (`failed`, `rolled_back`), not errors; `Err` is for
/// what prevents the job from running at all (home, databases, history file).
pub fn deploy_model(home: &Home, options: &DeployJobOptions) -> Result<DeployJobResult> {
    let started = Instant::now();
    let lock = PipelineLock::acquire(home, PIPELINE)?;
    if !lock.acquired() {
        let holder = lock
            .holder()
            .map(|h| format!(" (pid {} on {} since {})", h.pid, h.host, h.started_at))
            .unwrap_or_default();
        let message = format!("another {PIPELINE} run is in progress{holder}; skipped");
        warn!("{message}");
        return Ok(DeployJobResult {
            status: "skipped".into(),
            pipeline: PIPELINE,
            run_id: None,
            model_id: None,
            message,
            record: None,
            duration_seconds: started.elapsed().as_secs_f64(),
        });
    }
    let tracker = PipelineTracker::open_path(&home.pipeline_db(), options.clock.clone())?;
    let run_id = tracker.start_run(
        PIPELINE,
        json!({"model_id": options.model_id, "rollback": options.rollback, "verify": options.verify}),
    )?;
    let finish = |status: &str,
                  model_id: Option<String>,
                  message: String,
                  record: Option<DeploymentRecord>| {
        DeployJobResult {
            status: status.to_owned(),
            pipeline: PIPELINE,
            run_id: Some(run_id.clone()),
            model_id,
            message,
            record,
            duration_seconds: started.elapsed().as_secs_f64(),
        }
    };

    let result = match run(home, options) {
        Ok((model_id, outcome)) => {
            let status = outcome.result.to_owned();
            finish(&status, Some(model_id), outcome.message, outcome.record)
        }
        Err(message) => finish("failed", options.model_id.clone(), message, None),
    };
    let metadata = json!({
        "model_id": result.model_id,
        "result": result.status,
        "previous_model_id": result.record.as_ref().and_then(|r| r.previous_model_id.clone()),
        "rollback_triggered": result.record.as_ref().is_some_and(|r| r.rollback_triggered),
    });
    if result.ok() {
        info!(run_id = %run_id, "{}", result.message);
        tracker.complete_run(&run_id, metadata)?;
    } else {
        error!(run_id = %run_id, "{}", result.message);
        tracker.fail_run_with(&run_id, &result.message, metadata)?;
    }
    alert(home, options, &result);
    Ok(result)
}

/// Resolves what to deploy and runs the deployer. `Err` is a reason to fail the run
/// before anything was sent to the service.
fn run(
    home: &Home,
    options: &DeployJobOptions,
) -> std::result::Result<(String, DeploymentOutcome), String> {
    let config = RecopsConfig::load(home).map_err(|e| e.to_string())?;
    let deployer = Deployer::new(
        DeployOptions {
            service_url: options.service_url.clone().unwrap_or(config.service.url),
            verify: options.verify,
            rollback_on_failure: options.rollback_on_failure,
            admin_token: std::env::var("RECOPS_ADMIN_TOKEN")
                .ok()
                .filter(|t| !t.is_empty()),
            ..DeployOptions::default()
        },
        home.deployment_history(),
        options.clock.clone(),
    )
    .map_err(|e| e.to_string())?;
    let n = options.test_users;
    let users_of = |model_id: &str| -> TestUsers {
        match CfModel::load_id(home, model_id) {
            Ok(m) => TestUsers::sample(&m.user_ids, n),
            Err(e) => {
                warn!(model_id, error = %e, "cannot read the model's users: verification will fail");
                TestUsers {
                    known: Vec::new(),
                    unknown: -1,
                }
            }
        }
    };
    if options.rollback {
        let outcome = deployer.rollback(&users_of).map_err(|e| e.to_string())?;
        let id = outcome
            .record
            .as_ref()
            .map(|r| r.model_id.clone())
            .unwrap_or_default();
        return Ok((id, outcome));
    }
    let registry = Registry::open(home);
    let model_id = match &options.model_id {
        Some(id) => id.clone(),
        None => registry
            .current_best()
            .map_err(|e| e.to_string())?
            .map(|(id, _)| id)
            .ok_or("the registry has no current_best model: run model-training first")?,
    };
    recops_core::validate_name("model_id", &model_id).map_err(|e| e.to_string())?;
    match registry.get(&model_id).map_err(|e| e.to_string())? {
        None => return Err(format!("model {model_id} is not in the registry")),
        Some(e) if e.status == ModelStatus::Archived => {
            return Err(format!("model {model_id} is archived in the registry"));
        }
        Some(_) => {}
    }
    let outcome = deployer
        .deploy(&model_id, &users_of)
        .map_err(|e| e.to_string())?;
    Ok((model_id, outcome))
}

/// Failure and rollback alerts (`pipeline_model_deployment_failed`,
/// `pipeline_model_deployment_rolled_back`).
fn alert(home: &Home, options: &DeployJobOptions, result: &DeployJobResult) {
    let severity = match result.status.as_str() {
        "failed" => Severity::Critical,
        "rolled_back" => match result.record.as_ref().and_then(|r| r.rollback_status) {
            Some(RollbackStatus::Success) => Severity::Warning,
            _ => Severity::Critical,
        },
        _ => return,
    };
    match AlertManager::builder(home)
        .clock(options.clock.clone())
        .build()
    {
        Ok(alerts) => {
            alerts.send_pipeline_alert(PIPELINE, &result.status, &result.message, severity);
        }
        Err(e) => {
            error!(error = %format!("{e:#}"), "alerting is unavailable: the deployment alert was not sent")
        }
    }
}
