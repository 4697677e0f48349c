//! The training run: config -> data -> init -> iterations with validation, early
//! stopping and checkpoints -> evaluation against the popularity baseline -> model files,
//! with the spec's lines in `logs/cf/<type>.log`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Local, Utc};
use recops_core::{
    Home, LogFile, LogFileOptions, LogLevel, SharedClock, SystemClock, format_timestamp,
};
use recops_data::{Entry, Split, holdout_split};

use crate::als::{Als, random_factors};
use crate::baselines::{Baseline, popularity_baselines, strongest};
use crate::bpr::{Bpr, BprParams};
use crate::checkpoint::{self, CheckpointState, EarlyState};
use crate::config::{AlsConfig, BprConfig, EvaluationSection, TrainingSection};
use crate::error::{Error, Result};
use crate::eval::{Metrics, evaluate_factors, improvement_pct};
use crate::init::{mean_row_norm, project_embeddings, read_product_embeddings, warm_start_rows};
use crate::iteration::IterationReport;
use crate::matrix::{Factors, Interactions};
use crate::model::{
    CfModel, MODEL_FORMAT_VERSION, ModelMeta, ModelType, TrainingSummary, mapping_fingerprint,
};

/// The config of one training run.
#[derive(Debug, Clone, PartialEq)]
pub enum TrainConfig {
    /// ALS.
    Als(AlsConfig),
    /// BPR.
    Bpr(BprConfig),
}

impl TrainConfig {
    /// Loads the config of `model_type` from `home` (or the built-in default).
    pub fn load(home: &Home, model_type: ModelType) -> Result<Self> {
        Ok(match model_type {
            ModelType::Als => TrainConfig::Als(AlsConfig::load(home)?),
            ModelType::Bpr => TrainConfig::Bpr(BprConfig::load(home)?),
        })
    }

    /// `als` or `bpr`.
    pub fn model_type(&self) -> ModelType {
        match self {
            TrainConfig::Als(_) => ModelType::Als,
            TrainConfig::Bpr(_) => ModelType::Bpr,
        }
    }

    /// The `training:` section.
    pub fn training(&self) -> &TrainingSection {
        match self {
            TrainConfig::Als(c) => &c.training,
            TrainConfig::Bpr(c) => &c.training,
        }
    }

    /// The `evaluation:` section.
    pub fn evaluation(&self) -> &EvaluationSection {
        match self {
            TrainConfig::Als(c) => &c.evaluation,
            TrainConfig::Bpr(c) => &c.evaluation,
        }
    }

    /// Latent factors.
    pub fn factors(&self) -> usize {
        match self {
            TrainConfig::Als(c) => c.model.factors,
            TrainConfig::Bpr(c) => c.model.factors,
        }
    }

    /// Configured iterations.
    pub fn iterations(&self) -> usize {
        match self {
            TrainConfig::Als(c) => c.model.iterations,
            TrainConfig::Bpr(c) => c.model.iterations,
        }
    }

    /// Hyperparameters and options as JSON (stored with the run and the model).
    pub fn hyperparameters(&self) -> serde_json::Value {
        let (model, training) = match self {
            TrainConfig::Als(c) => (serde_json::to_value(c.model), &c.training),
            TrainConfig::Bpr(c) => (serde_json::to_value(c.model), &c.training),
        };
        let mut v = model.unwrap_or(serde_json::Value::Null);
        if let serde_json::Value::Object(m) = &mut v {
            m.insert("seed".into(), training.seed.into());
            m.insert("threads".into(), training.effective_threads().into());
            m.insert("bert_init".into(), training.bert_init.into());
            m.insert("warm_start".into(), training.warm_start.into());
            m.insert(
                "early_stopping".into(),
                serde_json::to_value(training.early_stopping).unwrap_or_default(),
            );
        }
        v
    }

    /// The spec's `Config: ...` line.
    pub fn config_line(&self) -> String {
        match self {
            TrainConfig::Als(c) => format!(
                "Config: factors={}, regularization={}, iterations={}",
                c.model.factors, c.model.regularization, c.model.iterations
            ),
            TrainConfig::Bpr(c) => format!(
                "Config: factors={}, learning_rate={}, regularization={}, iterations={}",
                c.model.factors, c.model.learning_rate, c.model.regularization, c.model.iterations
            ),
        }
    }
}

/// The training log `logs/cf/<type>.log` (spec line format). Writing never fails a run:
/// a write error is reported through `tracing` instead.
#[derive(Debug, Clone)]
pub struct TrainingLog {
    file: Arc<LogFile>,
}

impl TrainingLog {
    /// Opens the log of `model_type` in `home`, stamping lines with `clock`.
    pub fn open(home: &Home, model_type: ModelType, clock: SharedClock) -> Result<Self> {
        let path = home.cf_log(model_type.as_str())?;
        let file = LogFile::open(
            path,
            LogFileOptions {
                clock,
                ..LogFileOptions::default()
            },
        )?;
        Ok(TrainingLog {
            file: Arc::new(file),
        })
    }

    /// Writes one line (and emits it as a `tracing` event).
    pub fn line(&self, level: LogLevel, message: &str) {
        match level {
            LogLevel::Error | LogLevel::Critical => tracing::error!("{message}"),
            LogLevel::Warning => tracing::warn!("{message}"),
            _ => tracing::info!("{message}"),
        }
        if let Err(e) = self.file.write_line(level, None, message) {
            tracing::warn!(path = %self.file.path().display(), error = %recops_core::error_chain(&e), "cannot write training log");
        }
    }

    /// An INFO line.
    pub fn info(&self, message: &str) {
        self.line(LogLevel::Info, message);
    }

    /// A WARNING line.
    pub fn warning(&self, message: &str) {
        self.line(LogLevel::Warning, message);
    }

    /// An ERROR line.
    pub fn error(&self, message: &str) {
        self.line(LogLevel::Error, message);
    }
}

/// The data of a run.
#[derive(Debug, Clone, Copy)]
pub struct TrainData<'a> {
    /// The ARCHITECTURE split.
    pub split: &'a Split,
    /// Version of the data (recorded in the model and registry).
    pub data_version: &'a str,
}

/// Options of a run besides the config.
pub struct TrainOptions<'a> {
    /// Continue from the newest checkpoint of this model type (same config and data).
    pub resume: bool,
    /// The latest model of the same type, used when `training.warm_start` is true.
    pub warm_start: Option<&'a CfModel>,
    /// Time source for the model id, timestamps and log lines.
    pub clock: SharedClock,
    /// Called after every iteration (the job records it in `TrainingTracker`).
    pub on_iteration: Option<&'a mut dyn FnMut(&IterationReport)>,
    /// Stop as if the process were killed after this many iterations of this call
    /// (checkpoints written so far stay); returns [`Error::Interrupted`]. For testing
    /// resume.
    pub interrupt_after: Option<usize>,
    /// The search that chose this config's hyperparameters ([`crate::tune`]), stored
    /// in `model.json` as `tuning`.
    pub tuning: Option<&'a crate::TuningResult>,
}

impl Default for TrainOptions<'_> {
    fn default() -> Self {
        TrainOptions {
            resume: false,
            warm_start: None,
            clock: SystemClock::shared(),
            on_iteration: None,
            interrupt_after: None,
            tuning: None,
        }
    }
}

impl std::fmt::Debug for TrainOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrainOptions")
            .field("resume", &self.resume)
            .field("warm_start", &self.warm_start.map(|m| &m.meta.model_id))
            .field("interrupt_after", &self.interrupt_after)
            .finish_non_exhaustive()
    }
}

/// The result of a run: the model (already written to `model_dir`) and its evaluation.
#[derive(Debug, Clone)]
pub struct TrainOutcome {
    /// The model.
    pub model: CfModel,
    /// `artifacts/cf/<model_id>/`.
    pub model_dir: PathBuf,
    /// Test metrics for every K.
    pub metrics: Metrics,
    /// The strongest popularity baseline on the same split (best ndcg@10 of
    /// [`TrainOutcome::baselines`]): the bar of the gate.
    pub baseline: Metrics,
    /// Its name (`popularity`, `popularity_decay_7d`, ...).
    pub baseline_name: String,
    /// Every popularity variant on the same split ([`crate::popularity_baselines`]).
    pub baselines: Vec<Baseline>,
    /// recall@10 improvement over the strongest baseline, percent.
    pub improvement_pct: f64,
    /// True when ndcg@10 beats the strongest baseline's (the gate: otherwise the model
    /// is registered as `rejected`).
    pub beats_baseline: bool,
    /// Every iteration.
    pub history: Vec<IterationReport>,
    /// Seconds of training (iterations and validation, over all resumed parts).
    pub training_time_seconds: f64,
    /// True when early stopping ended the run.
    pub stopped_early: bool,
    /// The iteration whose factors were kept.
    pub best_iteration: usize,
    /// When the run started.
    pub started_at: DateTime<Utc>,
}

/// Groups a number with commas: 26000 -> "26,000".
pub fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A model id `{type}_{YYYYMMDD_HHMMSS}` (local time) not yet used in `home`
/// (`_2`, `_3`, ... appended when the second is taken).
pub fn new_model_id(
    home: &Home,
    model_type: ModelType,
    at: DateTime<Utc>,
) -> Result<recops_core::ModelId> {
    let base = format!(
        "{}_{}",
        model_type,
        at.with_timezone(&Local).format("%Y%m%d_%H%M%S")
    );
    let mut id = recops_core::ModelId::new(base.clone())?;
    let mut n = 2;
    while home.model_dir(&id).exists() {
        id = recops_core::ModelId::new(format!("{base}_{n}"))?;
        n += 1;
    }
    Ok(id)
}

enum Engine<'a> {
    Als(Als<'a>),
    Bpr(Bpr<'a>),
}

impl Engine<'_> {
    fn step(&mut self, iteration: usize) -> f64 {
        match self {
            Engine::Als(a) => a.iterate(),
            Engine::Bpr(b) => b.epoch(iteration as u64).loss,
        }
    }

    fn factors(&self) -> (&Factors, &Factors) {
        match self {
            Engine::Als(a) => (a.users(), a.items()),
            Engine::Bpr(b) => (b.users(), b.items()),
        }
    }
}

fn fingerprint_cells(cells: &[Entry]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for e in cells {
        for v in [
            u64::from(e.user),
            u64::from(e.item),
            u64::from(e.rating.to_bits()),
        ] {
            h ^= v;
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

/// Trains one model: see the module docs. On success the model files are written and
/// returned; on any failure (empty data, divergence, I/O) nothing is written to
/// `artifacts/` and the error says why, also in the training log.
pub fn train(
    home: &Home,
    config: &TrainConfig,
    data: TrainData<'_>,
    mut options: TrainOptions<'_>,
) -> Result<TrainOutcome> {
    let mt = config.model_type();
    let log = TrainingLog::open(home, mt, options.clock.clone())?;
    let result = train_inner(home, config, data, &mut options, &log);
    if let Some(e) = result
        .as_ref()
        .err()
        .filter(|e| !matches!(e, Error::Interrupted { .. }))
    {
        log.error(&format!("Training failed: {}", recops_core::error_chain(e)));
    }
    result
}

fn train_inner(
    home: &Home,
    config: &TrainConfig,
    data: TrainData<'_>,
    options: &mut TrainOptions<'_>,
    log: &TrainingLog,
) -> Result<TrainOutcome> {
    let split = data.split;
    check_inputs(config, split, log)?;
    let threads = config.training().effective_threads();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| Error::ThreadPool {
            threads,
            message: e.to_string(),
        })?;
    let m = prepare_matrices(config, split, &pool, log)?;
    let (mut run, users0, items0) = start_or_resume(home, config, split, &m, options, log)?;
    recops_core::faults::point("training.started");
    let mut engine = match config {
        TrainConfig::Als(c) => {
            Engine::Als(Als::with_factors(c.model.params(), &m.fit, users0, items0))
        }
        TrainConfig::Bpr(c) => Engine::Bpr(Bpr::with_factors(
            c.model.params(),
            &m.fit,
            users0,
            items0,
            config.training().seed,
            threads,
        )),
    };
    iterate(home, config, &pool, &mut engine, &m, &mut run, options, log)?;
    let (users, items, best_iteration) = match run.best.take() {
        Some((u, i)) if m.validate => (u, i, run.early.best_iteration),
        _ => {
            let (u, i) = engine.factors();
            (u.clone(), i.clone(), run.iteration)
        }
    };
    drop(engine);
    log.info(&format!("Training completed in {:.1}s", run.elapsed));
    let ev = evaluate_and_gate(config, split, &pool, &users, &items, &m, log);
    let model = build_model(
        config,
        &data,
        options,
        &run,
        &ev,
        threads,
        best_iteration,
        users,
        items,
    );
    let model_dir = save_model(home, split, &model, log)?;
    // The run is finished: its checkpoints must never be resumed into this model.
    let ckpt_dir = home.checkpoints_dir(config.model_type().as_str())?;
    let n = checkpoint::clear(&ckpt_dir);
    if n > 0 {
        tracing::debug!(cleared = n, dir = %ckpt_dir.display(), "checkpoints of the finished run removed");
    }
    Ok(TrainOutcome {
        model,
        model_dir,
        metrics: ev.metrics,
        baseline: ev.baseline,
        baseline_name: ev.baseline_name,
        baselines: ev.baselines,
        improvement_pct: ev.improvement,
        beats_baseline: ev.beats,
        history: run.history,
        training_time_seconds: run.elapsed,
        stopped_early: run.stopped_early,
        best_iteration,
        started_at: run.started_at,
    })
}

/// Logs the run's header and refuses data it cannot train on.
fn check_inputs(config: &TrainConfig, split: &Split, log: &TrainingLog) -> Result<()> {
    let mt = config.model_type();
    let k = config.factors();
    log.info(&format!(
        "========== {} Training Started ==========",
        mt.upper()
    ));
    log.info(&config.config_line());
    log.info(&format!(
        "Training data: {} users × {} items",
        thousands(split.n_users()),
        thousands(split.n_items())
    ));
    if split.n_users() == 0 || split.n_items() == 0 || split.train.is_empty() {
        return Err(Error::EmptyData {
            model_type: mt.to_string(),
            detail: format!(
                "{} users, {} items, {} training interactions (run the data refresh first)",
                split.n_users(),
                split.n_items(),
                split.train.len()
            ),
        });
    }
    if k > split.n_items() {
        return Err(Error::FactorsExceedItems {
            factors: k,
            items: split.n_items(),
        });
    }
    if config.training().use_gpu {
        log.warning("use_gpu: true is not supported (no GPU backend); training on the CPU");
    }
    Ok(())
}

/// The matrices of a run.
struct Matrices {
    /// The fit part with the model's confidence (ALS) or 1 (BPR).
    fit: Interactions,
    /// The fit part, binary (filter for validation).
    fit_bin: Interactions,
    /// The validation hold-out (empty without early stopping).
    val: Interactions,
    /// The whole training part, binary (filter for the test evaluation).
    train_bin: Interactions,
    /// The evaluation rows.
    test: Interactions,
    /// True when early stopping validates on `val`.
    validate: bool,
    /// Identifies the data and hyperparameters: a checkpoint resumes only a run with
    /// the same.
    fingerprint: String,
}

/// Fit / validation parts (early stopping validates on a hold-out of the training
/// part, never on the evaluation rows) and their matrices.
fn prepare_matrices(
    config: &TrainConfig,
    split: &Split,
    pool: &rayon::ThreadPool,
    log: &TrainingLog,
) -> Result<Matrices> {
    let es = config.training().early_stopping;
    let (fit, val) = if es.enabled {
        holdout_split(&split.train)
    } else {
        (split.train.clone(), Vec::new())
    };
    let validate = es.enabled && !val.is_empty();
    if es.enabled && val.is_empty() {
        log.warning("No user has enough training interactions for a validation hold-out; early stopping is off for this run");
    }
    let (nu, ni) = (split.n_users(), split.n_items());
    let (fit_m, fit_bin, val_m, train_bin, test_m) = pool.install(|| -> Result<_> {
        let fit_m = match config {
            TrainConfig::Als(c) => {
                let (alpha, half_life) = (c.model.alpha, c.model.half_life_days);
                let newest = crate::recency::newest_timestamp(&fit);
                Interactions::from_entries(nu, ni, &fit, |e| {
                    crate::recency::cell_confidence(e, alpha, newest, half_life)
                })?
            }
            TrainConfig::Bpr(_) => Interactions::from_entries(nu, ni, &fit, |_| 1.0)?,
        };
        Ok((
            fit_m,
            Interactions::from_entries(nu, ni, &fit, |_| 1.0)?,
            Interactions::from_entries(nu, ni, &val, |_| 1.0)?,
            Interactions::from_entries(nu, ni, &split.train, |_| 1.0)?,
            Interactions::from_entries(nu, ni, &split.test, |_| 1.0)?,
        ))
    })?;
    let idle_users = (0..nu).filter(|&u| fit_m.user_row(u).0.is_empty()).count();
    let idle_items = (0..ni).filter(|&i| fit_m.item_row(i).0.is_empty()).count();
    if idle_users + idle_items > 0 {
        log.warning(&format!(
            "{} users and {} items have no training interactions; their factors stay zero",
            thousands(idle_users),
            thousands(idle_items)
        ));
    }
    let fingerprint = format!(
        "{:016x}-{}-{}",
        fingerprint_cells(&split.train) ^ fingerprint_cells(&split.test).rotate_left(1),
        mapping_fingerprint(&split.user_ids, &split.item_ids),
        serde_json::to_string(&config.hyperparameters()).unwrap_or_default()
    );
    Ok(Matrices {
        fit: fit_m,
        fit_bin,
        val: val_m,
        train_bin,
        test: test_m,
        validate,
        fingerprint,
    })
}

/// Where a run stands: set at its start (fresh or from a checkpoint), then moved by
/// every iteration.
struct RunState {
    model_id: recops_core::ModelId,
    started_at: DateTime<Utc>,
    init: String,
    /// Iterations done.
    iteration: usize,
    /// Seconds of training so far, over all resumed parts.
    elapsed: f64,
    early: EarlyState,
    history: Vec<IterationReport>,
    best: Option<(Factors, Factors)>,
    stopped_early: bool,
}

/// A fresh run (new model id, initial factors), or with `--resume` the unfinished run
/// of the newest checkpoint. Checkpoints belong to one unfinished run: those of a run
/// with other data or hyperparameters are refused, those of a run whose model was
/// already written are discarded (its model folder is never written again), and a
/// fresh run clears them.
fn start_or_resume(
    home: &Home,
    config: &TrainConfig,
    split: &Split,
    m: &Matrices,
    options: &TrainOptions<'_>,
    log: &TrainingLog,
) -> Result<(RunState, Factors, Factors)> {
    let mt = config.model_type();
    let ckpt_dir = home.checkpoints_dir(mt.as_str())?;
    let resumed = if options.resume {
        resumable_checkpoint(home, &ckpt_dir, &m.fingerprint, log)?
    } else {
        let n = checkpoint::clear(&ckpt_dir);
        if n > 0 {
            log.info(&format!(
                "Discarded {n} checkpoints of an earlier {mt} run (use --resume to continue one)"
            ));
        }
        None
    };
    let (nu, ni, cols) = (
        split.n_users(),
        split.n_items(),
        mt.columns(config.factors()),
    );
    let Some(c) = resumed else {
        let started = options.clock.now();
        let (init, u, i) = initial_factors(home, config, split, &m.fit, options.warm_start, log)?;
        let run = RunState {
            model_id: new_model_id(home, mt, started)?,
            started_at: started,
            init,
            iteration: 0,
            elapsed: 0.0,
            early: EarlyState {
                best_iteration: 0,
                best_ndcg: None,
                bad_evals: 0,
            },
            history: Vec::new(),
            best: None,
            stopped_early: false,
        };
        return Ok((run, u, i));
    };
    let ok = |f: &Factors, rows: usize| f.rows() == rows && f.cols() == cols;
    if !ok(&c.users, nu) || !ok(&c.items, ni) {
        return Err(Error::Checkpoint {
            path: c.path,
            message: format!("factor shapes do not match {nu} users x {ni} items x {cols}"),
        });
    }
    let run = RunState {
        started_at: recops_core::parse_timestamp(&c.state.started_at)
            .unwrap_or_else(|| options.clock.now()),
        model_id: c.state.model_id,
        init: c.state.init,
        iteration: c.state.iteration,
        elapsed: c.state.elapsed_seconds,
        early: c.state.early,
        history: c.state.history,
        best: c.best,
        stopped_early: false,
    };
    Ok((run, c.users, c.items))
}

/// The newest checkpoint of `dir` if it continues an unfinished run of these data and
/// hyperparameters. None (said in the log and on stderr) when there is nothing to
/// resume: the run then starts from scratch.
fn resumable_checkpoint(
    home: &Home,
    dir: &std::path::Path,
    fingerprint: &str,
    log: &TrainingLog,
) -> Result<Option<checkpoint::Checkpoint>> {
    let Some(c) = checkpoint::load_latest(dir)? else {
        log.warning(&format!(
            "--resume: nothing to resume (no checkpoint in {}); training from scratch",
            dir.display()
        ));
        return Ok(None);
    };
    if c.state.run_fingerprint != fingerprint {
        return Err(Error::Checkpoint {
            path: c.path,
            message: "it was made with a different config or different data; run without --resume to start over".into(),
        });
    }
    if home
        .model_dir(&c.state.model_id)
        .join("model.json")
        .exists()
    {
        let n = checkpoint::clear(dir);
        log.warning(&format!(
            "--resume: nothing to resume (the checkpoint's run already finished as model {}; \
             {n} stale checkpoints discarded); training from scratch",
            c.state.model_id
        ));
        return Ok(None);
    }
    log.info(&format!(
        "Resuming from checkpoint {} (iteration {})",
        c.path.display(),
        c.state.iteration
    ));
    Ok(Some(c))
}

/// The iterations left: step, divergence check, validation and early stopping,
/// checkpoints.
#[allow(clippy::too_many_arguments)]
fn iterate(
    home: &Home,
    config: &TrainConfig,
    pool: &rayon::ThreadPool,
    engine: &mut Engine<'_>,
    m: &Matrices,
    run: &mut RunState,
    options: &mut TrainOptions<'_>,
    log: &TrainingLog,
) -> Result<()> {
    let mt = config.model_type();
    let tr = config.training();
    let es = tr.early_stopping;
    let iterations = config.iterations();
    let ckpt_dir = home.checkpoints_dir(mt.as_str())?;
    if run.iteration >= iterations || run.early.bad_evals >= es.patience && m.validate {
        run.stopped_early = run.iteration < iterations;
    }
    let mut ran_here = 0usize;
    while run.iteration < iterations && !run.stopped_early {
        run.iteration += 1;
        let it = run.iteration;
        let t0 = Instant::now();
        let loss = pool.install(|| engine.step(it - 1));
        let (u, i) = engine.factors();
        let diverged = |what| Error::Diverged {
            model_type: mt.to_string(),
            iteration: it,
            what,
        };
        if !loss.is_finite() {
            return Err(diverged("loss"));
        }
        if !u.all_finite() {
            return Err(diverged("user factors"));
        }
        if !i.all_finite() {
            return Err(diverged("item factors"));
        }
        let mut report = IterationReport {
            iteration: it,
            iterations,
            loss,
            validation_recall: None,
            validation_ndcg: None,
            wall_time_seconds: 0.0,
        };
        if m.validate && (it.is_multiple_of(es.eval_every) || it == iterations) {
            let v = pool.install(|| evaluate_factors(u, i, &m.fit_bin, &m.val, &[10]));
            let ndcg = v.ndcg(10);
            report.validation_recall = Some(v.recall(10));
            report.validation_ndcg = Some(ndcg);
            if run.early.best_ndcg.is_none_or(|b| ndcg > b + es.min_delta) {
                run.early.best_ndcg = Some(ndcg);
                run.early.best_iteration = it;
                run.early.bad_evals = 0;
                run.best = Some((u.clone(), i.clone()));
            } else {
                run.early.bad_evals += 1;
                run.stopped_early = run.early.bad_evals >= es.patience;
            }
        }
        report.wall_time_seconds = t0.elapsed().as_secs_f64();
        run.elapsed += report.wall_time_seconds;
        log.info(&format!("Iteration {it}/{iterations} | loss={loss:.4}"));
        run.history.push(report);
        if let Some(cb) = options.on_iteration.as_mut() {
            cb(&report);
        }
        if tr.checkpoint_every > 0
            && it.is_multiple_of(tr.checkpoint_every)
            && it < iterations
            && !run.stopped_early
        {
            let state = CheckpointState {
                iteration: it,
                run_fingerprint: m.fingerprint.clone(),
                model_id: run.model_id.clone(),
                started_at: format_timestamp(run.started_at),
                init: run.init.clone(),
                elapsed_seconds: run.elapsed,
                early: run.early.clone(),
                history: run.history.clone(),
            };
            let (u, i) = engine.factors();
            let best = run.best.as_ref().map(|(a, b)| (a, b));
            checkpoint::save(&ckpt_dir, &state, u, i, best)?;
            recops_core::faults::point("training.checkpoint_saved");
        }
        ran_here += 1;
        if options.interrupt_after == Some(ran_here) && it < iterations && !run.stopped_early {
            return Err(Error::Interrupted { iteration: it });
        }
    }
    if run.stopped_early {
        log.info(&format!(
            "Early stopping at iteration {}: best validation ndcg@10={:.4} at iteration {}",
            run.iteration,
            run.early.best_ndcg.unwrap_or(0.0),
            run.early.best_iteration
        ));
    }
    Ok(())
}

/// The test evaluation, the popularity baselines and the gate.
struct Evaluation {
    metrics: Metrics,
    baselines: Vec<Baseline>,
    baseline_name: String,
    baseline: Metrics,
    improvement: f64,
    beats: bool,
}

/// Evaluates the kept factors on the held-out rows (training items filtered) against
/// every popularity baseline, and logs the spec's lines and the gate.
fn evaluate_and_gate(
    config: &TrainConfig,
    split: &Split,
    pool: &rayon::ThreadPool,
    users: &Factors,
    items: &Factors,
    m: &Matrices,
    log: &TrainingLog,
) -> Evaluation {
    let ks = config.evaluation().ks();
    let (metrics, baselines) = pool.install(|| {
        (
            evaluate_factors(users, items, &m.train_bin, &m.test, &ks),
            popularity_baselines(&split.train, &m.train_bin, &m.test, &ks),
        )
    });
    let (baseline_name, baseline) = strongest(&baselines)
        .map(|b| (b.name.clone(), b.metrics.clone()))
        .unwrap_or_default();
    let mut parts = Vec::new();
    for a in &metrics.at {
        parts.push(format!("recall@{}={:.4}", a.k, a.recall));
        parts.push(format!("ndcg@{}={:.4}", a.k, a.ndcg));
        parts.push(format!("coverage@{}={:.4}", a.k, a.coverage));
    }
    log.info(&format!("Evaluation: {}", parts.join(", ")));
    // The spec's two lines (plain popularity first), then the other variants.
    let baseline_line = |b: &Baseline| {
        format!(
            "Baseline ({}): recall@10={:.4}, ndcg@10={:.4}",
            b.name,
            b.metrics.recall(10),
            b.metrics.ndcg(10)
        )
    };
    if let Some(plain) = baselines.first() {
        log.info(&baseline_line(plain));
    }
    // recall@10 over the strongest baseline (the plain one unless a variant beats it).
    let improvement = improvement_pct(metrics.recall(10), baseline.recall(10));
    log.info(&format!("Improvement: {improvement:+.1}%"));
    for b in baselines.iter().skip(1) {
        log.info(&baseline_line(b));
    }
    let beats = metrics.users > 0 && metrics.ndcg(10) > baseline.ndcg(10);
    log.info(&format!(
        "Gate: ndcg@10={:.4} vs strongest baseline {baseline_name} ndcg@10={:.4}: {}",
        metrics.ndcg(10),
        baseline.ndcg(10),
        if beats { "passed" } else { "rejected" }
    ));
    if metrics.users == 0 {
        log.warning("No held-out users: the model cannot be compared with the baseline and will be rejected");
    }
    Evaluation {
        metrics,
        baselines,
        baseline_name,
        baseline,
        improvement,
        beats,
    }
}

/// The model of a finished run.
#[allow(clippy::too_many_arguments)]
fn build_model(
    config: &TrainConfig,
    data: &TrainData<'_>,
    options: &TrainOptions<'_>,
    run: &RunState,
    ev: &Evaluation,
    threads: usize,
    best_iteration: usize,
    users: Factors,
    items: Factors,
) -> CfModel {
    let split = data.split;
    let names = &config.evaluation().metrics;
    CfModel {
        meta: ModelMeta {
            format_version: MODEL_FORMAT_VERSION,
            model_id: run.model_id.clone(),
            model_type: config.model_type(),
            factors: config.factors(),
            hyperparameters: config.hyperparameters(),
            metrics: ev.metrics.to_map(names),
            baseline: ev.baseline.to_map(names),
            baselines: ev
                .baselines
                .iter()
                .map(|b| (b.name.clone(), b.metrics.to_map(names)))
                .collect(),
            tuning: options.tuning.cloned(),
            improvement_pct: ev.improvement,
            data_version: data.data_version.to_owned(),
            created_at: format_timestamp(options.clock.now()),
            n_users: split.n_users(),
            n_items: split.n_items(),
            mapping_fingerprint: mapping_fingerprint(&split.user_ids, &split.item_ids),
            training: TrainingSummary {
                iterations_run: run.iteration,
                best_iteration,
                stopped_early: run.stopped_early,
                training_time_seconds: run.elapsed,
                threads,
                init: run.init.clone(),
                validation_ndcg_at_10: run.early.best_ndcg,
            },
        },
        user_ids: split.user_ids.clone(),
        item_ids: split.item_ids.clone(),
        user_factors: users,
        item_factors: items,
    }
}

/// Writes the model folder whole or not at all: the files go to a hidden sibling
/// `.<model_id>.partial/` (the serving index, then `model.json` last), which is then
/// renamed to `<model_id>/` and the parent synced. A crash leaves no model folder
/// (only a partial one, removed by [`clear_partial_models`]). A folder that already
/// exists is never written again.
fn save_model(home: &Home, split: &Split, model: &CfModel, log: &TrainingLog) -> Result<PathBuf> {
    let model_dir = home.model_dir(&model.meta.model_id);
    if model_dir.exists() {
        return Err(Error::ModelExists {
            model_id: model.meta.model_id.clone(),
        });
    }
    let partial = partial_dir(&model_dir, &model.meta.model_id);
    if partial.exists() {
        std::fs::remove_dir_all(&partial)
            .map_err(|e| Error::io("cannot remove the partial model folder", &partial, e))?;
    }
    recops_core::ensure_dir(&partial)?;
    let marker = partial.join(UNREGISTERED_MARKER);
    std::fs::File::create(&marker)
        .and_then(|f| f.sync_all())
        .map_err(|e| Error::io("cannot write", &marker, e))?;
    crate::ServingIndex::from_split(split).save(&partial)?;
    recops_core::faults::point("training.index_saved");
    model.save(&partial)?;
    recops_core::faults::point("training.files_saved");
    std::fs::rename(&partial, &model_dir)
        .map_err(|e| Error::io("cannot move the model folder into place", &model_dir, e))?;
    recops_core::sync_parent(&model_dir)?;
    log.info(&format!("Model saved to {}", model_dir.display()));
    Ok(model_dir)
}

fn partial_dir(model_dir: &std::path::Path, model_id: &str) -> PathBuf {
    model_dir.with_file_name(format!(".{model_id}.partial"))
}

/// The empty file a model folder written by [`train`] carries until the training job
/// has recorded it in the registry ([`mark_registered`]). A folder with it that the
/// registry does not name was left by a run killed between moving the folder into place
/// and registering it: [`clear_unregistered_models`] removes it. Folders copied in by an
/// operator never carry it, so they are never touched.
pub const UNREGISTERED_MARKER: &str = ".unregistered";

/// Removes the [`UNREGISTERED_MARKER`] of `model_id`'s folder once the registry names
/// the model (registered or rejected).
pub fn mark_registered(home: &Home, model_id: &recops_core::ModelId) -> Result<()> {
    let marker = home.model_dir(model_id).join(UNREGISTERED_MARKER);
    match std::fs::remove_file(&marker) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io("cannot remove", &marker, e)),
    }
}

/// Finishes what runs killed around their registration left: a marked model folder
/// the registry names (`registered(id)`) loses its marker; one it does not name is
/// moved to `.<model_id>.partial/` and removed. Returns how many folders were removed.
/// Call it where no other run can be registering a model (the training job does,
/// under its pipeline lock, with the registry read there).
pub fn clear_unregistered_models(home: &Home, registered: impl Fn(&str) -> bool) -> usize {
    let Ok(entries) = std::fs::read_dir(home.cf_artifacts_dir()) else {
        return 0;
    };
    let mut removed = 0;
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let dir = e.path();
        if name.starts_with('.') || !dir.join(UNREGISTERED_MARKER).is_file() {
            continue;
        }
        if registered(&name) {
            let _ = std::fs::remove_file(dir.join(UNREGISTERED_MARKER));
            continue;
        }
        let aside = partial_dir(&dir, &name);
        if std::fs::rename(&dir, &aside).is_ok() && std::fs::remove_dir_all(&aside).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// Removes the `.<model_id>.partial/` folders that runs killed while writing their
/// model left in `artifacts/cf/`; returns how many. Call it where no other run can be
/// writing a model (the training job does, under its pipeline lock).
pub fn clear_partial_models(home: &Home) -> usize {
    let Ok(entries) = std::fs::read_dir(home.cf_artifacts_dir()) else {
        return 0;
    };
    entries
        .flatten()
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.starts_with('.') && name.ends_with(".partial") && e.path().is_dir()
        })
        .filter(|e| std::fs::remove_dir_all(e.path()).is_ok())
        .count()
}

/// Random, warm-start or embedding initialisation. Returns (description, users, items).
fn initial_factors(
    home: &Home,
    config: &TrainConfig,
    split: &Split,
    fit: &Interactions,
    warm: Option<&CfModel>,
    log: &TrainingLog,
) -> Result<(String, Factors, Factors)> {
    let mt = config.model_type();
    let tr = config.training();
    let k = config.factors();
    let cols = mt.columns(k);
    let (nu, ni) = (split.n_users(), split.n_items());
    let (mut users, mut items) = match mt {
        ModelType::Als => (
            random_factors(nu, k, tr.seed, 1),
            random_factors(ni, k, tr.seed, 2),
        ),
        ModelType::Bpr => {
            let b = Bpr::new(
                BprParams {
                    factors: k,
                    learning_rate: 0.0,
                    regularization: 0.0,
                    verify_negatives: true,
                },
                fit,
                tr.seed,
                1,
            );
            b.into_factors()
        }
    };
    if tr.warm_start {
        match warm {
            Some(old) if old.meta.model_type == mt && old.user_factors.cols() == cols => {
                let (cu, ci) = warm_start_rows(old, &split.user_ids, &split.item_ids, &mut users, &mut items);
                log.info(&format!(
                    "Warm start from {}: {} of {} users and {} of {} items",
                    old.meta.model_id,
                    thousands(cu),
                    thousands(nu),
                    thousands(ci),
                    thousands(ni)
                ));
                return Ok((format!("warm_start:{}", old.meta.model_id), users, items));
            }
            Some(old) => log.warning(&format!(
                "warm_start: model {} is {} with {} columns, this run is {mt} with {cols}; using random init",
                old.meta.model_id,
                old.meta.model_type,
                old.user_factors.cols()
            )),
            None => log.warning(&format!("warm_start: no earlier {mt} model found; using random init")),
        }
    }
    if tr.bert_init {
        let path = home.product_embeddings();
        if !path.exists() {
            log.warning(&format!(
                "bert_init: no product embeddings at {} (run bert-embeddings); using random init",
                path.display()
            ));
        } else {
            match read_product_embeddings(&path) {
                Err(e) => log.warning(&format!(
                    "bert_init: cannot use the product embeddings ({}); using random init",
                    recops_core::error_chain(&e)
                )),
                Ok(emb) => {
                    let target = mean_row_norm(&items, k);
                    let dim = emb.vectors.cols();
                    let n = project_embeddings(&emb, &split.item_ids, k, target, &mut items)?;
                    if n == 0 {
                        log.warning(
                            "bert_init: no item of the data has an embedding; using random init",
                        );
                    } else {
                        log.info(&format!(
                            "BERT init: {} of {} items from product embeddings ({dim} dims -> {k} by SVD)",
                            thousands(n),
                            thousands(ni)
                        ));
                        return Ok(("bert".into(), users, items));
                    }
                }
            }
        }
    }
    Ok(("random".into(), users, items))
}
