//! Hyperparameter tuning on the validation split only: successive halving sized to a
//! time budget.
//!
//! The search never sees the evaluation rows: it carves the same validation hold-out
//! as early stopping from the training part (`holdout_split(&split.train)`), fits on
//! the rest and scores validation ndcg@10.
//!
//! 1. The **reference trial** trains the config's own hyperparameters for the config's
//!    own iteration count (what an untuned run would train). It is never eliminated:
//!    when the search's winner does not beat it on validation ndcg@10 (ties included),
//!    the reference is the choice. So a tuned model is never worse than the defaults
//!    *on validation*; the short rungs alone could not promise that (a low learning
//!    rate looks bad after 10 epochs, and a budget that ends the search early leaves
//!    only short-rung winners).
//! 2. **The plan**: unless the count is given (`tuning.trials`, `--trials N`), the
//!    number of configurations is the largest (up to `max_trials`) whose successive-
//!    halving schedule ([`rungs`]) is estimated to fit in `budget_fill` (0.8) of the
//!    budget left after the reference trial, at the reference trial's measured cost
//!    per iteration scaled to each factor count ([`TrialCost`], [`plan_trials`]).
//!    This is the only place the wall clock enters the plan, once; the count is
//!    recorded as [`TuningResult::planned_trials`] (and in the training log), and
//!    `--trials` with it repeats the search exactly.
//! 3. The configurations are drawn with the run's seed: trial 0 is the config's own
//!    hyperparameters, the others draw `factors` from a list, regularization, alpha
//!    (ALS) or learning rate (BPR) log-uniformly from ranges and, for ALS, the
//!    time-decayed confidence's `half_life_days` from a list (0 = off) (`tuning:`
//!    section). Trial `t`'s draw depends only on the seed and `t`.
//! 4. Rung 0 trains every configuration for `min_iterations`; each later rung keeps the
//!    best `1/eta` (at least one) and trains them for `eta` times more iterations, up to
//!    `max_iterations`. A trial's score is its best validation ndcg@10 over the
//!    iterations it ran (validated every `early_stopping.eval_every` iterations and at
//!    the end), and that iteration is its iteration count.
//! 5. The winner is the best trial of the highest rung reached (ties: the lower trial
//!    number), if it beats the reference. No trial starts once the budget is spent
//!    (`budget_exhausted`); the best so far wins.
//!
//! Same seed, data, threads, search space and planned trial count: the same choice, as
//! long as the budget did not cut the search (the margin of step 2 is there so that
//! it does not).

use std::time::Instant;

use recops_data::{Split, holdout_split};
use serde::{Deserialize, Serialize};

use crate::als::Als;
use crate::bpr::Bpr;
use crate::error::{Error, Result};
use crate::eval::evaluate_factors;
use crate::matrix::Interactions;
use crate::model::ModelType;
use crate::rng::Rng;
use crate::trainer::TrainConfig;

/// `tuning:` of `config/als_config.yaml` and `config/bpr_config.yaml`. Ranges are
/// `[low, high]`; unset ones take the model type's defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct TuningSection {
    /// Tune before every training run (false; `model-training --tune` turns it on for
    /// one run).
    #[serde(default)]
    pub enabled: bool,
    /// Wall-clock budget of the search per model type, seconds (300).
    #[serde(default)]
    pub budget_seconds: Option<f64>,
    /// Configurations drawn. Unset (the default): derived from the budget, see
    /// [`plan_trials`]; set: exactly this many (what `--trials N` does for one run).
    #[serde(default)]
    pub trials: Option<usize>,
    /// The most configurations a budget-derived plan draws (300).
    #[serde(default)]
    pub max_trials: Option<usize>,
    /// Share of the budget the plan fills, the rest being the safety margin (0.8).
    #[serde(default)]
    pub budget_fill: Option<f64>,
    /// Halving rate: each rung keeps 1/eta of the trials (3).
    #[serde(default)]
    pub eta: Option<usize>,
    /// Candidate factor counts ([16, 32, 64, 128]).
    #[serde(default)]
    pub factors: Option<Vec<usize>>,
    /// Regularization range (ALS [0.001, 10], BPR [0.00001, 0.1]).
    #[serde(default)]
    pub regularization: Option<[f32; 2]>,
    /// Confidence alpha range, ALS only ([1, 40]).
    #[serde(default)]
    pub alpha: Option<[f32; 2]>,
    /// Learning rate range, BPR only ([0.005, 0.2]).
    #[serde(default)]
    pub learning_rate: Option<[f32; 2]>,
    /// Candidate half lives of the time-decayed confidence in days, ALS only; `0` is
    /// "off" (no decay) ([0, 7, 30, 90, 365]). BPR has no confidence weights to decay.
    #[serde(default)]
    pub half_life_days: Option<Vec<f64>>,
    /// Iterations of the first rung (ALS 3, BPR 10).
    #[serde(default)]
    pub min_iterations: Option<usize>,
    /// Iterations of the last rung (ALS 30, BPR 150).
    #[serde(default)]
    pub max_iterations: Option<usize>,
}

/// The search space and schedule with every default filled in.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TuningPlan {
    /// Seconds.
    pub budget_seconds: f64,
    /// Configurations drawn; `None`: derived from the budget ([`plan_trials`]).
    pub trials: Option<usize>,
    /// The most configurations a budget-derived plan draws.
    pub max_trials: usize,
    /// Share of the budget a budget-derived plan fills.
    pub budget_fill: f64,
    /// Halving rate.
    pub eta: usize,
    /// Candidate factor counts.
    pub factors: Vec<usize>,
    /// Regularization range.
    pub regularization: [f32; 2],
    /// ALS alpha range, or BPR learning-rate range.
    pub rate: [f32; 2],
    /// Candidate half lives (ALS; `None` = off); empty for BPR.
    pub half_lives: Vec<Option<f64>>,
    /// Iterations of the first rung.
    pub min_iterations: usize,
    /// Iterations of the last rung.
    pub max_iterations: usize,
}

impl TuningSection {
    /// The plan for `model_type`, defaults filled in.
    pub fn plan(&self, model_type: ModelType) -> TuningPlan {
        let als = model_type == ModelType::Als;
        TuningPlan {
            budget_seconds: self.budget_seconds.unwrap_or(300.0),
            trials: self.trials,
            max_trials: self.max_trials.unwrap_or(300),
            budget_fill: self.budget_fill.unwrap_or(0.8),
            eta: self.eta.unwrap_or(3),
            factors: self
                .factors
                .clone()
                .unwrap_or_else(|| vec![16, 32, 64, 128]),
            regularization: self.regularization.unwrap_or(if als {
                [0.001, 10.0]
            } else {
                [0.000_01, 0.1]
            }),
            rate: if als {
                self.alpha.unwrap_or([1.0, 40.0])
            } else {
                self.learning_rate.unwrap_or([0.005, 0.2])
            },
            half_lives: if als {
                self.half_life_days
                    .clone()
                    .unwrap_or_else(|| vec![0.0, 7.0, 30.0, 90.0, 365.0])
                    .into_iter()
                    .map(|h| Some(h).filter(|&h| h > 0.0))
                    .collect()
            } else {
                Vec::new()
            },
            min_iterations: self.min_iterations.unwrap_or(if als { 3 } else { 10 }),
            max_iterations: self.max_iterations.unwrap_or(if als { 30 } else { 150 }),
        }
    }

    /// Problems of this section for `model_type`, as (key, message).
    pub fn problems(&self, model_type: ModelType) -> Vec<(String, String)> {
        let mut p = Vec::new();
        let mut check = |ok: bool, key: &str, msg: &str| {
            if !ok {
                p.push((format!("tuning.{key}"), msg.to_owned()));
            }
        };
        let range_ok = |r: &Option<[f32; 2]>| {
            r.is_none_or(|[lo, hi]| lo.is_finite() && hi.is_finite() && lo > 0.0 && lo <= hi)
        };
        check(
            self.budget_seconds.is_none_or(|b| b.is_finite() && b > 0.0),
            "budget_seconds",
            "expected a number of seconds > 0",
        );
        check(
            self.trials.is_none_or(|t| (1..=1000).contains(&t)),
            "trials",
            "expected an integer from 1 to 1000",
        );
        check(
            self.max_trials.is_none_or(|t| (1..=1000).contains(&t)),
            "max_trials",
            "expected an integer from 1 to 1000",
        );
        check(
            self.budget_fill
                .is_none_or(|f| f.is_finite() && f > 0.0 && f <= 1.0),
            "budget_fill",
            "expected a share of the budget, 0 < budget_fill <= 1",
        );
        check(
            self.half_life_days
                .as_ref()
                .is_none_or(|h| !h.is_empty() && h.iter().all(|d| d.is_finite() && *d >= 0.0)),
            "half_life_days",
            "expected a non-empty list of days >= 0 (0 = no decay)",
        );
        check(
            self.eta.is_none_or(|e| (2..=10).contains(&e)),
            "eta",
            "expected an integer from 2 to 10",
        );
        check(
            self.factors
                .as_ref()
                .is_none_or(|f| !f.is_empty() && f.iter().all(|k| (1..=4096).contains(k))),
            "factors",
            "expected a non-empty list of integers from 1 to 4096",
        );
        for (key, r) in [
            ("regularization", &self.regularization),
            ("alpha", &self.alpha),
            ("learning_rate", &self.learning_rate),
        ] {
            check(
                range_ok(r),
                key,
                "expected [low, high] with 0 < low <= high",
            );
        }
        match model_type {
            ModelType::Als => check(
                self.learning_rate.is_none(),
                "learning_rate",
                "is a BPR setting; ALS tunes alpha",
            ),
            ModelType::Bpr => {
                check(
                    self.alpha.is_none(),
                    "alpha",
                    "is an ALS setting; BPR tunes learning_rate",
                );
                check(
                    self.half_life_days.is_none(),
                    "half_life_days",
                    "is an ALS setting; BPR has no confidence weights to decay",
                );
            }
        }
        let plan = self.plan(model_type);
        check(
            plan.min_iterations >= 1
                && plan.min_iterations <= plan.max_iterations
                && plan.max_iterations <= 100_000,
            "min_iterations",
            "expected 1 <= min_iterations <= max_iterations <= 100000",
        );
        p
    }
}

/// The hyperparameters a trial tries.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TrialParams {
    /// Latent factors.
    pub factors: usize,
    /// Regularization.
    pub regularization: f32,
    /// ALS confidence alpha.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alpha: Option<f32>,
    /// BPR learning rate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub learning_rate: Option<f32>,
    /// ALS time-decayed confidence half life, days (none: no decay).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub half_life_days: Option<f64>,
}

/// One trial at one rung.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Trial {
    /// Trial number (0 = the config's own hyperparameters).
    pub trial: usize,
    /// Rung (0-based; 0 for the reference trial).
    pub rung: usize,
    /// The reference trial: the config's own hyperparameters for the config's own
    /// iteration count, run before the search and never eliminated.
    #[serde(default)]
    pub reference: bool,
    /// What it tried.
    pub params: TrialParams,
    /// Iterations it ran at this rung.
    pub iterations_run: usize,
    /// Its best iteration (the iteration count it proposes).
    pub best_iteration: usize,
    /// Best validation ndcg@10 (`-inf` when it diverged).
    pub validation_ndcg: f64,
    /// Validation recall@10 at the best iteration.
    pub validation_recall: f64,
    /// Seconds.
    pub seconds: f64,
}

/// The outcome of a search (stored in `model.json` as `tuning`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TuningResult {
    /// The chosen hyperparameters.
    pub chosen: TrialParams,
    /// The chosen iteration count.
    pub iterations: usize,
    /// The winner's validation ndcg@10.
    pub validation_ndcg: f64,
    /// The reference trial's validation ndcg@10 (the config's own hyperparameters and
    /// iteration count; none when it diverged). `validation_ndcg` is never below it.
    pub default_validation_ndcg: Option<f64>,
    /// True when the reference trial (the configured defaults) is the choice.
    #[serde(default)]
    pub chose_defaults: bool,
    /// Trials run (over all rungs, the reference trial included).
    pub trials_run: usize,
    /// Configurations the search drew: the plan. `--trials N` with this number (and
    /// the same seed, data, threads and search space) repeats the search exactly.
    #[serde(default)]
    pub planned_trials: usize,
    /// True when `planned_trials` was derived from the budget and the reference
    /// trial's measured cost ([`plan_trials`]); false when it was given (`--trials`,
    /// `tuning.trials`).
    #[serde(default)]
    pub trials_from_budget: bool,
    /// The seed.
    pub seed: u64,
    /// The budget, seconds.
    pub budget_seconds: f64,
    /// Seconds spent.
    pub seconds: f64,
    /// True when the budget ended the search before the last rung finished.
    pub budget_exhausted: bool,
}

fn log_uniform(rng: &mut Rng, [lo, hi]: [f32; 2]) -> f32 {
    let u = f64::from(rng.unit_f32());
    (f64::from(lo) * (f64::from(hi) / f64::from(lo)).powf(u)) as f32
}

/// The config's own hyperparameters (trial 0 and the reference trial).
fn own_params(config: &TrainConfig) -> TrialParams {
    match config {
        TrainConfig::Als(c) => TrialParams {
            factors: c.model.factors,
            regularization: c.model.regularization,
            alpha: Some(c.model.alpha),
            learning_rate: None,
            half_life_days: c.model.half_life_days,
        },
        TrainConfig::Bpr(c) => TrialParams {
            factors: c.model.factors,
            regularization: c.model.regularization,
            alpha: None,
            learning_rate: Some(c.model.learning_rate),
            half_life_days: None,
        },
    }
}

/// The candidate factor counts no larger than the item count.
fn usable_factors(plan: &TuningPlan, n_items: usize) -> Vec<usize> {
    let factors: Vec<usize> = plan
        .factors
        .iter()
        .copied()
        .filter(|&k| k <= n_items)
        .collect();
    if factors.is_empty() {
        vec![n_items.max(1)]
    } else {
        factors
    }
}

/// Draws `trials` configurations (trial 0: the config's own). Trial `t`'s draw depends
/// only on the seed and `t`, so a larger plan extends a smaller one.
fn draw(
    config: &TrainConfig,
    plan: &TuningPlan,
    seed: u64,
    n_items: usize,
    trials: usize,
) -> Vec<TrialParams> {
    let factors = usable_factors(plan, n_items);
    let first = own_params(config);
    let mut out = vec![first];
    for t in 1..trials {
        let mut rng = Rng::stream(seed, &[0x7475_6e69_6e67, t as u64]);
        let k = factors[rng.below(factors.len() as u32) as usize];
        let reg = log_uniform(&mut rng, plan.regularization);
        let rate = log_uniform(&mut rng, plan.rate);
        let half_life_days = if plan.half_lives.is_empty() {
            None
        } else {
            plan.half_lives[rng.below(plan.half_lives.len() as u32) as usize]
        };
        out.push(TrialParams {
            factors: k,
            regularization: reg,
            alpha: first.alpha.map(|_| rate),
            learning_rate: first.learning_rate.map(|_| rate),
            half_life_days,
        });
    }
    out
}

/// The successive-halving schedule of `trials` configurations: (configurations,
/// iterations) per rung, as [`tune`] runs it when the budget does not cut it.
pub fn rungs(trials: usize, plan: &TuningPlan) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let (mut alive, mut iterations) = (trials.max(1), plan.min_iterations.max(1));
    loop {
        out.push((alive, iterations));
        if iterations >= plan.max_iterations || alive <= 1 && out.len() > 1 {
            return out;
        }
        alive = alive.div_ceil(plan.eta.max(2)).max(1);
        iterations = (iterations * plan.eta.max(2)).min(plan.max_iterations);
    }
}

/// What the reference trial cost, the basis of a budget-derived plan.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrialCost {
    /// Seconds to build a trial's matrix and model before its first iteration.
    pub setup_seconds: f64,
    /// Seconds per iteration (validation included) at `factors`.
    pub seconds_per_iteration: f64,
    /// The reference trial's factor count.
    pub factors: usize,
    /// An iteration at k factors costs `(k / factors)^exponent` times the reference's
    /// ([`TrialCost::exponent_for`]).
    pub exponent: f64,
}

impl TrialCost {
    /// The cost exponent of `model_type`: 2 for ALS (its Gram and row solves are
    /// quadratic in k; measured on ml-100k, 1.5 underestimated the search by a third),
    /// 1 for BPR (an SGD step and the scoring are linear in k).
    pub fn exponent_for(model_type: ModelType) -> f64 {
        match model_type {
            ModelType::Als => 2.0,
            ModelType::Bpr => 1.0,
        }
    }

    /// Estimated seconds of the schedule of `trials` configurations whose factor
    /// counts are drawn from `factors`, an iteration at k factors costing
    /// `(k / reference k)^exponent` times the reference's, averaged over `factors`.
    pub fn schedule_seconds(&self, trials: usize, plan: &TuningPlan, factors: &[usize]) -> f64 {
        let k0 = self.factors.max(1) as f64;
        let scale = factors
            .iter()
            .map(|&k| (k as f64 / k0).powf(self.exponent))
            .sum::<f64>()
            / factors.len().max(1) as f64;
        rungs(trials, plan)
            .iter()
            .map(|&(n, it)| {
                n as f64 * (self.setup_seconds + it as f64 * self.seconds_per_iteration * scale)
            })
            .sum()
    }
}

/// The number of configurations to draw: the largest count from 1 to
/// `plan.max_trials` whose schedule ([`rungs`]) is estimated to fit in `seconds`.
/// Computed once per search from the reference trial's measured cost and recorded
/// as [`TuningResult::planned_trials`]: the only way the wall clock enters the plan.
pub fn plan_trials(plan: &TuningPlan, cost: &TrialCost, factors: &[usize], seconds: f64) -> usize {
    let fits = |n: usize| cost.schedule_seconds(n, plan, factors) <= seconds;
    // The estimate grows with n: binary search for the last count that fits.
    let (mut lo, mut hi) = (1usize, plan.max_trials.max(1));
    if fits(hi) {
        return hi;
    }
    while lo + 1 < hi {
        let mid = lo + (hi - lo) / 2;
        if fits(mid) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    lo
}

struct Scored {
    /// Seconds before the first iteration (matrix, model).
    setup_seconds: f64,
    ndcg: f64,
    recall: f64,
    best_iteration: usize,
    iterations_run: usize,
}

/// What every trial trains and validates on.
struct TrialData<'a> {
    fit: &'a [recops_data::Entry],
    shape: (usize, usize),
    fit_bin: &'a Interactions,
    val: &'a Interactions,
    seed: u64,
    threads: usize,
}

/// Trains one configuration for `iterations` on the fit part, validating on `val`.
fn run_trial(
    config: &TrainConfig,
    params: &TrialParams,
    iterations: usize,
    d: &TrialData<'_>,
) -> Result<Scored> {
    let TrialData {
        fit,
        shape,
        fit_bin,
        val,
        seed,
        threads,
    } = *d;
    let (nu, ni) = shape;
    let every = config.training().early_stopping.eval_every.max(1);
    let t0 = Instant::now();
    let mut best = Scored {
        setup_seconds: 0.0,
        ndcg: f64::NEG_INFINITY,
        recall: 0.0,
        best_iteration: 0,
        iterations_run: 0,
    };
    let score = |it: usize, users: &crate::Factors, items: &crate::Factors, best: &mut Scored| {
        let m = evaluate_factors(users, items, fit_bin, val, &[10]);
        if m.ndcg(10) > best.ndcg {
            best.ndcg = m.ndcg(10);
            best.recall = m.recall(10);
            best.best_iteration = it;
        }
    };
    match config {
        TrainConfig::Als(c) => {
            let alpha = params.alpha.unwrap_or(c.model.alpha);
            let newest = crate::recency::newest_timestamp(fit);
            let conf = Interactions::from_entries(nu, ni, fit, |e| {
                crate::recency::cell_confidence(e, alpha, newest, params.half_life_days)
            })?;
            let mut p = c.model.params();
            p.factors = params.factors;
            p.regularization = params.regularization;
            let mut als = Als::new(p, &conf, seed);
            best.setup_seconds = t0.elapsed().as_secs_f64();
            for it in 1..=iterations {
                let loss = als.iterate();
                best.iterations_run = it;
                if !loss.is_finite() || !als.users().all_finite() || !als.items().all_finite() {
                    break;
                }
                if it % every == 0 || it == iterations {
                    score(it, als.users(), als.items(), &mut best);
                }
            }
        }
        TrainConfig::Bpr(c) => {
            let mut p = c.model.params();
            p.factors = params.factors;
            p.regularization = params.regularization;
            p.learning_rate = params.learning_rate.unwrap_or(c.model.learning_rate);
            let mut bpr = Bpr::new(p, fit_bin, seed, threads);
            best.setup_seconds = t0.elapsed().as_secs_f64();
            for it in 1..=iterations {
                let loss = bpr.epoch((it - 1) as u64).loss;
                best.iterations_run = it;
                if !loss.is_finite() || !bpr.users().all_finite() || !bpr.items().all_finite() {
                    break;
                }
                if it % every == 0 || it == iterations {
                    score(it, bpr.users(), bpr.items(), &mut best);
                }
            }
        }
    }
    Ok(best)
}

/// Overrides of the config's `tuning:` section for one search.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TuneOptions {
    /// The budget, seconds (`--budget`; default `tuning.budget_seconds`).
    pub budget_seconds: Option<f64>,
    /// Draw exactly this many configurations instead of deriving the count from the
    /// budget (`--trials`; default `tuning.trials`, else derived).
    pub trials: Option<usize>,
}

/// Runs the search for `config` on the training part of `split` (see the module docs).
/// `options` override the section's budget and trial count; `on_trial` sees every
/// trial.
pub fn tune(
    config: &TrainConfig,
    split: &Split,
    options: &TuneOptions,
    on_trial: &mut dyn FnMut(&Trial),
) -> Result<TuningResult> {
    let mt = config.model_type();
    let mut plan = config.tuning().plan(mt);
    if let Some(b) = options.budget_seconds {
        plan.budget_seconds = b;
    }
    if let Some(n) = options.trials {
        plan.trials = Some(n.max(1));
    }
    let seed = config.training().seed;
    let threads = config.training().effective_threads();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| Error::ThreadPool {
            threads,
            message: e.to_string(),
        })?;
    let (fit, val) = holdout_split(&split.train);
    let (nu, ni) = (split.n_users(), split.n_items());
    if fit.is_empty() || val.is_empty() || ni == 0 {
        return Err(Error::EmptyData {
            model_type: mt.to_string(),
            detail: "no user has enough training interactions for a validation hold-out to tune on"
                .into(),
        });
    }
    let fit_bin = Interactions::from_entries(nu, ni, &fit, |_| 1.0)?;
    let val_m = Interactions::from_entries(nu, ni, &val, |_| 1.0)?;
    let data = TrialData {
        fit: &fit,
        shape: (nu, ni),
        fit_bin: &fit_bin,
        val: &val_m,
        seed,
        threads,
    };
    let started = Instant::now();
    let own = own_params(config);
    // The reference trial: the config as an untuned run would train it.
    let reference = {
        let t0 = Instant::now();
        let s = pool.install(|| run_trial(config, &own, config.iterations(), &data))?;
        report_reference(on_trial, &own, &s, t0);
        s
    };
    // The plan: given, or the most configurations whose schedule fits the budget's
    // share left after the reference trial, at the reference's measured cost.
    let (planned, from_budget) = match plan.trials {
        Some(n) => (n, false),
        None => {
            let spent = started.elapsed().as_secs_f64();
            let cost = TrialCost {
                setup_seconds: reference.setup_seconds,
                seconds_per_iteration: (spent - reference.setup_seconds).max(0.0)
                    / reference.iterations_run.max(1) as f64,
                factors: own.factors,
                exponent: TrialCost::exponent_for(mt),
            };
            let room = plan.budget_seconds * plan.budget_fill - spent;
            let n = plan_trials(&plan, &cost, &usable_factors(&plan, ni), room);
            tracing::info!(
                model_type = %mt,
                trials = n,
                reference_seconds = spent,
                seconds_per_iteration = cost.seconds_per_iteration,
                budget_seconds = plan.budget_seconds,
                "tuning plan derived from the budget"
            );
            (n, true)
        }
    };
    let candidates = draw(config, &plan, seed, ni, planned);
    let mut alive: Vec<usize> = (0..candidates.len()).collect();
    let mut iterations = plan.min_iterations;
    let mut rung = 0usize;
    let mut trials_run = 1usize;
    let mut budget_exhausted = false;
    // (trial, scored) of the highest rung with at least one result.
    let mut top: Vec<(usize, Scored)> = Vec::new();
    loop {
        let mut results: Vec<(usize, Scored)> = Vec::new();
        for &t in &alive {
            if started.elapsed().as_secs_f64() >= plan.budget_seconds {
                budget_exhausted = true;
                break;
            }
            let t0 = Instant::now();
            let s = pool.install(|| run_trial(config, &candidates[t], iterations, &data))?;
            trials_run += 1;
            on_trial(&Trial {
                trial: t,
                rung,
                reference: false,
                params: candidates[t],
                iterations_run: s.iterations_run,
                best_iteration: s.best_iteration,
                validation_ndcg: s.ndcg,
                validation_recall: s.recall,
                seconds: t0.elapsed().as_secs_f64(),
            });
            results.push((t, s));
        }
        if !results.is_empty() {
            results.sort_by(|a, b| b.1.ndcg.total_cmp(&a.1.ndcg).then(a.0.cmp(&b.0)));
            top = results;
        }
        if budget_exhausted || iterations >= plan.max_iterations || top.len() <= 1 && rung > 0 {
            break;
        }
        let keep = top.len().div_ceil(plan.eta).max(1);
        alive = top.iter().take(keep).map(|(t, _)| *t).collect();
        alive.sort_unstable();
        iterations = (iterations * plan.eta).min(plan.max_iterations);
        rung += 1;
    }
    let default_ndcg = Some(reference.ndcg).filter(|v| v.is_finite());
    // The search's winner only when it beats the reference on validation.
    let (winner, best, chose_defaults) = match top.into_iter().next() {
        Some((t, s)) if s.ndcg > reference.ndcg => (t, s, false),
        _ if reference.ndcg.is_finite() => (0, reference, true),
        _ => {
            return Err(Error::EmptyData {
                model_type: mt.to_string(),
                detail: "every tuning trial diverged or the budget ended before the search".into(),
            });
        }
    };
    Ok(TuningResult {
        chosen: candidates[winner],
        iterations: best.best_iteration.max(1),
        validation_ndcg: best.ndcg,
        default_validation_ndcg: default_ndcg,
        chose_defaults,
        trials_run,
        planned_trials: planned,
        trials_from_budget: from_budget,
        seed,
        budget_seconds: plan.budget_seconds,
        seconds: started.elapsed().as_secs_f64(),
        budget_exhausted,
    })
}

/// Reports the reference trial to `on_trial`.
fn report_reference(
    on_trial: &mut dyn FnMut(&Trial),
    params: &TrialParams,
    s: &Scored,
    t0: Instant,
) {
    on_trial(&Trial {
        trial: 0,
        rung: 0,
        reference: true,
        params: *params,
        iterations_run: s.iterations_run,
        best_iteration: s.best_iteration,
        validation_ndcg: s.ndcg,
        validation_recall: s.recall,
        seconds: t0.elapsed().as_secs_f64(),
    });
}

impl TrainConfig {
    /// This config with the tuned hyperparameters and iteration count.
    pub fn with_tuned(&self, r: &TuningResult) -> TrainConfig {
        let mut c = self.clone();
        match &mut c {
            TrainConfig::Als(a) => {
                a.model.factors = r.chosen.factors;
                a.model.regularization = r.chosen.regularization;
                a.model.alpha = r.chosen.alpha.unwrap_or(a.model.alpha);
                a.model.half_life_days = r.chosen.half_life_days;
                a.model.iterations = r.iterations;
            }
            TrainConfig::Bpr(b) => {
                b.model.factors = r.chosen.factors;
                b.model.regularization = r.chosen.regularization;
                b.model.learning_rate = r.chosen.learning_rate.unwrap_or(b.model.learning_rate);
                b.model.iterations = r.iterations;
            }
        }
        c
    }

    /// The `tuning:` section.
    pub fn tuning(&self) -> &TuningSection {
        match self {
            TrainConfig::Als(c) => &c.tuning,
            TrainConfig::Bpr(c) => &c.tuning,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{AlsConfig, BprConfig};
    use recops_core::{ConfigFormat, Validate, parse_config};
    use recops_data::{RawInteraction, temporal_split};
    use std::collections::HashMap;
    use std::path::Path;

    fn parse<T: serde::de::DeserializeOwned + Validate>(text: &str) -> recops_core::Result<T> {
        parse_config(
            text,
            Path::new("config/x.yaml"),
            ConfigFormat::Yaml,
            &HashMap::<String, String>::new(),
        )
    }

    /// Four taste clusters with popularity inside each (seeded LCG).
    fn split() -> Split {
        let mut s = 3u64;
        let mut next = |n: u64| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (s >> 33) % n
        };
        let mut rows = Vec::new();
        for u in 0..120i64 {
            for t in 0..14i64 {
                let item = if next(100) < 80 {
                    (u % 4) + 4 * (next(10) as i64).min(next(10) as i64)
                } else {
                    next(40) as i64
                };
                rows.push(RawInteraction {
                    user_id: u,
                    item_id: item,
                    rating: 1.0 + next(5) as f32,
                    timestamp: t * 86_400 + next(1000) as i64,
                });
            }
        }
        temporal_split(&rows)
    }

    fn als(seed: u64) -> TrainConfig {
        let c: AlsConfig = parse(&format!(
            "model:\n  factors: 8\ntraining:\n  seed: {seed}\n  threads: 1\n  bert_init: false\n\
             tuning:\n  trials: 6\n  factors: [2, 4, 8]\n  min_iterations: 2\n  max_iterations: 8\n  budget_seconds: 100000\n"
        ))
        .unwrap();
        TrainConfig::Als(c)
    }

    #[test]
    fn evaluation_rows_never_change_the_choice_and_a_seed_fixes_it() {
        let clean = split();
        let mut trials = Vec::new();
        let a = tune(&als(42), &clean, &TuneOptions::default(), &mut |t| {
            trials.push(*t)
        })
        .unwrap();
        assert!(!a.budget_exhausted);
        // The reference first (15 iterations, the config's), then 6 at rung 0, 2 at
        // rung 1 (2 -> 6 iterations), 1 at rung 2 (8).
        assert!(trials[0].reference && trials[0].iterations_run == 15);
        let search = || trials.iter().filter(|t| !t.reference);
        assert_eq!(search().filter(|t| t.rung == 0).count(), 6);
        assert_eq!(search().filter(|t| t.rung == 1).count(), 2);
        assert_eq!(search().filter(|t| t.rung == 2).count(), 1);
        assert_eq!(a.trials_run, 10);
        assert_eq!(trials[1].params.factors, 8, "trial 0 is the config's own");
        assert!(a.validation_ndcg >= a.default_validation_ndcg.unwrap());
        // Poison the evaluation rows: every held-out cell moved to another item.
        let mut poisoned = clean.clone();
        let n = poisoned.n_items() as u32;
        for e in &mut poisoned.test {
            e.item = (e.item * 7 + 3) % n;
            e.rating = 5.0;
        }
        assert_ne!(poisoned.test, clean.test);
        let b = tune(&als(42), &poisoned, &TuneOptions::default(), &mut |_| {}).unwrap();
        assert_eq!((a.chosen, a.iterations), (b.chosen, b.iterations));
        assert_eq!(a.validation_ndcg, b.validation_ndcg);
        // Same seed, same choice; another seed draws other candidates.
        let again = tune(&als(42), &clean, &TuneOptions::default(), &mut |_| {}).unwrap();
        assert_eq!(again.chosen, a.chosen);
        let mut other = Vec::new();
        tune(&als(7), &clean, &TuneOptions::default(), &mut |t| {
            other.push(t.params)
        })
        .unwrap();
        assert_ne!(
            other[1..6],
            trials[1..6].iter().map(|t| t.params).collect::<Vec<_>>()[..]
        );
        // The choice applied to the config.
        match als(42).with_tuned(&a) {
            TrainConfig::Als(c) => {
                assert_eq!(c.model.factors, a.chosen.factors);
                assert_eq!(c.model.iterations, a.iterations);
                assert_eq!(Some(c.model.alpha), a.chosen.alpha);
            }
            TrainConfig::Bpr(_) => unreachable!(),
        }
    }

    #[test]
    fn the_configured_defaults_are_kept_when_the_search_does_not_beat_them() {
        // A search crippled to 1 iteration per trial cannot beat the defaults trained
        // for the config's 15 iterations: the reference trial is the choice.
        let c: AlsConfig = parse(
            "model:\n  factors: 8\ntraining:\n  threads: 1\n  bert_init: false\n\
             tuning:\n  trials: 4\n  factors: [2]\n  min_iterations: 1\n  max_iterations: 1\n",
        )
        .unwrap();
        let config = TrainConfig::Als(c);
        let mut seen = Vec::new();
        let r = tune(&config, &split(), &TuneOptions::default(), &mut |t| {
            seen.push(*t)
        })
        .unwrap();
        let reference = seen.iter().find(|t| t.reference).unwrap();
        let best_search = seen
            .iter()
            .filter(|t| !t.reference)
            .map(|t| t.validation_ndcg)
            .fold(f64::NEG_INFINITY, f64::max);
        assert!(reference.validation_ndcg > best_search, "{seen:?}");
        assert!(r.chose_defaults);
        assert_eq!(r.chosen.factors, 8);
        assert_eq!(r.iterations, reference.best_iteration);
        assert!(r.iterations > 1);
        assert_eq!(Some(r.validation_ndcg), r.default_validation_ndcg);
    }

    #[test]
    fn bpr_tunes_the_learning_rate_within_the_budget_schedule() {
        let c: BprConfig = parse(
            "model:\n  factors: 4\ntraining:\n  threads: 1\n  bert_init: false\n\
             tuning:\n  trials: 3\n  factors: [4]\n  learning_rate: [0.01, 0.1]\n  min_iterations: 5\n  max_iterations: 10\n  eta: 2\n",
        )
        .unwrap();
        let mut seen = Vec::new();
        let r = tune(
            &TrainConfig::Bpr(c),
            &split(),
            &TuneOptions::default(),
            &mut |t| seen.push(*t),
        )
        .unwrap();
        assert!(r.chosen.learning_rate.is_some() && r.chosen.alpha.is_none());
        assert!(seen.iter().all(|t| t.params.half_life_days.is_none()));
        assert!(
            seen.iter()
                .filter(|t| !t.reference && t.trial > 0)
                .all(|t| (0.01..=0.1).contains(&t.params.learning_rate.unwrap()))
        );
        // The search's rungs stop at 10 epochs; the reference trial runs the config's 100.
        let cap = if r.chose_defaults { 100 } else { 10 };
        assert!(r.iterations <= cap && r.validation_ndcg > 0.0, "{r:?}");
        assert!(r.validation_ndcg >= r.default_validation_ndcg.unwrap());
    }

    #[test]
    fn a_budget_derived_plan_is_recorded_and_trials_repeats_it_exactly() {
        // No `trials`: the count comes from the budget (capped by max_trials on this
        // huge budget, so the test does not depend on the machine's speed).
        let c: AlsConfig = parse(
            "model:\n  factors: 8\ntraining:\n  threads: 1\n  bert_init: false\n\
             tuning:\n  max_trials: 7\n  factors: [2, 4, 8]\n  min_iterations: 2\n  max_iterations: 8\n  budget_seconds: 100000\n",
        )
        .unwrap();
        let config = TrainConfig::Als(c);
        let mut seen = Vec::new();
        let a = tune(&config, &split(), &TuneOptions::default(), &mut |t| {
            seen.push(*t)
        })
        .unwrap();
        assert!(a.trials_from_budget && !a.budget_exhausted, "{a:?}");
        assert_eq!(a.planned_trials, 7);
        // Every rung of the planned schedule ran, plus the reference trial.
        let schedule = rungs(7, &config.tuning().plan(ModelType::Als));
        assert_eq!(schedule, vec![(7, 2), (3, 6), (1, 8)]);
        assert_eq!(a.trials_run, 1 + 7 + 3 + 1);
        assert_eq!(seen.len(), a.trials_run, "every trial is reported");
        // The half life is searched: with and without decay among the draws.
        let drawn = || seen.iter().filter(|t| !t.reference && t.trial > 0);
        assert!(
            drawn().any(|t| t.params.half_life_days.is_none()),
            "{seen:?}"
        );
        assert!(
            drawn().any(|t| t.params.half_life_days.is_some()),
            "{seen:?}"
        );
        // `--trials` with the recorded count, on poisoned evaluation rows: the same
        // search and the same choice.
        let mut poisoned = split();
        let n = poisoned.n_items() as u32;
        for e in &mut poisoned.test {
            e.item = (e.item * 5 + 1) % n;
        }
        let mut again = Vec::new();
        let repeat = TuneOptions {
            budget_seconds: None,
            trials: Some(a.planned_trials),
        };
        let b = tune(&config, &poisoned, &repeat, &mut |t| again.push(*t)).unwrap();
        assert!(!b.trials_from_budget);
        assert_eq!(
            (a.chosen, a.iterations, a.validation_ndcg, a.chose_defaults),
            (b.chosen, b.iterations, b.validation_ndcg, b.chose_defaults)
        );
        let scores = |v: &[Trial]| {
            v.iter()
                .map(|t| (t.trial, t.rung, t.validation_ndcg))
                .collect::<Vec<_>>()
        };
        assert_eq!(scores(&seen), scores(&again));
        // The chosen half life goes into the config the model is trained with.
        match config.with_tuned(&a) {
            TrainConfig::Als(c) => assert_eq!(c.model.half_life_days, a.chosen.half_life_days),
            TrainConfig::Bpr(_) => unreachable!(),
        }
    }

    #[test]
    fn a_spent_budget_ends_the_search_cleanly_with_the_defaults() {
        // The reference trial alone outlasts a budget of a nanosecond: no search trial
        // starts, the plan is the smallest, and the configured defaults are the choice.
        let c: AlsConfig = parse(
            "model:\n  factors: 8\ntraining:\n  threads: 1\n  bert_init: false\n\
             tuning:\n  factors: [4]\n  budget_seconds: 0.000000001\n",
        )
        .unwrap();
        let mut seen = Vec::new();
        let r = tune(
            &TrainConfig::Als(c),
            &split(),
            &TuneOptions::default(),
            &mut |t| seen.push(*t),
        )
        .unwrap();
        assert!(r.budget_exhausted && r.chose_defaults, "{r:?}");
        assert_eq!((r.trials_run, r.planned_trials), (1, 1));
        assert_eq!(seen.len(), 1);
        assert!(seen[0].reference);
        assert_eq!(Some(r.validation_ndcg), r.default_validation_ndcg);
    }

    #[test]
    fn the_planned_trial_count_fills_the_budget_and_no_more() {
        let plan = TuningSection::default().plan(ModelType::Als);
        // 12 trials: 12 at 3 iterations, 4 at 9, 2 at 27, 1 at 30 (what tune runs).
        assert_eq!(rungs(12, &plan), vec![(12, 3), (4, 9), (2, 27), (1, 30)]);
        let cost = TrialCost {
            setup_seconds: 0.1,
            seconds_per_iteration: 0.01,
            factors: 64,
            exponent: 2.0,
        };
        let work = |n: usize, k: &[usize]| cost.schedule_seconds(n, &plan, k);
        assert!((work(12, &[64]) - 3.46).abs() < 1e-9, "{}", work(12, &[64]));
        for seconds in [5.0, 30.0, 60.0] {
            let n = plan_trials(&plan, &cost, &[64], seconds);
            assert!(work(n, &[64]) <= seconds, "{seconds}: {n}");
            assert!(work(n + 1, &[64]) > seconds, "{seconds}: {n} leaves room");
        }
        // More budget, more configurations; larger factors cost more; the cap holds;
        // a spent budget still plans one.
        let n30 = plan_trials(&plan, &cost, &[64], 30.0);
        assert!(plan_trials(&plan, &cost, &[64], 60.0) > n30);
        assert!(plan_trials(&plan, &cost, &[128], 30.0) < n30);
        assert_eq!(plan_trials(&plan, &cost, &[64], 1e9), plan.max_trials);
        assert_eq!(plan_trials(&plan, &cost, &[64], -5.0), 1);
    }

    #[test]
    fn bad_tuning_sections_are_refused_with_their_key() {
        for (yaml, key) in [
            ("tuning:\n  eta: 1\n", "tuning.eta"),
            (
                "tuning:\n  learning_rate: [0.01, 0.1]\n",
                "tuning.learning_rate",
            ),
            (
                "tuning:\n  regularization: [1, 0.1]\n",
                "tuning.regularization",
            ),
            ("tuning:\n  factors: []\n", "tuning.factors"),
            ("tuning:\n  budget_seconds: 0\n", "tuning.budget_seconds"),
            ("tuning:\n  max_trials: 0\n", "tuning.max_trials"),
            ("tuning:\n  budget_fill: 1.5\n", "tuning.budget_fill"),
            ("tuning:\n  half_life_days: [-7]\n", "tuning.half_life_days"),
            ("model:\n  half_life_days: -1\n", "model.half_life_days"),
        ] {
            let text = if yaml.starts_with("model") {
                yaml.to_owned()
            } else {
                format!("model: {{}}\n{yaml}")
            };
            let err = parse::<AlsConfig>(&text).unwrap_err().to_string();
            assert!(err.contains(key), "{yaml}: {err}");
        }
        let err = parse::<BprConfig>("model: {}\ntuning:\n  half_life_days: [7]\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("tuning.half_life_days"), "{err}");
        let err = parse::<AlsConfig>("model: {}\ntuning:\n  nope: 1\n").unwrap_err();
        assert!(err.to_string().contains("nope"), "{err}");
    }
}
