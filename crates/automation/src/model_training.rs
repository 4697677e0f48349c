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
//! `auto_deploy` is refused until the deployment job exists.

use std::collections::BTreeMap;

use recops_alerting::{AlertManager, Severity, Threshold};
use recops_cf_training::{
    CfModel, IterationReport, ModelType, TrainConfig, TrainData, TrainOptions, TrainingLog, train,
};
use recops_core::{Home, SharedClock, SystemClock};
use recops_data::Split;
use recops_registry::{NewModel, Registry};
use recops_tracking::{
    IterationRecord, NewTrainingRun, PipelineLock, PipelineTracker, RegistryStatus,
    TrainingOutcome, TrainingTracker,
};
use serde::Serialize;
use serde_json::json;

use crate::error::{Error, Result};

/// Pipeline name (lock, pipeline runs, alerts).
pub const PIPELINE: &str = "model_training";
/// A new model more than this fraction below the current best's ndcg@10 raises the
/// critical `model_degradation` alert (the spec's `alerts.model_degradation.threshold`).
pub const DEGRADATION_THRESHOLD: f64 = 0.1;

/// Severity of an alert the job sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertSeverity {
    /// Information (completion).
    Info,
    /// Someone should look.
    Warning,
    /// Someone must act.
    Critical,
}

/// Where the job's alerts go.
pub trait AlertSink {
    /// Sends one alert.
    fn send(&self, alert_name: &str, message: &str, severity: AlertSeverity);

    /// The relative ndcg@10 drop that raises `model_degradation` (0.1).
    fn degradation_threshold(&self) -> f64 {
        DEGRADATION_THRESHOLD
    }
}

/// The alert manager of `config/alerts_config.yaml`: e-mail, Slack and
/// `logs/service/alerts.log` as the rules say; `model_degradation`'s threshold comes
/// from its rule.
impl AlertSink for AlertManager {
    fn send(&self, alert_name: &str, message: &str, severity: AlertSeverity) {
        let severity = match severity {
            AlertSeverity::Info => Severity::Info,
            AlertSeverity::Warning => Severity::Warning,
            AlertSeverity::Critical => Severity::Critical,
        };
        let report = self.send_alert(alert_name, message, severity, None);
        tracing::debug!(alert = alert_name, report = ?report.success_map(), "alert sent");
    }

    fn degradation_threshold(&self) -> f64 {
        match self
            .config()
            .alerts
            .get("model_degradation")
            .map(|r| r.threshold)
        {
            Some(Threshold::Number(t)) if t.is_finite() && t >= 0.0 => t,
            _ => DEGRADATION_THRESHOLD,
        }
    }
}

/// Alerts as `tracing` events (the job's log); the default until the alert manager is
/// wired in.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogAlerts;

impl AlertSink for LogAlerts {
    fn send(&self, alert_name: &str, message: &str, severity: AlertSeverity) {
        match severity {
            AlertSeverity::Critical => tracing::error!(alert = alert_name, "{message}"),
            AlertSeverity::Warning => tracing::warn!(alert = alert_name, "{message}"),
            AlertSeverity::Info => tracing::info!(alert = alert_name, "{message}"),
        }
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

/// The spec's `train_models`: [`train_models_with`] on the home's processed data, its
/// alert manager (`config/alerts_config.yaml`; if that config is unusable the alerts go
/// to this job's log, and the error says why) and the system clock.
pub fn train_models(home: &Home, options: &TrainModelsOptions) -> Result<TrainModelsReport> {
    let manager = AlertManager::load(home);
    let log_alerts = LogAlerts;
    let alerts: &dyn AlertSink = match &manager {
        Ok(m) => m,
        Err(e) => {
            tracing::error!(error = %e, "cannot load the alert manager; alerts go to this log only");
            &log_alerts
        }
    };
    let ctx = JobContext {
        data: &ProcessedData,
        alerts,
        clock: SystemClock::shared(),
    };
    train_models_with(home, options, &ctx)
}

/// What to do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrainModelsOptions {
    /// Types to train, in order; empty = both (`als`, `bpr`).
    pub model_types: Vec<ModelType>,
    /// Train even when the data has not changed since the last registered model.
    pub force_retrain: bool,
    /// Deploy the new best model afterwards (refused: no deployment job yet).
    pub auto_deploy: bool,
    /// Continue interrupted runs from their newest checkpoints.
    pub resume: bool,
}

/// Outcome of one model type.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelReport {
    /// `als` or `bpr`.
    pub model_type: ModelType,
    /// `registered`, `not_registered` (did not beat the baseline), `skipped` or `failed`.
    pub status: String,
    /// Why (skip reason, registration decision, error).
    pub message: String,
    /// The model id, when a model was trained.
    pub model_id: Option<String>,
    /// The training run id in `training_metrics.db`.
    pub training_run_id: Option<String>,
    /// Test metrics.
    pub metrics: BTreeMap<String, f64>,
    /// Baseline metrics.
    pub baseline: BTreeMap<String, f64>,
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
    fn new(model_type: ModelType, status: &str, message: String) -> Self {
        ModelReport {
            model_type,
            status: status.to_owned(),
            message,
            model_id: None,
            training_run_id: None,
            metrics: BTreeMap::new(),
            baseline: BTreeMap::new(),
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
    /// `success`, `failed` or `locked` (another run holds the lock).
    pub status: String,
    /// The pipeline run id.
    pub run_id: Option<String>,
    /// Version of the training data.
    pub data_version: Option<String>,
    /// One entry per model type.
    pub models: Vec<ModelReport>,
    /// The registry's current_best after the run.
    pub current_best: Option<String>,
    /// A one-line summary.
    pub message: String,
}

impl TrainModelsReport {
    /// True unless a model failed or the data could not be loaded.
    pub fn ok(&self) -> bool {
        self.status != "failed"
    }
}

/// Everything the job talks to besides the home.
pub struct JobContext<'a> {
    /// The training data.
    pub data: &'a dyn DataSource,
    /// The alerts.
    pub alerts: &'a dyn AlertSink,
    /// Time source.
    pub clock: SharedClock,
}

impl std::fmt::Debug for JobContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobContext").finish_non_exhaustive()
    }
}

/// Runs the job with the given data source and alert sink (see the module docs).
pub fn train_models_with(
    home: &Home,
    options: &TrainModelsOptions,
    ctx: &JobContext<'_>,
) -> Result<TrainModelsReport> {
    if options.auto_deploy {
        return Err(Error::Unsupported(
            "--auto-deploy needs the model-deployment job, which is not part of this build yet; \
             train without it and deploy the registry's current_best with model-deployment"
                .into(),
        ));
    }
    let types = if options.model_types.is_empty() {
        ModelType::all().to_vec()
    } else {
        options.model_types.clone()
    };
    let lock = PipelineLock::acquire(home, PIPELINE)?;
    if !lock.acquired() {
        let holder = lock
            .holder()
            .map(|h| format!(" (pid {} on {} since {})", h.pid, h.host, h.started_at))
            .unwrap_or_default();
        return Ok(TrainModelsReport {
            status: "locked".into(),
            run_id: None,
            data_version: None,
            models: Vec::new(),
            current_best: None,
            message: format!("another {PIPELINE} run is in progress{holder}; nothing done"),
        });
    }
    let tracker = PipelineTracker::open(home)?;
    let run_id = tracker.start_run(
        PIPELINE,
        json!({
            "model_types": types.iter().map(|t| t.as_str()).collect::<Vec<_>>(),
            "force_retrain": options.force_retrain,
            "resume": options.resume,
        }),
    )?;
    let result = run_job(home, options, &types, ctx);
    match result {
        Ok(mut report) => {
            report.run_id = Some(run_id.clone());
            let failed: Vec<&ModelReport> = report
                .models
                .iter()
                .filter(|m| m.status == "failed")
                .collect();
            if failed.is_empty() {
                tracker.complete_run(
                    &run_id,
                    json!({ "models": report.models, "current_best": report.current_best }),
                )?;
                ctx.alerts.send(
                    &format!("pipeline_{PIPELINE}_success"),
                    &format!("Pipeline: {PIPELINE}\nStatus: success\n{}", report.message),
                    AlertSeverity::Info,
                );
            } else {
                report.status = "failed".into();
                let msg = failed
                    .iter()
                    .map(|m| format!("{}: {}", m.model_type, m.message))
                    .collect::<Vec<_>>()
                    .join("; ");
                tracker.fail_run(&run_id, &msg)?;
                ctx.alerts.send(
                    &format!("pipeline_{PIPELINE}_failed"),
                    &format!("Pipeline: {PIPELINE}\nStatus: failed\n{msg}"),
                    AlertSeverity::Critical,
                );
            }
            Ok(report)
        }
        Err(e) => {
            let msg = format!("{e}");
            tracker.fail_run(&run_id, &msg)?;
            ctx.alerts.send(
                &format!("pipeline_{PIPELINE}_failed"),
                &format!("Pipeline: {PIPELINE}\nStatus: failed\n{msg}"),
                AlertSeverity::Critical,
            );
            Ok(TrainModelsReport {
                status: "failed".into(),
                run_id: Some(run_id),
                data_version: None,
                models: Vec::new(),
                current_best: None,
                message: msg,
            })
        }
    }
}

fn run_job(
    home: &Home,
    options: &TrainModelsOptions,
    types: &[ModelType],
    ctx: &JobContext<'_>,
) -> Result<TrainModelsReport> {
    let (split, data_version) = ctx.data.load(home)?;
    let registry = Registry::with_clock(home, ctx.clock.clone());
    let training = TrainingTracker::open_path(&home.training_db(), ctx.clock.clone())?;
    let mut models = Vec::new();
    for &mt in types {
        let report = match train_one(
            home,
            options,
            mt,
            &split,
            &data_version,
            &registry,
            &training,
            ctx,
        ) {
            Ok(r) => r,
            Err(e) => ModelReport::new(mt, "failed", e.to_string()),
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
        status: "success".into(),
        run_id: None,
        data_version: Some(data_version),
        models,
        current_best: current_best.clone(),
        message: format!(
            "{summary}; current_best {}",
            current_best.as_deref().unwrap_or("none")
        ),
    })
}

#[allow(clippy::too_many_arguments)]
fn train_one(
    home: &Home,
    options: &TrainModelsOptions,
    mt: ModelType,
    split: &Split,
    data_version: &str,
    registry: &Registry,
    training: &TrainingTracker,
    ctx: &JobContext<'_>,
) -> Result<ModelReport> {
    let reg = registry.load()?;
    if !options.force_retrain
        && let Some((id, entry)) = reg.latest_registered(mt.as_str())
        && entry.data_version == data_version
    {
        return Ok(ModelReport::new(
            mt,
            "skipped",
            format!("data version {data_version} unchanged since {id}; use --force to retrain"),
        ));
    }
    let config = TrainConfig::load(home, mt)?;
    let warm = if config.training().warm_start {
        match reg.latest_active(mt.as_str()) {
            Some((id, _)) => match CfModel::load_id(home, id) {
                Ok(m) => Some(m),
                Err(e) => {
                    tracing::warn!(model_id = %id, error = %e, "cannot load the model to warm start from");
                    None
                }
            },
            None => None,
        }
    } else {
        None
    };
    let run_id = training.start_run(&NewTrainingRun {
        model_type: mt.to_string(),
        hyperparameters: config.hyperparameters(),
        data_version: Some(data_version.to_owned()),
        git_commit: option_env!("RECOPS_GIT_COMMIT").map(str::to_owned),
    })?;
    let mut on_iteration = |r: &IterationReport| {
        let rec = IterationRecord {
            iteration: r.iteration as u32,
            loss: Some(r.loss),
            validation_recall: r.validation_recall,
            validation_ndcg: r.validation_ndcg,
            wall_time_seconds: r.wall_time_seconds,
        };
        if let Err(e) = training.log_iteration(&run_id, &rec) {
            tracing::warn!(error = %e, "cannot record a training iteration");
        }
    };
    let outcome = train(
        home,
        &config,
        TrainData {
            split,
            data_version,
        },
        TrainOptions {
            resume: options.resume,
            warm_start: warm.as_ref(),
            clock: ctx.clock.clone(),
            on_iteration: Some(&mut on_iteration),
            interrupt_after: None,
        },
    );
    let outcome = match outcome {
        Ok(o) => o,
        Err(e) => {
            if let Err(te) = training.fail_run(&run_id) {
                tracing::warn!(error = %te, "cannot mark the training run failed");
            }
            let mut r = ModelReport::new(mt, "failed", e.to_string());
            r.training_run_id = Some(run_id);
            return Ok(r);
        }
    };
    let rel_path = format!("artifacts/cf/{}", outcome.model.meta.model_id);
    training.complete_run(
        &run_id,
        &TrainingOutcome {
            recall_at_10: outcome.metrics.recall(10),
            ndcg_at_10: outcome.metrics.ndcg(10),
            coverage: outcome.metrics.coverage(10),
            baseline_recall_at_10: outcome.baseline.recall(10),
            improvement_pct: outcome.improvement_pct,
            training_time_seconds: outcome.training_time_seconds,
            artifacts_path: Some(rel_path),
        },
    )?;
    let meta = &outcome.model.meta;
    let model_id = meta.model_id.clone();
    let mut report = ModelReport::new(mt, "not_registered", String::new());
    report.model_id = Some(model_id.clone());
    report.training_run_id = Some(run_id.clone());
    report.metrics = meta.metrics.clone();
    report.baseline = meta.baseline.clone();
    report.improvement_pct = Some(outcome.improvement_pct);
    report.training_time_seconds = Some(outcome.training_time_seconds);
    report.iterations_run = Some(meta.training.iterations_run);
    report.stopped_early = Some(outcome.stopped_early);

    // Degradation against the current best (whatever its type).
    let new_ndcg = outcome.metrics.ndcg(10);
    if let Some((best_id, best)) = reg.current() {
        let best_ndcg = best.score();
        let threshold = ctx.alerts.degradation_threshold();
        if best_ndcg.is_finite() && new_ndcg < best_ndcg * (1.0 - threshold) {
            report.degraded = true;
            ctx.alerts.send(
                "model_degradation",
                &format!(
                    "model_degradation triggered: {model_id} ndcg@10={new_ndcg:.4} is {:.1}% below current best {best_id} ndcg@10={best_ndcg:.4} (threshold {:.0}%)",
                    (1.0 - new_ndcg / best_ndcg) * 100.0,
                    threshold * 100.0
                ),
                AlertSeverity::Critical,
            );
        }
    }

    let log = TrainingLog::open(home, mt, ctx.clock.clone())?;
    let (recall, base) = (outcome.metrics.recall(10), outcome.baseline.recall(10));
    if outcome.beats_baseline {
        let reason = format!(
            "recall@10 {recall:.4} beats the popularity baseline {base:.4} ({:+.1}%)",
            outcome.improvement_pct
        );
        registry.register(
            &NewModel {
                model_id: model_id.clone(),
                model_type: mt.to_string(),
                metrics: meta.metrics.clone(),
                baseline: meta.baseline.clone(),
                data_version: data_version.to_owned(),
            },
            &reason,
        )?;
        registry.promote(None, "best ndcg@10 among active models")?;
        training.attach_registry(&run_id, &model_id, RegistryStatus::Active)?;
        log.info(&format!("Registered to registry: {model_id}"));
        report.status = "registered".into();
        report.message = reason;
    } else {
        let reason = format!(
            "not registered: recall@10 {recall:.4} does not beat the popularity baseline {base:.4}"
        );
        training.attach_registry(&run_id, &model_id, RegistryStatus::Failed)?;
        log.warning(&format!("Not registered: {model_id} ({reason})"));
        ctx.alerts.send(
            &format!("{mt}_not_registered"),
            &format!("{model_id} {reason}"),
            AlertSeverity::Warning,
        );
        report.message = reason;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};
    use recops_core::FixedClock;
    use recops_data::{RawInteraction, temporal_split};
    use std::sync::Mutex;

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

    #[derive(Default)]
    struct Recorded(Mutex<Vec<(String, AlertSeverity)>>);

    impl AlertSink for Recorded {
        fn send(&self, alert_name: &str, _message: &str, severity: AlertSeverity) {
            self.0
                .lock()
                .unwrap()
                .push((alert_name.to_owned(), severity));
        }
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

    fn ctx<'a>(data: &'a Synthetic, alerts: &'a Recorded) -> JobContext<'a> {
        JobContext {
            data,
            alerts,
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
        let alerts = Recorded::default();
        let report =
            train_models_with(&home, &TrainModelsOptions::default(), &ctx(&data, &alerts)).unwrap();
        assert_eq!(report.status, "success", "{report:?}");
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
        assert_eq!(tr[0].model_id, report.models[0].model_id);
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
        assert_eq!(
            alerts.0.lock().unwrap().last().unwrap(),
            &(
                "pipeline_model_training_success".to_owned(),
                AlertSeverity::Info
            )
        );

        // Same data again: both skipped.
        let again =
            train_models_with(&home, &TrainModelsOptions::default(), &ctx(&data, &alerts)).unwrap();
        assert!(
            again.models.iter().all(|m| m.status == "skipped"),
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
        let worse = train_models_with(&home, &opts, &ctx(&data, &alerts)).unwrap();
        assert!(worse.models[0].degraded, "{worse:?}");
        assert!(
            alerts
                .0
                .lock()
                .unwrap()
                .contains(&("model_degradation".to_owned(), AlertSeverity::Critical))
        );
        assert_eq!(
            registry.load().unwrap().current_best,
            file.current_best,
            "a worse model never becomes current_best"
        );
    }

    #[test]
    fn the_alert_manager_sink_uses_the_model_degradation_rule_and_logs() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::new(dir.path());
        std::fs::create_dir_all(home.config_dir()).unwrap();
        std::fs::write(
            home.alerts_config(),
            "alerts:\n  model_degradation:\n    threshold: 0.25\n    severity: critical\n    channels: [log]\n",
        )
        .unwrap();
        let manager = AlertManager::load(&home).unwrap();
        assert_eq!(AlertSink::degradation_threshold(&manager), 0.25);
        AlertSink::send(
            &manager,
            "model_degradation",
            "model_degradation triggered: test",
            AlertSeverity::Critical,
        );
        let log = std::fs::read_to_string(home.alerts_log()).unwrap();
        assert!(
            log.contains("| CRITICAL | alerting | model_degradation"),
            "{log}"
        );
    }

    #[test]
    fn failures_are_recorded_and_alerted_and_auto_deploy_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::new(dir.path());
        let alerts = Recorded::default();
        let broken = Synthetic {
            version: "v1".into(),
            fail: true,
        };
        let report = train_models_with(
            &home,
            &TrainModelsOptions::default(),
            &ctx(&broken, &alerts),
        )
        .unwrap();
        assert_eq!(report.status, "failed");
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
        assert_eq!(
            alerts.0.lock().unwrap()[0],
            (
                "pipeline_model_training_failed".to_owned(),
                AlertSeverity::Critical
            )
        );

        let opts = TrainModelsOptions {
            auto_deploy: true,
            ..Default::default()
        };
        let err = train_models_with(&home, &opts, &ctx(&broken, &alerts)).unwrap_err();
        assert!(err.to_string().contains("model-deployment"), "{err}");

        // Another holder of the lock: nothing done.
        let _held = PipelineLock::acquire(&home, PIPELINE).unwrap();
        let data = Synthetic {
            version: "v1".into(),
            fail: false,
        };
        let locked =
            train_models_with(&home, &TrainModelsOptions::default(), &ctx(&data, &alerts)).unwrap();
        assert_eq!(locked.status, "locked");
        assert!(locked.message.contains("in progress"));
    }
}
