//! The spec's operations as commands: `recops models`, `recops runs`,
//! `recops training` and `recops deployments`. Each function returns a report with
//! `Display` (a table for people) and `Serialize` (`--json`); the `recops` binary only
//! parses arguments and prints.

use std::fmt;

use chrono::{DateTime, Utc};
use recops_core::{Home, ModelId, SharedClock, format_timestamp};
use recops_deploy::{DeploymentLog, DeploymentRecord};
use recops_registry::{DeployedEntry, GcReport, ModelEntry, ModelStatus, Registry};
use recops_tracking::{
    ChampionRecord, IterationMetric, PipelineRun, PipelineTracker, RegistryStatus, RunStatus,
    TrainingRun, TrainingTracker,
};
use serde::Serialize;
use tracing::warn;

use crate::error::{Error, Result};

/// One row of `recops models list`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelRow {
    /// The model id.
    pub model_id: ModelId,
    /// The registry entry.
    #[serde(flatten)]
    pub entry: ModelEntry,
    /// It is `current_best`.
    pub champion: bool,
    /// It is the deployed model.
    pub deployed: bool,
    /// Its folder exists.
    pub files_present: bool,
}

/// `recops models list`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelsReport {
    /// The champion.
    pub current_best: Option<ModelId>,
    /// The desired serving state.
    pub deployed: Option<DeployedEntry>,
    /// Every model, newest first.
    pub models: Vec<ModelRow>,
}

impl fmt::Display for ModelsReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:<26} {:<5} {:<9} {:>8} {:<26} {:<6} FLAGS",
            "MODEL", "TYPE", "STATUS", "NDCG@10", "REGISTERED", "FILES"
        )?;
        for m in &self.models {
            let mut flags = Vec::new();
            if m.champion {
                flags.push("champion");
            }
            if m.deployed {
                flags.push("deployed");
            }
            if m.entry.verification_failed.is_some() {
                flags.push("failed-verification");
            }
            let ndcg = m
                .entry
                .metrics
                .get(recops_registry::CHAMPION_METRIC)
                .map_or("-".to_owned(), |v| format!("{v:.4}"));
            writeln!(
                f,
                "{:<26} {:<5} {:<9} {:>8} {:<26} {:<6} {}",
                m.model_id,
                m.entry.model_type,
                status_str(m.entry.status),
                ndcg,
                m.entry.registered_at,
                if m.files_present { "yes" } else { "no" },
                flags.join(",")
            )?;
        }
        match &self.deployed {
            Some(d) => writeln!(
                f,
                "deployed: {} (by {} at {}: {})",
                d.model_id, d.action, d.deployed_at, d.reason
            ),
            None => writeln!(f, "deployed: none recorded yet"),
        }
    }
}

fn status_str(s: ModelStatus) -> &'static str {
    match s {
        ModelStatus::Active => "active",
        ModelStatus::Archived => "archived",
        ModelStatus::Rejected => "rejected",
    }
}

/// `recops models list`: every model of the registry, newest first, with its role.
pub fn models_list(home: &Home) -> Result<ModelsReport> {
    let reg = Registry::open(home).load()?;
    let mut models: Vec<ModelRow> = reg
        .models
        .iter()
        .map(|(id, e)| ModelRow {
            model_id: id.clone(),
            champion: reg.current_best.as_ref() == Some(id),
            deployed: reg.deployed.as_ref().map(|d| &d.model_id) == Some(id),
            files_present: home.root().join(&e.path).is_dir(),
            entry: e.clone(),
        })
        .collect();
    models.sort_by(|a, b| {
        b.entry
            .registered_at
            .cmp(&a.entry.registered_at)
            .then_with(|| b.model_id.cmp(&a.model_id))
    });
    Ok(ModelsReport {
        current_best: reg.current_best,
        deployed: reg.deployed,
        models,
    })
}

/// `recops models show ID`: the model's row, the hyperparameters it was trained with,
/// the search that chose them, the champion rule's comparison and the training run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelDetail {
    /// The registry row.
    pub model: ModelRow,
    /// The hyperparameters the model was trained with (`model.json`; the tuned ones when
    /// tuned). None when the model's files cannot be read.
    pub hyperparameters: Option<serde_json::Value>,
    /// The validation-only search that chose them, when tuned (`model.json`).
    pub tuning: Option<recops_cf_training::TuningResult>,
    /// The champion rule's comparisons of this model (from `logs/training_metrics.db`).
    pub champion_comparisons: Vec<ChampionRecord>,
    /// The training run that registered it (from `logs/training_metrics.db`).
    pub training_run: Option<TrainingRun>,
}

impl fmt::Display for ModelDetail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = &self.model;
        writeln!(f, "model:        {}", m.model_id)?;
        writeln!(f, "type:         {}", m.entry.model_type)?;
        writeln!(f, "status:       {}", status_str(m.entry.status))?;
        writeln!(f, "champion:     {}", m.champion)?;
        writeln!(f, "deployed:     {}", m.deployed)?;
        writeln!(f, "registered:   {}", m.entry.registered_at)?;
        writeln!(f, "data version: {}", m.entry.data_version)?;
        writeln!(
            f,
            "files:        {} ({})",
            m.entry.path,
            if m.files_present { "present" } else { "absent" }
        )?;
        if let Some(v) = &m.entry.verification_failed {
            writeln!(f, "verification failed at {}: {}", v.at, v.reason)?;
        }
        for (k, v) in &m.entry.metrics {
            writeln!(f, "metric {k:<12} {v:.4}")?;
        }
        if let Some(serde_json::Value::Object(h)) = &self.hyperparameters {
            for (k, v) in h {
                writeln!(f, "hyperparameter {k:<16} {v}")?;
            }
        }
        match &self.tuning {
            Some(t) => writeln!(
                f,
                "tuned:        {} ({} trials of {} planned{} in {:.1}s, seed {}, validation ndcg@10 {:.4}, configured defaults {})",
                if t.chose_defaults {
                    "kept the configured defaults"
                } else {
                    "chose the hyperparameters above"
                },
                t.trials_run,
                t.planned_trials,
                if t.trials_from_budget {
                    " from the budget"
                } else {
                    ""
                },
                t.seconds,
                t.seed,
                t.validation_ndcg,
                t.default_validation_ndcg
                    .map_or("diverged".to_owned(), |v| format!("{v:.4}"))
            )?,
            None => writeln!(f, "tuned:        no")?,
        }
        for c in &self.champion_comparisons {
            writeln!(
                f,
                "champion rule ({}): {} vs champion {}: {} ({})",
                c.compared_at,
                c.new_ndcg_at_10,
                c.champion_id.as_deref().unwrap_or("none"),
                c.decision,
                c.summary
            )?;
        }
        if let Some(r) = &self.training_run {
            writeln!(f, "training run: {}", r.run_id)?;
        }
        Ok(())
    }
}

/// `recops models show ID`.
pub fn models_show(home: &Home, model_id: &ModelId) -> Result<ModelDetail> {
    let report = models_list(home)?;
    let model = report
        .models
        .into_iter()
        .find(|m| &m.model_id == model_id)
        .ok_or_else(|| Error::ModelNotRegistered {
            model_id: model_id.clone(),
        })?;
    let (training_run, champion_comparisons) = match TrainingTracker::open(home) {
        Ok(t) => (
            t.list_runs(None, usize::MAX)?
                .into_iter()
                .find(|r| r.model_id.as_deref() == Some(model_id.as_str())),
            t.champion_comparisons(model_id)?,
        ),
        Err(e) => {
            warn!(error = %recops_core::error_chain(&e), "cannot read the training runs");
            (None, Vec::new())
        }
    };
    let meta = match recops_cf_training::CfModel::read_meta(&home.root().join(&model.entry.path)) {
        Ok(m) => Some(m),
        Err(e) => {
            warn!(error = %recops_core::error_chain(&e), %model_id, "cannot read the model's model.json");
            None
        }
    };
    let (hyperparameters, tuning) = match meta {
        Some(m) => (Some(m.hyperparameters), m.tuning),
        None => (None, None),
    };
    Ok(ModelDetail {
        model,
        hyperparameters,
        tuning,
        champion_comparisons,
        training_run,
    })
}

/// What `recops models promote|archive` did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelChange {
    /// `promote` or `archive`.
    pub operation: &'static str,
    /// The model.
    pub model_id: ModelId,
    /// `current_best` afterwards.
    pub current_best: Option<ModelId>,
}

impl fmt::Display for ModelChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} {}: current_best is {}",
            self.operation,
            self.model_id,
            self.current_best.as_deref().unwrap_or("none")
        )
    }
}

/// `recops models promote ID`: makes an active model the champion; the next scheduled
/// deployment deploys it.
pub fn models_promote(home: &Home, model_id: &ModelId) -> Result<ModelChange> {
    let current_best = Registry::open(home).promote(Some(model_id), "recops models promote")?;
    Ok(ModelChange {
        operation: "promote",
        model_id: model_id.clone(),
        current_best,
    })
}

/// `recops models archive ID`: refuses the deployed model and the champion; marks the
/// training run's `registry_status` archived too.
pub fn models_archive(home: &Home, model_id: &ModelId) -> Result<ModelChange> {
    let registry = Registry::open(home);
    registry.archive_unused(model_id, "recops models archive")?;
    TrainingTracker::open(home)?.set_registry_status(model_id, RegistryStatus::Archived)?;
    Ok(ModelChange {
        operation: "archive",
        model_id: model_id.clone(),
        current_best: registry.load()?.current_best,
    })
}

/// `recops models gc [--keep N] [--dry-run]`: see [`Registry::gc`].
pub fn models_gc(home: &Home, keep: usize, dry_run: bool) -> Result<GcReport> {
    Ok(Registry::open(home).gc(keep, dry_run)?)
}

/// Filters of `recops runs list`.
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    /// One pipeline.
    pub pipeline: Option<String>,
    /// One status (`running`, `success`, `failed`, `cancelled`).
    pub status: Option<String>,
    /// Started at or after: RFC 3339, a date (YYYY-MM-DD) or a duration back from now
    /// (`24h`, `7d`).
    pub since: Option<String>,
    /// At most this many (newest first).
    pub limit: usize,
}

/// Runs of `logs/pipeline_metrics.db`, newest first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunsReport {
    /// The runs.
    pub runs: Vec<PipelineRun>,
}

impl fmt::Display for RunsReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:<40} {:<22} {:<10} {:<33} {:>9}  ERROR",
            "RUN", "PIPELINE", "STATUS", "STARTED", "SECONDS"
        )?;
        for r in &self.runs {
            writeln!(
                f,
                "{:<40} {:<22} {:<10} {:<33} {:>9}  {}",
                r.run_id,
                r.pipeline_name,
                r.status,
                r.started_at,
                r.duration_seconds.map_or("-".into(), |d| format!("{d:.1}")),
                r.error_message.as_deref().unwrap_or("")
            )?;
        }
        Ok(())
    }
}

/// Parses `--since`: RFC 3339, `YYYY-MM-DD` (midnight UTC) or a duration (`24h`).
pub fn parse_since(text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        && let Some(t) = d.and_hms_opt(0, 0, 0)
    {
        return Ok(t.and_utc());
    }
    recops_alerting::parse_duration(text)
        .map(|d| now - d)
        .map_err(|_| Error::InvalidArgument {
            what: "--since",
            message: format!(
                "{text:?}; expected an RFC 3339 time, a date (2025-01-15) or a duration (24h, 7d)"
            ),
        })
}

/// `recops runs list`.
pub fn runs_list(home: &Home, filter: &RunFilter, clock: &SharedClock) -> Result<RunsReport> {
    let status = filter
        .status
        .as_deref()
        .map(str::parse::<RunStatus>)
        .transpose()?;
    let since = filter
        .since
        .as_deref()
        .map(|s| parse_since(s, clock.now()))
        .transpose()?;
    let tracker = PipelineTracker::open_home(home, clock.clone())?;
    let limit = if filter.limit == 0 { 20 } else { filter.limit };
    let fetch = if since.is_some() { usize::MAX } else { limit };
    let runs = tracker
        .get_recent_runs(filter.pipeline.as_deref(), fetch, status)?
        .into_iter()
        .filter(|r| match since {
            Some(s) => DateTime::parse_from_rfc3339(&r.started_at).is_ok_and(|t| t >= s),
            None => true,
        })
        .take(limit)
        .collect();
    Ok(RunsReport { runs })
}

/// `recops runs show RUN_ID`.
pub fn runs_show(home: &Home, run_id: &str, clock: &SharedClock) -> Result<PipelineRun> {
    let tracker = PipelineTracker::open_home(home, clock.clone())?;
    tracker.get_run(run_id)?.ok_or_else(|| Error::RunNotFound {
        run_id: run_id.to_owned(),
        store: tracker.location(),
    })
}

/// `recops runs cancel RUN_ID`: marks a running run `cancelled` (the process, if still
/// alive, is not signalled).
pub fn runs_cancel(home: &Home, run_id: &str, clock: &SharedClock) -> Result<PipelineRun> {
    let tracker = PipelineTracker::open_home(home, clock.clone())?;
    runs_show(home, run_id, clock)?;
    tracker.cancel_run(run_id)?;
    runs_show(home, run_id, clock)
}

/// What `recops runs cleanup` did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CleanupReport {
    /// Runs still `running` after this many hours were marked failed.
    pub max_running_hours: f64,
    /// How many.
    pub marked_failed: usize,
    /// When.
    pub at: String,
}

impl fmt::Display for CleanupReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} run(s) running for more than {} h marked failed",
            self.marked_failed, self.max_running_hours
        )
    }
}

/// `recops runs cleanup [--max-running-hours 24]`: the spec's `cleanup_stale_runs`.
pub fn runs_cleanup(
    home: &Home,
    max_running_hours: f64,
    clock: &SharedClock,
) -> Result<CleanupReport> {
    if !(max_running_hours.is_finite() && max_running_hours > 0.0) {
        return Err(Error::InvalidArgument {
            what: "--max-running-hours",
            message: format!("{max_running_hours}; expected a positive number of hours"),
        });
    }
    let tracker = PipelineTracker::open_home(home, clock.clone())?;
    let marked_failed = tracker.cleanup_stale_runs(max_running_hours)?;
    Ok(CleanupReport {
        max_running_hours,
        marked_failed,
        at: format_timestamp(clock.now()),
    })
}

/// `recops training list`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrainingRunsReport {
    /// Newest first.
    pub runs: Vec<TrainingRun>,
}

impl fmt::Display for TrainingRunsReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:<40} {:<5} {:<10} {:>9} {:>8} {:>9}  MODEL",
            "RUN", "TYPE", "STATUS", "RECALL@10", "NDCG@10", "SECONDS"
        )?;
        let num = |v: Option<f64>, p: usize| v.map_or("-".into(), |v| format!("{v:.p$}"));
        for r in &self.runs {
            writeln!(
                f,
                "{:<40} {:<5} {:<10} {:>9} {:>8} {:>9}  {}",
                r.run_id,
                r.model_type.as_deref().unwrap_or("-"),
                r.status.map_or("-".to_owned(), |s| s.as_str().to_owned()),
                num(r.recall_at_10, 4),
                num(r.ndcg_at_10, 4),
                num(r.training_time_seconds, 1),
                r.model_id.as_deref().unwrap_or("-")
            )?;
        }
        Ok(())
    }
}

/// `recops training list [--limit N]`.
pub fn training_list(home: &Home, limit: usize) -> Result<TrainingRunsReport> {
    let runs = TrainingTracker::open(home)?.list_runs(None, if limit == 0 { 20 } else { limit })?;
    Ok(TrainingRunsReport { runs })
}

/// `recops training show RUN_ID`: the run and its iterations.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrainingDetail {
    /// The run.
    pub run: TrainingRun,
    /// Every logged iteration, in order.
    pub iterations: Vec<IterationMetric>,
}

impl fmt::Display for TrainingDetail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = &self.run;
        writeln!(
            f,
            "run {} ({}), status {}, model {}, git {}",
            r.run_id,
            r.model_type.as_deref().unwrap_or("-"),
            r.status.map_or("-", |s| s.as_str()),
            r.model_id.as_deref().unwrap_or("-"),
            r.git_commit.as_deref().unwrap_or("-")
        )?;
        writeln!(
            f,
            "{:>9} {:>12} {:>10} {:>10} {:>9}",
            "ITERATION", "LOSS", "VAL_RECALL", "VAL_NDCG", "SECONDS"
        )?;
        let num = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.4}"));
        for it in &self.iterations {
            writeln!(
                f,
                "{:>9} {:>12} {:>10} {:>10} {:>9}",
                it.iteration,
                num(it.loss),
                num(it.validation_recall),
                num(it.validation_ndcg),
                num(it.wall_time_seconds)
            )?;
        }
        Ok(())
    }
}

/// `recops training show RUN_ID`.
pub fn training_show(home: &Home, run_id: &str) -> Result<TrainingDetail> {
    let tracker = TrainingTracker::open(home)?;
    let run = tracker.get_run(run_id)?.ok_or_else(|| Error::RunNotFound {
        run_id: run_id.to_owned(),
        store: tracker.location(),
    })?;
    let iterations = tracker.iterations(run_id)?;
    Ok(TrainingDetail { run, iterations })
}

/// `recops deployments list`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeploymentsReport {
    /// Newest first.
    pub deployments: Vec<DeploymentRecord>,
    /// The desired serving state.
    pub deployed: Option<DeployedEntry>,
}

impl fmt::Display for DeploymentsReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:<33} {:<9} {:<26} {:<26} {:<8} REASON",
            "TIME", "ACTION", "MODEL", "PREVIOUS", "STATUS"
        )?;
        for d in &self.deployments {
            let action = serde_json::to_value(d.action)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            let status = serde_json::to_value(d.status)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            writeln!(
                f,
                "{:<33} {:<9} {:<26} {:<26} {:<8} {}",
                d.timestamp,
                action,
                d.model_id,
                d.previous_model_id.as_deref().unwrap_or("-"),
                status,
                d.reason.as_deref().unwrap_or("")
            )?;
        }
        match &self.deployed {
            Some(d) => writeln!(
                f,
                "deployed: {} (by {} at {})",
                d.model_id, d.action, d.deployed_at
            ),
            None => writeln!(f, "deployed: none recorded yet"),
        }
    }
}

/// `recops deployments list [--limit N]`.
pub fn deployments_list(home: &Home, limit: usize) -> Result<DeploymentsReport> {
    let history = DeploymentLog::open(home).load()?;
    let limit = if limit == 0 { 20 } else { limit };
    let deployments = history.deployments.into_iter().rev().take(limit).collect();
    let deployed = Registry::open(home).deployed()?;
    Ok(DeploymentsReport {
        deployments,
        deployed,
    })
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};
    use recops_core::FixedClock;
    use recops_registry::{DeployedBy, NewModel};
    use serde_json::json;

    use super::*;

    fn mid(id: &str) -> ModelId {
        id.parse().unwrap()
    }

    fn add(home: &Home, id: &str) {
        std::fs::create_dir_all(home.model_dir(&mid(id))).unwrap();
        Registry::open(home)
            .register(
                &NewModel {
                    model_id: mid(id),
                    model_type: id.split('_').next().unwrap().parse().unwrap(),
                    metrics: [("ndcg@10".to_owned(), 0.1)].into(),
                    baseline: Default::default(),
                    data_version: "v".into(),
                },
                "t",
            )
            .unwrap();
    }

    #[test]
    fn models_show_reports_the_hyperparameters_the_tuning_and_the_champion_rule() {
        use recops_cf_training::{ModelMeta, ModelType, TrialParams, TuningResult};
        let dir = tempfile::tempdir().unwrap();
        let home = Home::new(dir.path());
        add(&home, "als_1");
        // Without model.json: no hyperparameters, still shown.
        let bare = models_show(&home, &recops_core::ModelId::new("als_1").unwrap()).unwrap();
        assert_eq!(
            (bare.hyperparameters.clone(), bare.tuning.clone()),
            (None, None)
        );
        let tuning = TuningResult {
            chosen: TrialParams {
                factors: 32,
                regularization: 0.5,
                alpha: Some(7.0),
                learning_rate: None,
                half_life_days: Some(30.0),
            },
            iterations: 12,
            validation_ndcg: 0.31,
            default_validation_ndcg: Some(0.29),
            chose_defaults: false,
            trials_run: 17,
            planned_trials: 9,
            trials_from_budget: true,
            seed: 42,
            budget_seconds: 300.0,
            seconds: 41.5,
            budget_exhausted: false,
        };
        let meta = ModelMeta {
            format_version: recops_cf_training::MODEL_FORMAT_VERSION,
            model_id: recops_core::ModelId::new("als_1").unwrap(),
            model_type: ModelType::Als,
            factors: 32,
            hyperparameters: json!({"factors": 32, "regularization": 0.5, "alpha": 7.0, "iterations": 12}),
            metrics: Default::default(),
            baseline: Default::default(),
            baselines: Default::default(),
            tuning: Some(tuning.clone()),
            improvement_pct: 0.0,
            data_version: "v".into(),
            created_at: String::new(),
            n_users: 0,
            n_items: 0,
            mapping_fingerprint: String::new(),
            training: Default::default(),
        };
        std::fs::write(
            home.model_dir(&recops_core::ModelId::new("als_1").unwrap())
                .join("model.json"),
            serde_json::to_vec(&meta).unwrap(),
        )
        .unwrap();
        let t = TrainingTracker::open(&home).unwrap();
        let run_id = t
            .start_run(&recops_tracking::NewTrainingRun {
                model_type: "als".into(),
                hyperparameters: json!({}),
                data_version: None,
                git_commit: None,
            })
            .unwrap();
        t.record_champion_comparison(&ChampionRecord {
            run_id,
            model_id: "als_1".into(),
            compared_at: String::new(),
            data_version: Some("v".into()),
            champion_id: Some("als_0".into()),
            champion_ndcg_at_10: Some(0.2),
            champion_stored_ndcg_at_10: Some(0.4),
            new_ndcg_at_10: 0.25,
            decision: recops_tracking::ChampionDecision::Promoted,
            summary: "same split".into(),
        })
        .unwrap();
        let show = models_show(&home, &recops_core::ModelId::new("als_1").unwrap()).unwrap();
        assert_eq!(show.hyperparameters, Some(meta.hyperparameters.clone()));
        assert_eq!(show.tuning, Some(tuning));
        assert_eq!(show.champion_comparisons.len(), 1);
        assert_eq!(show.champion_comparisons[0].champion_ndcg_at_10, Some(0.2));
        let text = show.to_string();
        for needle in [
            "hyperparameter factors",
            "hyperparameter alpha            7.0",
            "17 trials of 9 planned from the budget",
            "validation ndcg@10 0.3100, configured defaults 0.2900",
            "vs champion als_0: promoted",
        ] {
            assert!(text.contains(needle), "{needle:?} not in\n{text}");
        }
        let js = serde_json::to_value(&show).unwrap();
        assert_eq!(js["hyperparameters"]["regularization"], json!(0.5));
        assert_eq!(js["tuning"]["chosen"]["factors"], json!(32));
        assert_eq!(js["tuning"]["chosen"]["half_life_days"], json!(30.0));
        assert_eq!(js["tuning"]["planned_trials"], json!(9));
        assert_eq!(js["champion_comparisons"][0]["decision"], json!("promoted"));
    }

    #[test]
    fn models_commands_keep_registry_and_roles_consistent() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::new(dir.path());
        for id in ["als_1", "als_2", "bpr_3"] {
            add(&home, id);
        }
        models_promote(&home, &mid("als_2")).unwrap();
        Registry::open(&home)
            .record_deployment(&mid("als_1"), DeployedBy::Operator, "t")
            .unwrap();
        let list = models_list(&home).unwrap();
        assert_eq!(list.models.len(), 3);
        let text = list.to_string();
        assert!(
            text.contains("champion") && text.contains("deployed"),
            "{text}"
        );
        assert!(models_archive(&home, &mid("als_1")).is_err());
        assert!(models_archive(&home, &mid("als_2")).is_err());
        let change = models_archive(&home, &mid("bpr_3")).unwrap();
        assert_eq!(change.current_best.as_deref(), Some("als_2"));
        let show = models_show(&home, &mid("bpr_3")).unwrap();
        assert_eq!(show.model.entry.status, ModelStatus::Archived);
        assert!(matches!(
            models_show(&home, &mid("nope")).unwrap_err(),
            Error::ModelNotRegistered { .. }
        ));
        let gc = models_gc(&home, 0, false).unwrap();
        assert_eq!(gc.deleted.len(), 1);
        assert!(!home.model_dir(&mid("bpr_3")).exists());
        assert!(home.model_dir(&mid("als_1")).exists());
        assert!(home.model_dir(&mid("als_2")).exists());
    }

    #[test]
    fn runs_cleanup_marks_a_25_hour_old_running_row_and_cancel_marks_cancelled() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::new(dir.path());
        let clock = FixedClock::new(Utc.with_ymd_and_hms(2025, 1, 15, 0, 0, 0).unwrap());
        let shared = clock.shared();
        let tracker = PipelineTracker::open_path(&home.pipeline_db(), shared.clone()).unwrap();
        let stale = tracker.start_run("data_refresh", json!({})).unwrap();
        clock.advance(Duration::hours(25));
        let fresh = tracker.start_run("model_training", json!({})).unwrap();
        let other = tracker.start_run("drift_detection", json!({})).unwrap();
        let report = runs_cleanup(&home, 24.0, &shared).unwrap();
        assert_eq!(report.marked_failed, 1);
        assert_eq!(
            runs_show(&home, &stale, &shared).unwrap().status,
            RunStatus::Failed
        );
        assert_eq!(
            runs_show(&home, &fresh, &shared).unwrap().status,
            RunStatus::Running
        );
        let cancelled = runs_cancel(&home, &other, &shared).unwrap();
        assert_eq!(cancelled.status, RunStatus::Cancelled);
        assert!(runs_show(&home, "nope", &shared).is_err());
        // Filters.
        let all = runs_list(&home, &RunFilter::default(), &shared).unwrap();
        assert_eq!(all.runs.len(), 3);
        let running = RunFilter {
            status: Some("running".into()),
            ..RunFilter::default()
        };
        assert_eq!(runs_list(&home, &running, &shared).unwrap().runs.len(), 1);
        let recent = RunFilter {
            since: Some("1h".into()),
            ..RunFilter::default()
        };
        assert_eq!(runs_list(&home, &recent, &shared).unwrap().runs.len(), 2);
        let bad = RunFilter {
            since: Some("yesterday".into()),
            ..RunFilter::default()
        };
        assert!(
            runs_list(&home, &bad, &shared)
                .unwrap_err()
                .to_string()
                .contains("--since")
        );
        assert!(runs_cleanup(&home, -1.0, &shared).is_err());
    }
}
