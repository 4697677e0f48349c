//! The model-deployment job (spec Component 6, `automation/model_deployment.py`):
//! PipelineLock("model_deployment") -> track -> [`recops_deploy::Deployer`] -> alert.

use recops_alerting::Severity;
use recops_cf_training::CfModel;
use recops_core::{Home, ModelId, RecopsConfig, SharedClock, SystemClock, error_chain};
use recops_deploy::{
    DeployOptions, DeployResult, Deployer, DeploymentAction, DeploymentLog, DeploymentOutcome,
    DeploymentRecord, DeploymentStatus, RollbackStatus, TestUsers,
};
use recops_registry::{DeployedBy, Registry};
use serde::Serialize;
use serde_json::json;
use tracing::warn;

use crate::error::{Error, Result};
use crate::job::{Finish, Job, JobOutcome, JobStatus};

/// The pipeline name (lock, tracker, alerts).
pub const PIPELINE: &str = "model_deployment";

/// Known users verified per model (plus one unknown user for the fallback).
pub const DEFAULT_TEST_USERS: usize = 10;

/// Options of [`deploy_model`].
#[derive(Debug, Clone)]
pub struct DeployJobOptions {
    /// The model to deploy; `None` = the registry's `current_best`.
    pub model_id: Option<ModelId>,
    /// The service (one replica); `None` = every replica of `service.urls` (default
    /// `service.url`) of `config/recops.yaml`.
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
    pub status: JobStatus,
    /// The pipeline name.
    pub pipeline: &'static str,
    /// The run in `logs/pipeline_metrics.db` (none when skipped).
    pub run_id: Option<String>,
    /// The model deployed (or rolled back to).
    pub model_id: Option<ModelId>,
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
        self.status.is_ok()
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
    let outcome = Job::new(home, PIPELINE, options.clock.clone())
        .metadata(json!({"model_id": options.model_id, "rollback": options.rollback, "verify": options.verify}))
        .failure_severity(Severity::Critical)
        .run(|_| {
            let (status, model_id, message, record) = match run(home, options) {
                Ok((model_id, outcome)) => (
                    job_status(outcome.result),
                    model_id,
                    outcome.message,
                    outcome.record,
                ),
                Err(e) => (
                    JobStatus::Failed,
                    options.model_id.clone(),
                    error_chain(&e),
                    None,
                ),
            };
            let metadata = json!({
                "model_id": model_id,
                "result": status,
                "previous_model_id": record.as_ref().and_then(|r| r.previous_model_id.clone()),
                "rollback_triggered": record.as_ref().is_some_and(|r| r.rollback_triggered),
            });
            let severity = alert_severity(status, record.as_ref());
            let mut finish = Finish::success((model_id, record), metadata)
                .status(status)
                .message(message);
            finish.alert = severity;
            Ok(finish)
        })?;
    Ok(match outcome {
        JobOutcome::Skipped(skip, duration_seconds) => DeployJobResult {
            status: JobStatus::Skipped,
            pipeline: PIPELINE,
            run_id: None,
            model_id: None,
            message: skip.message,
            record: None,
            duration_seconds,
        },
        JobOutcome::Ran(ran) => DeployJobResult {
            status: ran.status,
            pipeline: PIPELINE,
            run_id: ran.run_id,
            model_id: ran.output.0,
            message: ran.message,
            record: ran.output.1,
            duration_seconds: ran.duration_seconds,
        },
    })
}

fn job_status(result: DeployResult) -> JobStatus {
    match result {
        DeployResult::Deployed => JobStatus::Deployed,
        DeployResult::Unchanged => JobStatus::Unchanged,
        DeployResult::Failed => JobStatus::Failed,
        DeployResult::RolledBack => JobStatus::RolledBack,
    }
}

/// Resolves what to deploy and runs the deployer. `Err` is a reason to fail the run
/// before anything was sent to the service.
fn run(home: &Home, options: &DeployJobOptions) -> Result<(Option<ModelId>, DeploymentOutcome)> {
    let config = RecopsConfig::load(home)?;
    let deployer = Deployer::new(
        DeployOptions {
            // `--service-url` names one replica; else every replica of `service.urls`.
            service_url: options
                .service_url
                .clone()
                .unwrap_or_else(|| config.service.url.clone()),
            service_urls: match &options.service_url {
                Some(_) => Vec::new(),
                None => config.service.urls(),
            },
            verify: options.verify,
            rollback_on_failure: options.rollback_on_failure,
            admin_token: std::env::var("RECOPS_ADMIN_TOKEN")
                .ok()
                .filter(|t| !t.is_empty()),
            ..DeployOptions::default()
        },
        DeploymentLog::open(home),
        options.clock.clone(),
    )?;
    let n = options.test_users;
    let users_of = |model_id: &ModelId| -> TestUsers {
        match CfModel::load_id(home, model_id) {
            Ok(m) => TestUsers::sample(&m.user_ids, n),
            Err(e) => {
                warn!(model_id = %model_id, error = %error_chain(&e), "cannot read the model's users: verification will fail");
                TestUsers {
                    known: Vec::new(),
                    unknown: -1,
                }
            }
        }
    };
    let registry = Registry::with_clock(home, options.clock.clone());
    // The audit lines of a registry write a killed run left short, also when this run
    // ends up writing nothing.
    registry.complete_audit()?;
    if options.rollback {
        return rollback(home, &registry, &deployer, &users_of, options);
    }
    let (model_id, by) = match &options.model_id {
        Some(id) => (id.clone(), DeployedBy::Operator),
        None => {
            let reg = registry.load()?;
            let best = reg.current_best.clone().ok_or(Error::NoCurrentBest)?;
            if let Some(d) = &reg.deployed
                && d.champion.as_ref() == Some(&best)
            {
                let message = format!(
                    "no new champion since the last deployment decision ({} by {} at {}); {} stays deployed",
                    d.model_id, d.action, d.deployed_at, d.model_id
                );
                return Ok((Some(d.model_id.clone()), unchanged(message)));
            }
            if let Some(f) = reg
                .models
                .get(&best)
                .and_then(|m| m.verification_failed.as_ref())
            {
                let message = format!(
                    "current_best {best} failed verification at {} ({}); it is not redeployed automatically (deploy it with --model-id once fixed)",
                    f.at, f.reason
                );
                warn!(model_id = %best, "{message}");
                return Ok((Some(best), unchanged(message)));
            }
            (best, DeployedBy::Scheduled)
        }
    };
    registry.servable(&model_id)?;
    recops_core::faults::point("deploy.decided");
    let mut outcome = deployer.deploy(&model_id, &users_of)?;
    if outcome.result == DeployResult::Unchanged {
        outcome.record = complete_interrupted(
            home,
            &registry,
            &model_id,
            DeploymentAction::Deploy,
            options,
        )?;
    }
    record_outcome(&registry, &model_id, by, &outcome)?;
    Ok((Some(model_id), outcome))
}

/// The service already serves `model_id` but the history's newest successful
/// deployment is another model: a deployment killed after its reload (the service's
/// reload hook recorded `deployed`, the history record was never written), or a
/// direct `/reload_model`. The missing record is written, with the model deployed
/// before it (from the registry audit) as its predecessor, so a later rollback follows
/// the real timeline. Nothing is written when nothing was deployed before.
fn complete_interrupted(
    home: &Home,
    registry: &Registry,
    model_id: &ModelId,
    action: DeploymentAction,
    options: &DeployJobOptions,
) -> Result<Option<DeploymentRecord>> {
    let history = DeploymentLog::open(home).load()?;
    if history.last_success().map(|r| &r.model_id) == Some(model_id) {
        return Ok(None);
    }
    let Some(previous) = registry
        .audit()?
        .iter()
        .rev()
        .map(|r| r.deployed.as_deref())
        .find(|d| *d != Some(model_id.as_str()))
        .flatten()
        .and_then(|d| ModelId::new(d).ok())
    else {
        return Ok(None);
    };
    let record = DeploymentRecord {
        timestamp: recops_core::format_timestamp(options.clock.now()),
        model_id: model_id.clone(),
        previous_model_id: Some(previous.clone()),
        status: DeploymentStatus::Success,
        verification: None,
        rollback_triggered: false,
        rollback_status: None,
        rollback_verification: None,
        action,
        reason: Some(match action {
            DeploymentAction::Deploy => format!(
                "already live after {previous} without a deployment record: an interrupted \
                 deployment or a direct reload, recorded"
            ),
            DeploymentAction::Rollback => format!(
                "rolled back from {previous} by a rollback interrupted before its record, \
                 recorded"
            ),
        }),
        duration_seconds: 0.0,
    };
    DeploymentLog::open(home).append(record.clone())?;
    warn!(%model_id, previous = %previous, "recorded a deployment that had no history record");
    Ok(Some(record))
}

/// The rollback intent (`logs/rollback_intent.json`, or a row of
/// `deployment_intents` in PostgreSQL): written before `--rollback` changes anything and
/// removed once its outcome is recorded. A rerun that finds it knows whether the
/// killed rollback had already taken effect (the deployed model moved off `from`):
/// then it completes the record instead of rolling back once more, so a rollback
/// that is run again after a crash ends where one uninterrupted run would.
#[derive(Debug, Serialize, serde::Deserialize)]
struct RollbackIntent {
    /// The deployed model when the rollback started.
    from: Option<ModelId>,
    /// RFC 3339 start time.
    started_at: String,
}

/// `model-deployment --rollback`, completing an interrupted one first (see
/// [`RollbackIntent`]).
fn rollback(
    home: &Home,
    registry: &Registry,
    deployer: &Deployer,
    users_of: &dyn Fn(&ModelId) -> TestUsers,
    options: &DeployJobOptions,
) -> Result<(Option<ModelId>, DeploymentOutcome)> {
    let log = DeploymentLog::open(home);
    let deployed = registry.deployed()?.map(|d| d.model_id);
    let pending = log
        .intent()?
        .and_then(|v| serde_json::from_value::<RollbackIntent>(v).ok());
    if let Some(intent) = pending
        && let Some(now) = deployed
            .as_ref()
            .filter(|d| intent.from.as_ref() != Some(*d))
    {
        let record =
            complete_interrupted(home, registry, now, DeploymentAction::Rollback, options)?;
        let message = format!(
            "the rollback started at {} had already taken effect: {now} serves; recorded, \
             nothing rolled back again",
            intent.started_at
        );
        registry.record_deployment(now, DeployedBy::Rollback, &message)?;
        log.set_intent(None)?;
        warn!(model_id = %now, "{message}");
        let outcome = DeploymentOutcome {
            result: DeployResult::Deployed,
            record,
            message,
        };
        return Ok((Some(now.clone()), outcome));
    }
    let intent = RollbackIntent {
        from: deployed,
        started_at: recops_core::format_timestamp(options.clock.now()),
    };
    log.set_intent(Some(&serde_json::to_value(&intent).unwrap_or_default()))?;
    let outcome = deployer.rollback_deployed(registry, users_of)?;
    log.set_intent(None)?;
    let id = outcome.record.as_ref().map(|r| r.model_id.clone());
    Ok((id, outcome))
}

fn unchanged(message: String) -> DeploymentOutcome {
    DeploymentOutcome {
        result: DeployResult::Unchanged,
        record: None,
        message,
    }
}

/// Writes the desired serving state after a deployment: the deployed model (also when
/// it was live already), or, when verification failed, the mark on the model and the
/// model rolled back to.
fn record_outcome(
    registry: &Registry,
    model_id: &ModelId,
    by: DeployedBy,
    outcome: &DeploymentOutcome,
) -> Result<()> {
    match outcome.result {
        DeployResult::Deployed | DeployResult::Unchanged => {
            registry.record_deployment(model_id, by, &outcome.message)?;
        }
        DeployResult::RolledBack | DeployResult::Failed => {
            let Some(record) = &outcome.record else {
                return Ok(());
            };
            if record.verification.is_some() {
                registry.mark_verification_failed(
                    model_id,
                    record.reason.as_deref().unwrap_or("verification failed"),
                )?;
            }
            if record.rollback_status == Some(RollbackStatus::Success)
                && let Some(prev) = &record.previous_model_id
                && registry.servable(prev).is_ok()
            {
                registry.record_deployment(
                    prev,
                    DeployedBy::Rollback,
                    &format!("automatic rollback: {model_id} failed verification"),
                )?;
            }
        }
    }
    Ok(())
}

/// The severity of the failure and rollback alerts (`pipeline_model_deployment_failed`,
/// `pipeline_model_deployment_rolled_back`); none for the other statuses.
fn alert_severity(status: JobStatus, record: Option<&DeploymentRecord>) -> Option<Severity> {
    match status {
        JobStatus::Failed => Some(Severity::Critical),
        JobStatus::RolledBack => match record.and_then(|r| r.rollback_status) {
            Some(RollbackStatus::Success) => Some(Severity::Warning),
            _ => Some(Severity::Critical),
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use recops_core::FixedClock;
    use recops_tracking::PipelineLock;

    use super::*;

    fn options() -> DeployJobOptions {
        DeployJobOptions {
            // Nothing listens there: the run must not get that far.
            service_url: Some("http://127.0.0.1:9".into()),
            clock: FixedClock::new(chrono::DateTime::UNIX_EPOCH).shared(),
            ..DeployJobOptions::default()
        }
    }

    #[test]
    fn a_second_deployment_while_one_runs_is_refused_and_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::new(dir.path());
        crate::write_default_configs(&home).unwrap();
        let held = PipelineLock::acquire(&home, PIPELINE).unwrap();
        assert!(held.acquired());
        let r = deploy_model(&home, &options()).unwrap();
        assert_eq!(r.status, JobStatus::Skipped);
        assert!(
            r.message.contains("another model_deployment run"),
            "{}",
            r.message
        );
        assert!(!home.deployment_history().exists());
    }

    #[test]
    fn a_registry_that_is_not_json_is_a_clear_error_and_is_not_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::new(dir.path());
        crate::write_default_configs(&home).unwrap();
        std::fs::create_dir_all(home.registry().parent().unwrap()).unwrap();
        std::fs::write(home.registry(), b"not json").unwrap();
        let r = deploy_model(&home, &options()).unwrap();
        assert_eq!(r.status, JobStatus::Failed);
        assert!(r.message.contains("invalid registry"), "{}", r.message);
        assert_eq!(std::fs::read(home.registry()).unwrap(), b"not json");
    }
}
