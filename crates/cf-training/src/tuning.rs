//! Hyperparameter tuning on the validation split only: successive halving.
//!
//! The search never sees the evaluation rows: it carves the same validation hold-out
//! as early stopping from the training part (`holdout_split(&split.train)`), fits on
//! the rest and scores validation ndcg@10.
//!
//! 1. `trials` configurations are drawn with the run's seed: trial 0 is the config's own
//!    hyperparameters, the others draw `factors` from a list and regularization, alpha
//!    (ALS) or learning rate (BPR) log-uniformly from ranges (`tuning:` section).
//! 2. Rung 0 trains every configuration for `min_iterations`; each later rung keeps the
//!    best `1/eta` (at least one) and trains them for `eta` times more iterations, up to
//!    `max_iterations`. A trial's score is its best validation ndcg@10 over the
//!    iterations it ran (validated every `early_stopping.eval_every` iterations and at
//!    the end), and that iteration is its iteration count.
//! 3. The winner is the best trial of the highest rung reached (ties: the lower trial
//!    number). The search stops starting trials when the time budget is spent.
//! 4. Before the search, the **reference trial** trains the config's own
//!    hyperparameters for the config's own iteration count (what an untuned run would
//!    train), scored the same way. It is never eliminated: when the search's winner does
//!    not beat it on validation ndcg@10 (ties included), the reference is the choice. So
//!    a tuned model is never worse than the defaults *on validation*; the short rungs
//!    alone could not promise that (a low learning rate looks bad after 10 epochs, and a
//!    budget that ends the search early leaves only short-rung winners).
//!
//! Same seed, data, threads and search space: the same choice, as long as the budget
//! is not what ended the search (the budget reads the wall clock).

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
    /// Configurations drawn (12).
    #[serde(default)]
    pub trials: Option<usize>,
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
    /// Configurations drawn.
    pub trials: usize,
    /// Halving rate.
    pub eta: usize,
    /// Candidate factor counts.
    pub factors: Vec<usize>,
    /// Regularization range.
    pub regularization: [f32; 2],
    /// ALS alpha range, or BPR learning-rate range.
    pub rate: [f32; 2],
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
            trials: self.trials.unwrap_or(12),
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
            ModelType::Bpr => check(
                self.alpha.is_none(),
                "alpha",
                "is an ALS setting; BPR tunes learning_rate",
            ),
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
    /// Trials run (over all rungs).
    pub trials_run: usize,
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

/// Draws the trials' hyperparameters (trial 0: the config's own).
fn draw(config: &TrainConfig, plan: &TuningPlan, seed: u64, n_items: usize) -> Vec<TrialParams> {
    let factors: Vec<usize> = plan
        .factors
        .iter()
        .copied()
        .filter(|&k| k <= n_items)
        .collect();
    let factors = if factors.is_empty() {
        vec![n_items.max(1)]
    } else {
        factors
    };
    let first = match config {
        TrainConfig::Als(c) => TrialParams {
            factors: c.model.factors,
            regularization: c.model.regularization,
            alpha: Some(c.model.alpha),
            learning_rate: None,
        },
        TrainConfig::Bpr(c) => TrialParams {
            factors: c.model.factors,
            regularization: c.model.regularization,
            alpha: None,
            learning_rate: Some(c.model.learning_rate),
        },
    };
    let mut out = vec![first];
    for t in 1..plan.trials {
        let mut rng = Rng::stream(seed, &[0x7475_6e69_6e67, t as u64]);
        let k = factors[rng.below(factors.len() as u32) as usize];
        let reg = log_uniform(&mut rng, plan.regularization);
        let rate = log_uniform(&mut rng, plan.rate);
        out.push(TrialParams {
            factors: k,
            regularization: reg,
            alpha: first.alpha.map(|_| rate),
            learning_rate: first.learning_rate.map(|_| rate),
        });
    }
    out
}

struct Scored {
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
    let mut best = Scored {
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
                crate::recency::cell_confidence(e, alpha, newest, c.model.half_life_days)
            })?;
            let mut p = c.model.params();
            p.factors = params.factors;
            p.regularization = params.regularization;
            let mut als = Als::new(p, &conf, seed);
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

/// Runs the search for `config` on the training part of `split` (see the module docs).
/// `budget_seconds` overrides the section's budget; `on_trial` sees every trial.
pub fn tune(
    config: &TrainConfig,
    split: &Split,
    budget_seconds: Option<f64>,
    on_trial: &mut dyn FnMut(&Trial),
) -> Result<TuningResult> {
    let mt = config.model_type();
    let mut plan = config.tuning().plan(mt);
    if let Some(b) = budget_seconds {
        plan.budget_seconds = b;
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
    let candidates = draw(config, &plan, seed, ni);
    let data = TrialData {
        fit: &fit,
        shape: (nu, ni),
        fit_bin: &fit_bin,
        val: &val_m,
        seed,
        threads,
    };
    let started = Instant::now();
    // The reference trial: the config as an untuned run would train it.
    let reference = {
        let t0 = Instant::now();
        let s = pool.install(|| run_trial(config, &candidates[0], config.iterations(), &data))?;
        report_reference(on_trial, &candidates[0], &s, t0);
        s
    };
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
        let a = tune(&als(42), &clean, None, &mut |t| trials.push(*t)).unwrap();
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
        let b = tune(&als(42), &poisoned, None, &mut |_| {}).unwrap();
        assert_eq!((a.chosen, a.iterations), (b.chosen, b.iterations));
        assert_eq!(a.validation_ndcg, b.validation_ndcg);
        // Same seed, same choice; another seed draws other candidates.
        let again = tune(&als(42), &clean, None, &mut |_| {}).unwrap();
        assert_eq!(again.chosen, a.chosen);
        let mut other = Vec::new();
        tune(&als(7), &clean, None, &mut |t| other.push(t.params)).unwrap();
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
        let r = tune(&config, &split(), None, &mut |t| seen.push(*t)).unwrap();
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
        let r = tune(&TrainConfig::Bpr(c), &split(), None, &mut |t| seen.push(*t)).unwrap();
        assert!(r.chosen.learning_rate.is_some() && r.chosen.alpha.is_none());
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
        let err = parse::<AlsConfig>("model: {}\ntuning:\n  nope: 1\n").unwrap_err();
        assert!(err.to_string().contains("nope"), "{err}");
    }
}
