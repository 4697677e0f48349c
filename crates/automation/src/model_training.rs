//! The model-training job (spec Component 2, `automation/model_training.py`):
//! `train_models(model_types, force_retrain, auto_deploy)`.
//!
//! Workflow: take `PipelineLock("model_training")` -> record a pipeline run -> load the
//! training data -> per model type: skip when the data version equals that of the last
//! registered model of the type (unless `force_retrain`), train (recording the run and
//! every iteration in `TrainingTracker`), register it when its recall@10 beats the
//! popularity baseline and promote the best ndcg@10 among active models, raise a
//! critical `model_degradation` alert when its ndcg@10 is more than 10 % below the
//! current best's -> complete or fail the pipeline run -> completion or failure alert.
//! `auto_deploy` (in [`train_models`]) deploys the new `current_best` with the
//! [model-deployment job](crate::model_deployment) once training is done.

use std::collections::BTreeMap;

use recops_alerting::{Severity, Threshold};
use recops_cf_training::{
    CfModel, IterationReport, ModelType, TrainConfig, TrainData, TrainOptions, TrainOutcome,
    TrainingLog, TuningResult, train,
};
use recops_core::{Home, ModelId, SharedClock, SystemClock, error_chain};
use recops_data::Split;
use recops_registry::{NewModel, Registry, RegistryFile};
use recops_tracking::{
    ChampionDecision, ChampionRecord, IterationRecord, NewTrainingRun, RegistryStatus,
    TrainingOutcome, TrainingTracker,
};
use serde::Serialize;
use serde_json::json;

use crate::error::{Error, Result};
use crate::job::{Finish, Job, JobAlerts, JobOutcome, JobStatus};

/// Pipeline name (lock, pipeline runs, alerts).
pub const PIPELINE: &str = "model_training";
/// A new model more than this fraction below the current best's ndcg@10 raises the
/// critical `model_degradation` alert (the spec's `alerts.model_degradation.threshold`).
pub const DEGRADATION_THRESHOLD: f64 = 0.1;

/// The relative ndcg@10 drop that raises `model_degradation`: the threshold of that
/// rule in `config/alerts_config.yaml`, else [`DEGRADATION_THRESHOLD`].
pub fn degradation_threshold(alerts: &JobAlerts) -> f64 {
    match alerts
        .manager()
        .and_then(|m| m.config().alerts.get("model_degradation"))
        .map(|r| r.threshold)
    {
        Some(Threshold::Number(t)) if t.is_finite() && t >= 0.0 => t,
        _ => DEGRADATION_THRESHOLD,
    }
}

/// Where the job's training data comes from: the split and its data version.
pub trait DataSource {
    /// Loads the data of `home`.
    fn load(&self, home: &Home) -> Result<(Split, String)>;
}

/// The home's processed data: `data/processed/interactions.parquet` split by
/// [`recops_data::TrainingData::load`], with its data version.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessedData;

impl DataSource for ProcessedData {
    fn load(&self, home: &Home) -> Result<(Split, String)> {
        let data = recops_data::TrainingData::load(home)?;
        Ok((data.split, data.data_version))
    }
}

/// The spec's `train_models`: [`train_models_with`] on the home's processed data with
/// the options' clock; alerts go through [`JobAlerts`] (`config/alerts_config.yaml`, or
/// the alert log when that config is unusable).
pub fn train_models(home: &Home, options: &TrainModelsOptions) -> Result<TrainModelsReport> {
    let ctx = JobContext {
        data: &ProcessedData,
        clock: options.clock.clone(),
    };
    let mut report = train_models_with(home, options, &ctx)?;
    // `auto_deploy`: once training has released its lock, deploy the new current_best.
    if options.auto_deploy && report.ok() && report.current_best.is_some() {
        let deployment = crate::model_deployment::deploy_model(
            home,
            &crate::model_deployment::DeployJobOptions {
                clock: options.clock.clone(),
                ..Default::default()
            },
        )?;
        report.message = format!("{}; deployment: {}", report.message, deployment.message);
        report.deployment = Some(deployment);
    }
    Ok(report)
}

/// What to do.
#[derive(Debug, Clone)]
pub struct TrainModelsOptions {
    /// Types to train, in order; empty = both (`als`, `bpr`).
    pub model_types: Vec<ModelType>,
    /// Train even when the data has not changed since the last registered model.
    pub force_retrain: bool,
    /// Deploy the new best model afterwards. The `model-training` binary turns it on
    /// unless `--no-auto-deploy` (the spec's default); the library default stays off
    /// for in-process callers that start their service later (`recops demo`).
    pub auto_deploy: bool,
    /// Continue interrupted runs from their newest checkpoints.
    pub resume: bool,
    /// Tune the hyperparameters on the validation split first ([`recops_cf_training::tune`]),
    /// also when the config's `tuning.enabled` is false.
    pub tune: bool,
    /// The tuning budget per model type, seconds (default: the config's
    /// `tuning.budget_seconds`, 300).
    pub tune_budget_seconds: Option<f64>,
    /// Draw exactly this many tuning configurations instead of deriving the count from
    /// the budget (default: the config's `tuning.trials`, else derived); a run's
    /// `tuning.planned_trials` here repeats its search.
    pub tune_trials: Option<usize>,
    /// The clock (run times, registry stamps, alerts) of [`train_models`].
    pub clock: SharedClock,
}

impl Default for TrainModelsOptions {
    fn default() -> Self {
        TrainModelsOptions {
            model_types: Vec::new(),
            force_retrain: false,
            auto_deploy: false,
            resume: false,
            tune: false,
            tune_budget_seconds: None,
            tune_trials: None,
            clock: SystemClock::shared(),
        }
    }
}

/// How one model type ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelOutcome {
    /// Trained, beat the strongest popularity baseline, registered as active.
    Registered,
    /// Trained, did not beat the strongest popularity baseline on ndcg@10: registered
    /// as `rejected` with its numbers (never champion).
    Rejected,
    /// Not trained: the data has not changed since the last registered model.
    Skipped,
    /// Training failed.
    Failed,
}

impl ModelOutcome {
    /// The JSON spelling (`rejected`).
    pub fn as_str(self) -> &'static str {
        match self {
            ModelOutcome::Registered => "registered",
            ModelOutcome::Rejected => "rejected",
            ModelOutcome::Skipped => "skipped",
            ModelOutcome::Failed => "failed",
        }
    }
}

impl std::fmt::Display for ModelOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// Outcome of one model type.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelReport {
    /// `als` or `bpr`.
    pub model_type: ModelType,
    /// Registered, rejected (did not beat the strongest baseline), skipped or failed.
    pub status: ModelOutcome,
    /// Why (skip reason, registration decision, error).
    pub message: String,
    /// The model id, when a model was trained.
    pub model_id: Option<ModelId>,
    /// The training run id in `training_metrics.db`.
    pub training_run_id: Option<String>,
    /// Test metrics.
    pub metrics: BTreeMap<String, f64>,
    /// Metrics of the strongest popularity baseline (the gate's bar).
    pub baseline: BTreeMap<String, f64>,
    /// Its name (`popularity`, `popularity_decay_7d`, ...).
    pub baseline_name: Option<String>,
    /// The champion rule: the current champion re-evaluated on this model's split.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub champion: Option<ChampionComparison>,
    /// The validation-only search that chose the hyperparameters, when tuned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tuning: Option<TuningResult>,
    /// recall@10 improvement over the baseline, percent.
    pub improvement_pct: Option<f64>,
    /// Training seconds.
    pub training_time_seconds: Option<f64>,
    /// Iterations run.
    pub iterations_run: Option<usize>,
    /// True when early stopping ended the run.
    pub stopped_early: Option<bool>,
    /// True when the model's ndcg@10 is more than 10 % below the current best's.
    pub degraded: bool,
}

impl ModelReport {
    fn new(model_type: ModelType, status: ModelOutcome, message: String) -> Self {
        ModelReport {
            model_type,
            status,
            message,
            model_id: None,
            training_run_id: None,
            metrics: BTreeMap::new(),
            baseline: BTreeMap::new(),
            baseline_name: None,
            champion: None,
            tuning: None,
            improvement_pct: None,
            training_time_seconds: None,
            iterations_run: None,
            stopped_early: None,
            degraded: false,
        }
    }
}

/// The job's result (printed by `model-training --json`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrainModelsReport {
    /// `success`, `failed` or `skipped` (another run holds the lock).
    pub status: JobStatus,
    /// The pipeline run id.
    pub run_id: Option<String>,
    /// Version of the training data.
    pub data_version: Option<String>,
    /// One entry per model type.
    pub models: Vec<ModelReport>,
    /// The registry's current_best after the run.
    pub current_best: Option<ModelId>,
    /// A one-line summary.
    pub message: String,
    /// The deployment of `current_best` when `auto_deploy` was asked (by
    /// [`train_models`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deployment: Option<crate::model_deployment::DeployJobResult>,
}

impl TrainModelsReport {
    /// True unless a model failed, the data could not be loaded, or the automatic
    /// deployment failed.
    pub fn ok(&self) -> bool {
        self.status.is_ok() && self.deployment.as_ref().is_none_or(|d| d.ok())
    }
}

/// Everything the job talks to besides the home and its alerts.
pub struct JobContext<'a> {
    /// The training data.
    pub data: &'a dyn DataSource,
    /// Time source.
    pub clock: SharedClock,
}

impl std::fmt::Debug for JobContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobContext").finish_non_exhaustive()
    }
}

/// Runs the job as a [`Job`] with the given data source (see the module docs).
pub fn train_models_with(
    home: &Home,
    options: &TrainModelsOptions,
    ctx: &JobContext<'_>,
) -> Result<TrainModelsReport> {
    let types = if options.model_types.is_empty() {
        ModelType::all().to_vec()
    } else {
        options.model_types.clone()
    };
    let outcome = Job::new(home, PIPELINE, ctx.clock.clone())
        .metadata(json!({
            "model_types": types.iter().map(|t| t.as_str()).collect::<Vec<_>>(),
            "force_retrain": options.force_retrain,
            "resume": options.resume,
        }))
        .failure_severity(Severity::Critical)
        .run(|run| {
            let mut report = run_job(home, options, &types, ctx, run.alerts)?;
            let metadata = json!({ "models": report.models, "current_best": report.current_best });
            let failed = report
                .models
                .iter()
                .filter(|m| m.status == ModelOutcome::Failed)
                .map(|m| format!("{}: {}", m.model_type, m.message))
                .collect::<Vec<_>>();
            if failed.is_empty() {
                let message = report.message.clone();
                Ok(Finish::success(report, metadata)
                    .message(message)
                    .alert(Severity::Info))
            } else {
                report.status = JobStatus::Failed;
                Ok(Finish::success(report, metadata)
                    .status(JobStatus::Failed)
                    .message(failed.join("; "))
                    .alert(Severity::Critical))
            }
        });
    match outcome {
        Ok(JobOutcome::Ran(ran)) => {
            let mut report = ran.output;
            report.run_id = ran.run_id;
            Ok(report)
        }
        Ok(JobOutcome::Skipped(skip, _)) => Ok(TrainModelsReport::empty(
            JobStatus::Skipped,
            None,
            skip.message,
        )),
        // Recorded and alerted by the runner; reported, not raised.
        Err(Error::JobFailed { run_id, source, .. }) => Ok(TrainModelsReport::empty(
            JobStatus::Failed,
            run_id,
            error_chain(&*source),
        )),
        Err(e) => Err(e),
    }
}

impl TrainModelsReport {
    fn empty(status: JobStatus, run_id: Option<String>, message: String) -> Self {
        TrainModelsReport {
            status,
            run_id,
            data_version: None,
            models: Vec::new(),
            current_best: None,
            deployment: None,
            message,
        }
    }
}

fn run_job(
    home: &Home,
    options: &TrainModelsOptions,
    types: &[ModelType],
    ctx: &JobContext<'_>,
    alerts: &JobAlerts,
) -> Result<TrainModelsReport> {
    let (split, data_version) = ctx.data.load(home)?;
    // Under the job's lock: model folders left half-written by a killed run go.
    let partial = recops_cf_training::clear_partial_models(home);
    if partial > 0 {
        tracing::warn!(
            partial,
            "removed model folders a killed training run left half-written"
        );
    }
    let registry = Registry::with_clock(home, ctx.clock.clone());
    // ... the audit lines of a registry write it interrupted (also when this run
    // trains nothing) ...
    registry.complete_audit()?;
    // ... and models moved into place by a run killed before registering them.
    let known = registry.load()?;
    let unregistered =
        recops_cf_training::clear_unregistered_models(home, |id| known.models.contains_key(id));
    if unregistered > 0 {
        tracing::warn!(
            unregistered,
            "removed model folders a killed training run left unregistered"
        );
    }
    let training = TrainingTracker::open_home(home, ctx.clock.clone())?;
    let mut models = Vec::new();
    for &mt in types {
        let run = ModelRun {
            home,
            options,
            split: &split,
            data_version: &data_version,
            registry: &registry,
            training: &training,
            ctx,
            alerts,
        };
        let report = match run.train_one(mt) {
            Ok(r) => r,
            Err(e) => ModelReport::new(mt, ModelOutcome::Failed, error_chain(&e)),
        };
        models.push(report);
    }
    let current_best = registry.load()?.current_best;
    let summary = models
        .iter()
        .map(|m| format!("{}: {}", m.model_type, m.status))
        .collect::<Vec<_>>()
        .join(", ");
    Ok(TrainModelsReport {
        status: JobStatus::Success,
        run_id: None,
        data_version: Some(data_version),
        models,
        current_best: current_best.clone(),
        deployment: None,
        message: format!(
            "{summary}; current_best {}",
            current_best.as_deref().unwrap_or("none")
        ),
    })
}

/// What training one model type needs, shared by its phases.
struct ModelRun<'a> {
    home: &'a Home,
    options: &'a TrainModelsOptions,
    split: &'a Split,
    data_version: &'a str,
    registry: &'a Registry,
    training: &'a TrainingTracker,
    ctx: &'a JobContext<'a>,
    alerts: &'a JobAlerts,
}

impl ModelRun<'_> {
    /// One model type: skip when the data is unchanged -> warm start -> fit (tracked)
    /// -> degradation check -> register or reject.
    fn train_one(&self, mt: ModelType) -> Result<ModelReport> {
        let reg = self.registry.load()?;
        if let Some(skip) = self.unchanged_data(&reg, mt) {
            return Ok(skip);
        }
        let config = TrainConfig::load(self.home, mt)?;
        let tuned = if self.options.tune || config.tuning().enabled {
            tune_on_validation(
                self.home,
                self.options,
                &config,
                self.split,
                self.data_version,
                self.training,
                self.ctx,
            )?
        } else {
            None
        };
        let config = match &tuned {
            Some(r) => config.with_tuned(r),
            None => config,
        };
        let warm = self.warm_start(&reg, mt, &config);
        let run_id = self.training.start_run(&NewTrainingRun {
            model_type: mt.to_string(),
            hyperparameters: config.hyperparameters(),
            data_version: Some(self.data_version.to_owned()),
            git_commit: Some(env!("RECOPS_GIT_COMMIT").to_owned()),
        })?;
        let outcome = match self.fit(&config, warm.as_ref(), tuned.as_ref(), &run_id) {
            Ok(o) => o,
            Err(e) => {
                if let Err(te) = self.training.fail_run(&run_id) {
                    tracing::warn!(error = %error_chain(&te), "cannot mark the training run failed");
                }
                let mut r = ModelReport::new(mt, ModelOutcome::Failed, error_chain(&e));
                r.training_run_id = Some(run_id);
                return Ok(r);
            }
        };
        let mut report = self.record(mt, &run_id, &outcome)?;
        report.tuning = tuned;
        self.check_degradation(&reg, &outcome, &mut report);
        self.register_or_reject(&reg, mt, &run_id, &outcome, &mut report)?;
        Ok(report)
    }

    /// The skip report when the data has not changed since the last registered model
    /// of the type (and `--force` was not given).
    fn unchanged_data(&self, reg: &RegistryFile, mt: ModelType) -> Option<ModelReport> {
        let dv = self.data_version;
        match reg.latest_registered(mt) {
            Some((id, entry)) if !self.options.force_retrain && entry.data_version == dv => {
                Some(ModelReport::new(
                    mt,
                    ModelOutcome::Skipped,
                    format!("data version {dv} unchanged since {id}; use --force to retrain"),
                ))
            }
            _ => None,
        }
    }

    /// The newest active model of the type, when the config asks for a warm start.
    fn warm_start(
        &self,
        reg: &RegistryFile,
        mt: ModelType,
        config: &TrainConfig,
    ) -> Option<CfModel> {
        if !config.training().warm_start {
            return None;
        }
        let (id, _) = reg.latest_active(mt)?;
        CfModel::load_id(self.home, id)
            .inspect_err(|e| {
                tracing::warn!(model_id = %id, error = %error_chain(e), "cannot load the model to warm start from");
            })
            .ok()
    }

    /// Trains, recording every iteration in the training run `run_id`.
    fn fit(
        &self,
        config: &TrainConfig,
        warm: Option<&CfModel>,
        tuned: Option<&TuningResult>,
        run_id: &str,
    ) -> recops_cf_training::Result<TrainOutcome> {
        let mut on_iteration = |r: &IterationReport| {
            let rec = IterationRecord {
                iteration: r.iteration as u32,
                loss: Some(r.loss),
                validation_recall: r.validation_recall,
                validation_ndcg: r.validation_ndcg,
                wall_time_seconds: r.wall_time_seconds,
            };
            if let Err(e) = self.training.log_iteration(run_id, &rec) {
                tracing::warn!(error = %error_chain(&e), "cannot record a training iteration");
            }
        };
        train(
            self.home,
            config,
            TrainData {
                split: self.split,
                data_version: self.data_version,
            },
            TrainOptions {
                resume: self.options.resume,
                warm_start: warm,
                clock: self.ctx.clock.clone(),
                on_iteration: Some(&mut on_iteration),
                interrupt_after: None,
                tuning: tuned,
            },
        )
    }

    /// Completes the training run and starts the model's report (not registered yet).
    fn record(&self, mt: ModelType, run_id: &str, outcome: &TrainOutcome) -> Result<ModelReport> {
        let meta = &outcome.model.meta;
        self.training.complete_run(
            run_id,
            &TrainingOutcome {
                recall_at_10: outcome.metrics.recall(10),
                ndcg_at_10: outcome.metrics.ndcg(10),
                coverage: outcome.metrics.coverage(10),
                baseline_recall_at_10: outcome.baseline.recall(10),
                improvement_pct: outcome.improvement_pct,
                training_time_seconds: outcome.training_time_seconds,
                artifacts_path: Some(format!("artifacts/cf/{}", meta.model_id)),
            },
        )?;
        let mut report = ModelReport::new(mt, ModelOutcome::Rejected, String::new());
        report.model_id = Some(meta.model_id.clone());
        report.training_run_id = Some(run_id.to_owned());
        report.metrics = meta.metrics.clone();
        report.baseline = meta.baseline.clone();
        report.baseline_name = Some(outcome.baseline_name.clone());
        report.improvement_pct = Some(outcome.improvement_pct);
        report.training_time_seconds = Some(outcome.training_time_seconds);
        report.iterations_run = Some(meta.training.iterations_run);
        report.stopped_early = Some(outcome.stopped_early);
        Ok(report)
    }

    /// The critical `model_degradation` alert when the new model's ndcg@10 is more than
    /// the threshold below the current best's (whatever its type).
    fn check_degradation(
        &self,
        reg: &RegistryFile,
        outcome: &TrainOutcome,
        report: &mut ModelReport,
    ) {
        let Some((best_id, best)) = reg.current() else {
            return;
        };
        let model_id = &outcome.model.meta.model_id;
        let new_ndcg = outcome.metrics.ndcg(10);
        let best_ndcg = best.score();
        let threshold = degradation_threshold(self.alerts);
        if best_ndcg.is_finite() && new_ndcg < best_ndcg * (1.0 - threshold) {
            report.degraded = true;
            self.alerts.send(
                "model_degradation",
                &format!(
                    "model_degradation triggered: {model_id} ndcg@10={new_ndcg:.4} is {:.1}% below current best {best_id} ndcg@10={best_ndcg:.4} (threshold {:.0}%)",
                    (1.0 - new_ndcg / best_ndcg) * 100.0,
                    threshold * 100.0
                ),
                Severity::Critical,
            );
        }
    }

    /// Registers a model that beats the strongest popularity baseline on ndcg@10 and
    /// applies the champion rule (the champion re-evaluated on this split); otherwise
    /// registers it as `rejected` with its numbers and sends `<type>_rejected`.
    fn register_or_reject(
        &self,
        before: &RegistryFile,
        mt: ModelType,
        run_id: &str,
        outcome: &TrainOutcome,
        report: &mut ModelReport,
    ) -> Result<()> {
        let meta = &outcome.model.meta;
        let model_id = &meta.model_id;
        let log = TrainingLog::open(self.home, mt, self.ctx.clock.clone())?;
        let new_ndcg = outcome.metrics.ndcg(10);
        let base_name = &outcome.baseline_name;
        let base = outcome.baseline.ndcg(10);
        let new_model = NewModel {
            model_id: model_id.clone(),
            model_type: mt,
            metrics: meta.metrics.clone(),
            baseline: meta.baseline.clone(),
            data_version: self.data_version.to_owned(),
        };
        if outcome.beats_baseline {
            let reason = format!(
                "ndcg@10 {new_ndcg:.4} beats the strongest popularity baseline {base_name} {base:.4} (recall@10 {:+.1}%)",
                outcome.improvement_pct
            );
            // The champion rule is decided first, then the registration and its
            // outcome are one registry write (a crash leaves neither or both).
            let comparison =
                champion_rule(self.home, before, model_id, new_ndcg, self.split, &log)?;
            let (winner, promote_reason) = champion_promotion(&comparison, model_id);
            self.registry
                .register_with_champion(&new_model, &reason, &winner, &promote_reason)?;
            recops_cf_training::mark_registered(self.home, model_id)?;
            self.training
                .attach_registry(run_id, model_id, RegistryStatus::Active)?;
            log.info(&format!("Registered to registry: {model_id}"));
            let record = ChampionRecord {
                run_id: run_id.to_owned(),
                model_id: model_id.to_string(),
                compared_at: String::new(),
                data_version: Some(self.data_version.to_owned()),
                champion_id: comparison.champion_id.as_ref().map(ToString::to_string),
                champion_ndcg_at_10: comparison.champion_ndcg_at_10,
                champion_stored_ndcg_at_10: comparison.champion_stored_ndcg_at_10,
                new_ndcg_at_10: comparison.new_ndcg_at_10,
                decision: if comparison.promoted {
                    ChampionDecision::Promoted
                } else {
                    ChampionDecision::Kept
                },
                summary: comparison.summary.clone(),
            };
            if let Err(e) = self.training.record_champion_comparison(&record) {
                log.warning(&format!(
                    "Cannot record the champion comparison in training_metrics.db ({})",
                    error_chain(&e)
                ));
            }
            report.status = ModelOutcome::Registered;
            report.message = format!("{reason}; {}", comparison.summary);
            report.champion = Some(comparison);
        } else {
            let reason = format!(
                "rejected: ndcg@10 {new_ndcg:.4} does not beat the strongest popularity baseline {base_name} {base:.4}"
            );
            self.registry.reject(&new_model, &reason)?;
            recops_cf_training::mark_registered(self.home, model_id)?;
            self.training
                .attach_registry(run_id, model_id, RegistryStatus::Failed)?;
            log.warning(&format!("Rejected: {model_id} ({reason})"));
            self.alerts.send(
                &format!("{mt}_rejected"),
                &format!("{model_id} {reason}"),
                Severity::Warning,
            );
            report.message = reason;
        }
        Ok(())
    }
}

/// Runs the validation-only search for `config`: every trial is a completed run of
/// type `<type>_tuning` in `training_metrics.db` (its metrics are validation metrics),
/// every trial and the choice a line of the training log. A search that cannot run
/// (no validation hold-out) is logged and the config is trained as it is.
fn tune_on_validation(
    home: &Home,
    options: &TrainModelsOptions,
    config: &TrainConfig,
    split: &Split,
    data_version: &str,
    training: &TrainingTracker,
    ctx: &JobContext<'_>,
) -> Result<Option<TuningResult>> {
    let mt = config.model_type();
    let log = TrainingLog::open(home, mt, ctx.clock.clone())?;
    log.info(&format!(
        "Tuning {} on the validation split (budget {}s, seed {})",
        mt.upper(),
        options
            .tune_budget_seconds
            .unwrap_or(config.tuning().plan(mt).budget_seconds),
        config.training().seed
    ));
    let mut on_trial = |t: &recops_cf_training::Trial| {
        let params = serde_json::to_value(t.params).unwrap_or_default();
        log.info(&format!(
            "Tuning trial {} {}: {params} iterations={} best_iteration={} validation ndcg@10={:.4}",
            t.trial,
            if t.reference {
                "reference (the configured defaults)".to_owned()
            } else {
                format!("rung {}", t.rung)
            },
            t.iterations_run,
            t.best_iteration,
            t.validation_ndcg
        ));
        let record = training
            .start_run(&NewTrainingRun {
                model_type: format!("{mt}_tuning"),
                hyperparameters: json!({
                    "trial": t.trial,
                    "rung": t.rung,
                    "reference": t.reference,
                    "params": params,
                    "iterations_run": t.iterations_run,
                    "best_iteration": t.best_iteration,
                    "metrics_on": "validation",
                }),
                data_version: Some(data_version.to_owned()),
                git_commit: Some(env!("RECOPS_GIT_COMMIT").to_owned()),
            })
            .and_then(|run_id| {
                training.complete_run(
                    &run_id,
                    &TrainingOutcome {
                        recall_at_10: t.validation_recall,
                        ndcg_at_10: if t.validation_ndcg.is_finite() {
                            t.validation_ndcg
                        } else {
                            0.0
                        },
                        coverage: 0.0,
                        baseline_recall_at_10: 0.0,
                        improvement_pct: 0.0,
                        training_time_seconds: t.seconds,
                        artifacts_path: None,
                    },
                )
            });
        if let Err(e) = record {
            tracing::warn!(error = %error_chain(&e), "cannot record a tuning trial");
        }
    };
    let tune_options = recops_cf_training::TuneOptions {
        budget_seconds: options.tune_budget_seconds,
        trials: options.tune_trials,
    };
    match recops_cf_training::tune(config, split, &tune_options, &mut on_trial) {
        Ok(r) => {
            log.info(&format!(
                "Tuning plan: {} configurations ({}); repeat with --trials {}",
                r.planned_trials,
                if r.trials_from_budget {
                    "derived from the budget and the reference trial's cost"
                } else {
                    "given"
                },
                r.planned_trials
            ));
            log.info(&format!(
                "Tuning chose {}{} iterations={} (validation ndcg@10={:.4}, configured defaults {}; {} trials in {:.1}s{})",
                serde_json::to_value(r.chosen).unwrap_or_default(),
                if r.chose_defaults { " (the configured defaults)" } else { "" },
                r.iterations,
                r.validation_ndcg,
                r.default_validation_ndcg
                    .map_or("diverged".to_owned(), |v| format!("{v:.4}")),
                r.trials_run,
                r.seconds,
                if r.budget_exhausted { ", budget exhausted" } else { "" }
            ));
            Ok(Some(r))
        }
        Err(e) => {
            log.warning(&format!(
                "Tuning failed ({}); training with the configured hyperparameters",
                error_chain(&e)
            ));
            Ok(None)
        }
    }
}

/// The champion rule's comparison of a new model with the current champion, both on
/// the new model's evaluation split.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChampionComparison {
    /// The champion before the comparison (none: the new model is the first).
    pub champion_id: Option<ModelId>,
    /// The champion's ndcg@10 re-evaluated on the new model's split (none when there is
    /// no champion or its files cannot be read).
    pub champion_ndcg_at_10: Option<f64>,
    /// The champion's stored ndcg@10 (from its own, older split), for the record.
    pub champion_stored_ndcg_at_10: Option<f64>,
    /// Users of the split the champion knows, and the split's users.
    pub champion_users_known: Option<(usize, usize)>,
    /// Items of the split the champion knows, and the split's items.
    pub champion_items_known: Option<(usize, usize)>,
    /// The new model's ndcg@10.
    pub new_ndcg_at_10: f64,
    /// True when the new model became `current_best`.
    pub promoted: bool,
    /// One line with the numbers (also in the training log and the registry audit).
    pub summary: String,
}

/// The model the champion rule makes `current_best` and the reason for the audit.
fn champion_promotion(cmp: &ChampionComparison, new_id: &ModelId) -> (ModelId, String) {
    match (&cmp.champion_id, cmp.promoted) {
        (None, _) => (new_id.clone(), cmp.summary.clone()),
        (Some(champ), promoted) => (
            if promoted {
                new_id.clone()
            } else {
                champ.clone()
            },
            format!("champion rule: {}", cmp.summary),
        ),
    }
}

/// Re-evaluates the current champion on `split`; `new_id` is to be promoted only when
/// its ndcg@10 is strictly higher, else the champion is confirmed
/// ([`champion_promotion`]); the numbers go to the log and (as the promotion's reason)
/// to the registry audit.
fn champion_rule(
    home: &Home,
    before: &recops_registry::RegistryFile,
    new_id: &ModelId,
    new_ndcg: f64,
    split: &Split,
    log: &TrainingLog,
) -> Result<ChampionComparison> {
    let mut cmp = ChampionComparison {
        champion_id: None,
        champion_ndcg_at_10: None,
        champion_stored_ndcg_at_10: None,
        champion_users_known: None,
        champion_items_known: None,
        new_ndcg_at_10: new_ndcg,
        promoted: true,
        summary: String::new(),
    };
    let Some((champ_id, champ)) = before.current().filter(|(id, _)| *id != new_id) else {
        cmp.summary = format!("{new_id} is the first champion (ndcg@10 {new_ndcg:.4})");
        log.info(&format!("Champion rule: {}", cmp.summary));
        return Ok(cmp);
    };
    cmp.champion_id = Some(champ_id.clone());
    cmp.champion_stored_ndcg_at_10 = Some(champ.score()).filter(|v| v.is_finite());
    let evaluated = CfModel::load_id(home, champ_id)
        .and_then(|m| recops_cf_training::evaluate_model_on_split(&m, split, &[10]));
    match evaluated {
        Err(e) => {
            cmp.summary = format!(
                "champion {champ_id} cannot be re-evaluated ({}); {new_id} (ndcg@10 {new_ndcg:.4}) takes its place",
                error_chain(&e)
            );
            log.warning(&format!("Champion rule: {}", cmp.summary));
        }
        Ok(ev) => {
            let old = ev.metrics.ndcg(10);
            cmp.champion_ndcg_at_10 = Some(old);
            cmp.champion_users_known = Some((ev.users_known, ev.users_total));
            cmp.champion_items_known = Some((ev.items_known, ev.items_total));
            cmp.promoted = new_ndcg > old;
            cmp.summary = format!(
                "on the same split {new_id} ndcg@10={new_ndcg:.4} vs champion {champ_id} ndcg@10={old:.4} (stored {:.4}; knows {}/{} users, {}/{} items): {}",
                champ.score(),
                ev.users_known,
                ev.users_total,
                ev.items_known,
                ev.items_total,
                if cmp.promoted {
                    "new model promoted"
                } else {
                    "champion kept"
                }
            );
            log.info(&format!("Champion rule: {}", cmp.summary));
        }
    }
    Ok(cmp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use chrono::{TimeZone, Utc};
    use recops_core::FixedClock;
    use recops_data::{RawInteraction, temporal_split};
    use recops_tracking::{PipelineLock, PipelineTracker};

    /// Clustered synthetic data: 4 taste clusters, 160 users, 60 items.
    struct Synthetic {
        version: String,
        fail: bool,
    }

    impl DataSource for Synthetic {
        fn load(&self, _home: &Home) -> Result<(Split, String)> {
            if self.fail {
                return Err(Error::Data(recops_data::Error::NoProcessedData {
                    path: "data/processed/interactions.parquet".into(),
                }));
            }
            let mut s = 7u64;
            let mut next = |n: u64| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (s >> 33) % n
            };
            let mut rows = Vec::new();
            for u in 0..160i64 {
                for t in 0..15i64 {
                    let item = if next(100) < 85 {
                        (u % 4) + 4 * (next(15) as i64).min(next(15) as i64)
                    } else {
                        next(60) as i64
                    };
                    rows.push(RawInteraction {
                        user_id: u,
                        item_id: item,
                        rating: 4.0,
                        timestamp: t * 10 + next(5) as i64,
                    });
                }
            }
            Ok((temporal_split(&rows), self.version.clone()))
        }
    }

    /// The lines of `logs/service/alerts.log` (the log channel every severity uses by
    /// default).
    fn alert_lines(home: &Home) -> Vec<String> {
        std::fs::read_to_string(home.alerts_log())
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn alerted(home: &Home, level: &str, name: &str) -> bool {
        alert_lines(home)
            .iter()
            .any(|l| l.contains(&format!("| {level} | alerting | {name}")))
    }

    fn small_configs(home: &Home) {
        let dir = home.config_dir();
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            home.als_config(),
            "model:\n  factors: 8\ntraining:\n  bert_init: false\n  threads: 1\n",
        )
        .unwrap();
        std::fs::write(
            home.bpr_config(),
            "model:\n  factors: 8\n  learning_rate: 0.05\n  iterations: 30\ntraining:\n  bert_init: false\n  threads: 2\n",
        )
        .unwrap();
    }

    fn ctx(data: &Synthetic) -> JobContext<'_> {
        JobContext {
            data,
            clock: FixedClock::new(Utc.with_ymd_and_hms(2025, 1, 15, 3, 0, 0).unwrap()).shared(),
        }
    }

    #[test]
    fn trains_registers_skips_unchanged_data_and_alerts_on_degradation() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::new(dir.path());
        small_configs(&home);
        let data = Synthetic {
            version: "v1".into(),
            fail: false,
        };
        let report = train_models_with(&home, &TrainModelsOptions::default(), &ctx(&data)).unwrap();
        assert_eq!(report.status, JobStatus::Success, "{report:?}");
        let statuses: Vec<&str> = report.models.iter().map(|m| m.status.as_str()).collect();
        assert_eq!(statuses, ["registered", "registered"], "{report:?}");
        let registry = Registry::open(&home);
        let file = registry.load().unwrap();
        assert_eq!(file.models.len(), 2);
        assert_eq!(
            file.current_best,
            file.best_active().map(|(k, _)| k.clone())
        );
        assert_eq!(report.current_best, file.current_best);
        assert!(file.models.values().all(|m| m.data_version == "v1"));
        // Tracking: a successful pipeline run, training runs with every iteration.
        let pipeline = PipelineTracker::open(&home).unwrap();
        let runs = pipeline.get_recent_runs(Some(PIPELINE), 10, None).unwrap();
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].status, recops_tracking::RunStatus::Success);
        let training = TrainingTracker::open(&home).unwrap();
        let tr = training.list_runs(Some("als"), 10).unwrap();
        assert_eq!(tr[0].registry_status, Some(RegistryStatus::Active));
        assert_eq!(
            tr[0].model_id.as_deref(),
            report.models[0].model_id.as_deref()
        );
        // The build's git commit (or "unknown" without git metadata), never NULL.
        let commit = tr[0].git_commit.as_deref().unwrap();
        assert_eq!(commit, env!("RECOPS_GIT_COMMIT"));
        assert!(!commit.is_empty());
        // The champion rule's comparisons, one row per registered model: ALS was the
        // first champion, BPR was compared with it on the same split.
        let als_id = report.models[0].model_id.clone().unwrap();
        let bpr_id = report.models[1].model_id.clone().unwrap();
        let als_cmp = training.champion_comparisons(&als_id).unwrap();
        assert_eq!(als_cmp.len(), 1, "{als_cmp:?}");
        assert_eq!(als_cmp[0].run_id, tr[0].run_id);
        assert_eq!(als_cmp[0].champion_id, None);
        assert_eq!(als_cmp[0].decision, ChampionDecision::Promoted);
        assert_eq!(als_cmp[0].data_version.as_deref(), Some("v1"));
        let bpr_cmp = training.champion_comparisons(&bpr_id).unwrap();
        assert_eq!(bpr_cmp.len(), 1, "{bpr_cmp:?}");
        assert_eq!(bpr_cmp[0].champion_id.as_deref(), Some(als_id.as_str()));
        let champ_ndcg = bpr_cmp[0].champion_ndcg_at_10.unwrap();
        assert!(champ_ndcg > 0.0);
        assert_eq!(
            bpr_cmp[0].decision == ChampionDecision::Promoted,
            bpr_cmp[0].new_ndcg_at_10 > champ_ndcg
        );
        assert_eq!(
            file.current_best.as_deref() == Some(bpr_id.as_str()),
            bpr_cmp[0].decision == ChampionDecision::Promoted
        );
        let its = training.iterations(&tr[0].run_id).unwrap();
        assert_eq!(its.len(), report.models[0].iterations_run.unwrap());
        assert!(
            its.iter()
                .all(|i| i.loss.is_some() && i.validation_ndcg.is_some())
        );
        let log = std::fs::read_to_string(home.cf_log("als").unwrap()).unwrap();
        let registered = format!(
            "| INFO | Registered to registry: {}",
            report.models[0].model_id.as_deref().unwrap()
        );
        assert!(log.contains(&registered), "{log}");
        assert!(
            alerted(&home, "INFO", "pipeline_model_training_success"),
            "{:?}",
            alert_lines(&home)
        );

        // Same data again: both skipped.
        let again = train_models_with(&home, &TrainModelsOptions::default(), &ctx(&data)).unwrap();
        assert!(
            again
                .models
                .iter()
                .all(|m| m.status == ModelOutcome::Skipped),
            "{again:?}"
        );
        assert_eq!(registry.load().unwrap().models.len(), 2);

        // A much worse ALS (1 factor, 1 iteration), forced: critical degradation alert.
        std::fs::write(
            home.als_config(),
            "model:\n  factors: 1\n  iterations: 1\ntraining:\n  bert_init: false\n  threads: 1\n",
        )
        .unwrap();
        let opts = TrainModelsOptions {
            model_types: vec![ModelType::Als],
            force_retrain: true,
            ..Default::default()
        };
        let worse = train_models_with(&home, &opts, &ctx(&data)).unwrap();
        assert!(worse.models[0].degraded, "{worse:?}");
        assert!(
            alerted(&home, "CRITICAL", "model_degradation"),
            "{:?}",
            alert_lines(&home)
        );
        assert_eq!(
            registry.load().unwrap().current_best,
            file.current_best,
            "a worse model never becomes current_best"
        );
    }

    /// No taste structure: every user draws items from one steep popularity curve, so
    /// "most popular" is the best anyone can do.
    struct PopularOnly;

    impl DataSource for PopularOnly {
        fn load(&self, _home: &Home) -> Result<(Split, String)> {
            let mut s = 11u64;
            let mut next = |n: u64| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (s >> 33) % n
            };
            let mut rows = Vec::new();
            for u in 0..150i64 {
                for t in 0..12i64 {
                    let x = next(1000) as f64 / 1000.0;
                    rows.push(RawInteraction {
                        user_id: u,
                        item_id: (60.0 * x * x * x) as i64,
                        rating: 4.0,
                        timestamp: t * 10 + next(5) as i64,
                    });
                }
            }
            Ok((temporal_split(&rows), "p1".into()))
        }
    }

    #[test]
    fn a_model_that_loses_to_popularity_is_registered_as_rejected_never_champion() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::new(dir.path());
        small_configs(&home);
        // BPR that barely moves from its random start: a random ranking.
        std::fs::write(
            home.bpr_config(),
            "model:\n  factors: 8\n  learning_rate: 0.000001\n  iterations: 1\ntraining:\n  bert_init: false\n  threads: 1\n",
        )
        .unwrap();
        let opts = TrainModelsOptions {
            model_types: vec![ModelType::Bpr],
            ..Default::default()
        };
        let ctx = JobContext {
            data: &PopularOnly,
            clock: FixedClock::new(Utc.with_ymd_and_hms(2025, 1, 15, 3, 0, 0).unwrap()).shared(),
        };
        let report = train_models_with(&home, &opts, &ctx).unwrap();
        let m = &report.models[0];
        assert_eq!(m.status, ModelOutcome::Rejected, "{report:?}");
        assert!(m.metrics["ndcg@10"] <= m.baseline["ndcg@10"], "{m:?}");
        assert!(
            m.baseline_name
                .as_deref()
                .unwrap()
                .starts_with("popularity")
        );
        let file = Registry::open(&home).load().unwrap();
        let id = m.model_id.as_deref().unwrap();
        assert_eq!(
            file.models[id].status,
            recops_registry::ModelStatus::Rejected
        );
        assert_eq!(file.models[id].metrics, m.metrics, "kept with its numbers");
        assert_eq!(file.current_best, None, "never champion");
        let log = std::fs::read_to_string(home.cf_log("bpr").unwrap()).unwrap();
        assert!(
            log.contains(&format!("| WARNING | Rejected: {id}")),
            "{log}"
        );
        assert!(log.contains(": rejected\n"), "{log}");
        assert!(
            alerted(&home, "WARNING", "bpr_rejected"),
            "{:?}",
            alert_lines(&home)
        );
    }

    #[test]
    fn tune_records_every_trial_and_stores_the_choice_with_the_model() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::new(dir.path());
        small_configs(&home);
        std::fs::write(
            home.als_config(),
            "model:\n  factors: 8\ntraining:\n  bert_init: false\n  threads: 1\ntuning:\n  trials: 4\n  factors: [4, 8]\n  min_iterations: 2\n  max_iterations: 6\n",
        )
        .unwrap();
        let data = Synthetic {
            version: "v1".into(),
            fail: false,
        };
        let opts = TrainModelsOptions {
            model_types: vec![ModelType::Als],
            tune: true,
            tune_budget_seconds: Some(600.0),
            ..Default::default()
        };
        let report = train_models_with(&home, &opts, &ctx(&data)).unwrap();
        let m = &report.models[0];
        let tuned = m.tuning.as_ref().expect("tuned");
        // The reference trial (the configured defaults), 4 trials at rung 0, 2 at rung 1
        // (6 iterations, the last rung).
        assert_eq!(tuned.trials_run, 7, "{tuned:?}");
        assert!(tuned.validation_ndcg >= tuned.default_validation_ndcg.unwrap());
        let training = TrainingTracker::open(&home).unwrap();
        let trials = training.list_runs(Some("als_tuning"), 100).unwrap();
        assert_eq!(trials.len(), 7);
        let reference: Vec<_> = trials
            .iter()
            .filter(|r| r.hyperparameters["reference"] == true)
            .collect();
        assert_eq!(reference.len(), 1);
        assert_eq!(reference[0].hyperparameters["params"]["factors"], 8);
        assert!(
            trials
                .iter()
                .all(|r| r.status == Some(recops_tracking::TrainingStatus::Completed))
        );
        // The choice is the model's hyperparameters and its `tuning` entry.
        let model = CfModel::load_id(&home, m.model_id.as_ref().unwrap()).unwrap();
        assert_eq!(model.meta.tuning.as_ref(), Some(tuned));
        assert_eq!(model.meta.factors, tuned.chosen.factors);
        assert_eq!(model.meta.hyperparameters["iterations"], tuned.iterations);
        let log = std::fs::read_to_string(home.cf_log("als").unwrap()).unwrap();
        assert!(log.contains("| INFO | Tuning chose "), "{log}");
        // The plan was given (tuning.trials: 4), and the log says how to repeat it.
        assert_eq!((tuned.planned_trials, tuned.trials_from_budget), (4, false));
        assert!(
            log.contains("Tuning plan: 4 configurations (given); repeat with --trials 4"),
            "{log}"
        );
    }

    /// A model of the Synthetic data's 4 taste clusters: user u likes items i with
    /// i % 4 == u % 4 (`sign` 1), or exactly the others (`sign` -1).
    fn cluster_model(home: &Home, id: &str, split: &Split, sign: f32, stored_ndcg: f64) {
        use recops_cf_training::{Factors, ModelMeta, mapping_fingerprint};
        let one_hot = |ids: &[i64], s: f32| {
            let mut v = vec![0.0f32; ids.len() * 4];
            for (r, &x) in ids.iter().enumerate() {
                v[r * 4 + x.rem_euclid(4) as usize] = s;
            }
            Factors::from_vec(ids.len(), 4, v).unwrap()
        };
        let model = CfModel {
            meta: ModelMeta {
                format_version: recops_cf_training::MODEL_FORMAT_VERSION,
                model_id: id.parse().unwrap(),
                model_type: ModelType::Als,
                factors: 4,
                hyperparameters: serde_json::Value::Null,
                metrics: [("ndcg@10".to_owned(), stored_ndcg)].into(),
                baseline: BTreeMap::new(),
                baselines: BTreeMap::new(),
                tuning: None,
                improvement_pct: 0.0,
                data_version: "v0".into(),
                created_at: String::new(),
                n_users: split.n_users(),
                n_items: split.n_items(),
                mapping_fingerprint: mapping_fingerprint(&split.user_ids, &split.item_ids),
                training: Default::default(),
            },
            user_ids: split.user_ids.clone(),
            item_ids: split.item_ids.clone(),
            user_factors: one_hot(&split.user_ids, 1.0),
            item_factors: one_hot(&split.item_ids, sign),
        };
        model.save(&home.model_dir(&id.parse().unwrap())).unwrap();
        Registry::open(home)
            .register(
                &NewModel {
                    model_id: id.parse().unwrap(),
                    model_type: ModelType::Als,
                    metrics: model.meta.metrics.clone(),
                    baseline: BTreeMap::new(),
                    data_version: "v0".into(),
                },
                "test",
            )
            .unwrap();
    }

    #[test]
    fn the_champion_rule_compares_on_the_new_split_not_on_stored_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::new(dir.path());
        let data = Synthetic {
            version: "v1".into(),
            fail: false,
        };
        let (split, _) = data.load(&home).unwrap();
        let registry = Registry::open(&home);
        let clock = SystemClock::shared();
        let log = TrainingLog::open(&home, ModelType::Als, clock).unwrap();
        // A good champion whose stored ndcg@10 (from older, harder data) is low.
        cluster_model(&home, "als_20250101_000000", &split, 1.0, 0.01);
        registry
            .promote(Some(&"als_20250101_000000".parse().unwrap()), "test")
            .unwrap();
        let good = recops_cf_training::evaluate_model_on_split(
            &CfModel::load_id(&home, &"als_20250101_000000".parse().unwrap()).unwrap(),
            &split,
            &[10],
        )
        .unwrap()
        .metrics
        .ndcg(10);
        assert!(good > 0.3, "{good}");
        // A new model better than the stored 0.01 but worse on the same split: kept.
        cluster_model(&home, "als_20250102_000000", &split, -1.0, 0.0);
        let before = registry.load().unwrap();
        let new_id: ModelId = "als_20250102_000000".parse().unwrap();
        let apply = |cmp: &ChampionComparison| {
            let (winner, reason) = champion_promotion(cmp, &new_id);
            registry.promote(Some(&winner), &reason).unwrap();
        };
        let cmp = champion_rule(&home, &before, &new_id, good - 0.05, &split, &log).unwrap();
        apply(&cmp);
        assert!(!cmp.promoted, "{cmp:?}");
        assert_eq!(cmp.champion_ndcg_at_10, Some(good));
        assert_eq!(cmp.champion_stored_ndcg_at_10, Some(0.01));
        assert_eq!(
            registry.load().unwrap().current_best.as_deref(),
            Some("als_20250101_000000")
        );
        // A new model better on the same split: promoted.
        let cmp = champion_rule(&home, &before, &new_id, good + 0.05, &split, &log).unwrap();
        apply(&cmp);
        assert!(cmp.promoted, "{cmp:?}");
        assert_eq!(
            registry.load().unwrap().current_best.as_deref(),
            Some("als_20250102_000000")
        );
        // The numbers are in the audit and the log.
        let audit = registry.audit().unwrap();
        let last = audit.last().unwrap();
        assert_eq!(last.operation, "promote");
        assert!(
            last.reason.contains("champion rule") && last.reason.contains(&format!("{good:.4}")),
            "{last:?}"
        );
        assert!(audit[audit.len() - 2].reason.contains("champion kept"));
        let text = std::fs::read_to_string(home.cf_log("als").unwrap()).unwrap();
        assert!(text.contains("Champion rule: on the same split"), "{text}");
    }

    #[test]
    fn the_degradation_threshold_is_that_of_the_model_degradation_rule() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::new(dir.path());
        let clock = SystemClock::shared();
        assert_eq!(
            degradation_threshold(&JobAlerts::open(&home, &clock)),
            DEGRADATION_THRESHOLD
        );
        std::fs::create_dir_all(home.config_dir()).unwrap();
        std::fs::write(
            home.alerts_config(),
            "alerts:\n  model_degradation:\n    threshold: 0.25\n    severity: critical\n    channels: [log]\n",
        )
        .unwrap();
        assert_eq!(degradation_threshold(&JobAlerts::open(&home, &clock)), 0.25);
    }

    #[test]
    fn failures_are_recorded_and_alerted() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::new(dir.path());
        let broken = Synthetic {
            version: "v1".into(),
            fail: true,
        };
        let report =
            train_models_with(&home, &TrainModelsOptions::default(), &ctx(&broken)).unwrap();
        assert_eq!(report.status, JobStatus::Failed);
        assert!(!report.ok());
        assert!(
            report.message.contains("interactions.parquet"),
            "{}",
            report.message
        );
        let runs = PipelineTracker::open(&home)
            .unwrap()
            .get_recent_runs(Some(PIPELINE), 10, None)
            .unwrap();
        assert_eq!(runs[0].status, recops_tracking::RunStatus::Failed);
        assert!(
            alerted(&home, "CRITICAL", "pipeline_model_training_failed"),
            "{:?}",
            alert_lines(&home)
        );

        // Another holder of the lock: nothing done.
        let _held = PipelineLock::acquire(&home, PIPELINE).unwrap();
        let data = Synthetic {
            version: "v1".into(),
            fail: false,
        };
        let locked = train_models_with(&home, &TrainModelsOptions::default(), &ctx(&data)).unwrap();
        assert_eq!(locked.status, JobStatus::Skipped);
        assert!(locked.message.contains("in progress"));
        assert!(locked.ok());
    }
}
