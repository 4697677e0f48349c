//! `recops bench-cf`: trains ALS, BPR and the popularity baselines on a CSV with the
//! ARCHITECTURE split and reports training time and metrics@10, in the JSON shape that
//! `shared/bench/cf_vs_implicit.py` reads. `popularity` is the plain count baseline;
//! the other popularity variants ([`crate::popularity_baselines`]) are reported under
//! keys starting with `popularity`. With `tune_seconds`, ALS and BPR are also tuned on
//! the validation split of the training part and reported as `als_tuned`, `bpr_tuned`.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::time::Instant;

use recops_data::{RawInteraction, Split, temporal_split};
use serde::Serialize;

use crate::als::Als;
use crate::bpr::Bpr;
use crate::config::{AlsConfig, BprConfig};
use crate::error::{Error, Result};
use crate::eval::{Metrics, evaluate_factors};
use crate::matrix::Interactions;
use crate::trainer::TrainConfig;

/// A model `bench-cf` can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BenchModel {
    /// ALS with the ALS config's model section.
    Als,
    /// BPR with the BPR config's model section.
    Bpr,
    /// The popularity baseline.
    Popularity,
}

impl std::str::FromStr for BenchModel {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim() {
            "als" => Ok(BenchModel::Als),
            "bpr" => Ok(BenchModel::Bpr),
            "popularity" => Ok(BenchModel::Popularity),
            other => Err(Error::InvalidInput {
                what: "model",
                message: format!("{other:?}; expected als, bpr or popularity"),
            }),
        }
    }
}

/// What to run.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Models, in order.
    pub models: Vec<BenchModel>,
    /// Training threads.
    pub threads: usize,
    /// ALS hyperparameters (`model:`) and seed.
    pub als: AlsConfig,
    /// BPR hyperparameters (`model:`) and seed.
    pub bpr: BprConfig,
    /// Also tune ALS and BPR on the validation split carved from the training part
    /// ([`crate::tune`], this many seconds each, search space from the configs'
    /// `tuning:`) and report `als_tuned` and `bpr_tuned`.
    pub tune_seconds: Option<f64>,
    /// With `tune_seconds`: draw exactly this many configurations instead of deriving
    /// the count from the budget ([`crate::TuneOptions::trials`]).
    pub tune_trials: Option<usize>,
}

/// The split's size.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct BenchSplit {
    /// Users (rows).
    pub users: usize,
    /// Items (columns).
    pub items: usize,
    /// Training cells.
    pub train: usize,
    /// Held-out cells.
    pub test: usize,
    /// Users with held-out cells.
    pub test_users: usize,
}

/// One model's result.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct BenchResult {
    /// Training seconds (matrix build, initialisation and all iterations; no data
    /// loading, no evaluation). Absent for popularity.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seconds_total: Option<f64>,
    /// `seconds_total / iterations`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seconds_per_iteration: Option<f64>,
    /// Iterations run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iterations: Option<usize>,
    /// recall@10 on the held-out cells.
    pub recall_at_10: f64,
    /// ndcg@10.
    pub ndcg_at_10: f64,
    /// coverage@10.
    pub coverage_at_10: f64,
}

/// The whole report (`{"split": ..., "results": {...}}`).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct BenchReport {
    /// Split sizes.
    pub split: BenchSplit,
    /// Results by model name.
    pub results: std::collections::BTreeMap<String, BenchResult>,
    /// With `--tune`: the search behind `als_tuned` and `bpr_tuned` (chosen
    /// hyperparameters, validation ndcg@10 of the choice and of the configured
    /// defaults, trials, seconds), by result name.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub tuning: std::collections::BTreeMap<String, crate::TuningResult>,
}

/// A table for people (`recops bench-cf`): the split sizes, then one row per model.
impl std::fmt::Display for BenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = &self.split;
        writeln!(
            f,
            "split: {} users, {} items, {} train, {} test, {} test users",
            s.users, s.items, s.train, s.test, s.test_users
        )?;
        writeln!(
            f,
            "{:<11}{:>12}{:>12}{:>14}{:>16}{:>12}",
            "MODEL", "RECALL@10", "NDCG@10", "COVERAGE@10", "S/ITERATION", "SECONDS"
        )?;
        for (name, m) in &self.results {
            let per = m
                .seconds_per_iteration
                .map_or("-".into(), |v| format!("{v:.5}"));
            let total = m.seconds_total.map_or("-".into(), |v| format!("{v:.3}"));
            writeln!(
                f,
                "{name:<11}{:>12.5}{:>12.5}{:>14.5}{per:>16}{total:>12}",
                m.recall_at_10, m.ndcg_at_10, m.coverage_at_10
            )?;
        }
        for (name, t) in &self.tuning {
            writeln!(
                f,
                "{name}: {} iterations={} validation ndcg@10={:.4} (configured defaults {}){}; {} trials ({} configurations{}) in {:.0}s{}",
                serde_json::to_string(&t.chosen).unwrap_or_default(),
                t.iterations,
                t.validation_ndcg,
                t.default_validation_ndcg
                    .map_or("diverged".to_owned(), |v| format!("{v:.4}")),
                if t.chose_defaults {
                    ", kept the defaults"
                } else {
                    ""
                },
                t.trials_run,
                t.planned_trials,
                if t.trials_from_budget {
                    " from the budget"
                } else {
                    ""
                },
                t.seconds,
                if t.budget_exhausted {
                    ", budget exhausted"
                } else {
                    ""
                }
            )?;
        }
        Ok(())
    }
}

/// Reads a CSV with a header naming `user_id`, `item_id`, `rating`, `timestamp`
/// (any order, other columns ignored).
pub fn read_interactions_csv(path: &Path) -> Result<Vec<RawInteraction>> {
    let file = std::fs::File::open(path).map_err(|e| Error::io("cannot open", path, e))?;
    let mut lines = BufReader::new(file).lines();
    let csv_err = |line: usize, message: String| Error::Csv {
        path: path.to_path_buf(),
        line,
        message,
    };
    let header = match lines.next() {
        Some(h) => h.map_err(|e| Error::io("cannot read", path, e))?,
        None => {
            return Err(csv_err(
                1,
                "empty file; expected a header user_id,item_id,rating,timestamp".into(),
            ));
        }
    };
    let names: Vec<&str> = header
        .trim_start_matches('\u{feff}')
        .split(',')
        .map(str::trim)
        .collect();
    let col = |name: &str| {
        names
            .iter()
            .position(|n| *n == name)
            .ok_or_else(|| csv_err(1, format!("missing column {name:?}; header is {header:?}, expected user_id,item_id,rating,timestamp")))
    };
    let (cu, ci, cr, ct) = (
        col("user_id")?,
        col("item_id")?,
        col("rating")?,
        col("timestamp")?,
    );
    let width = names.len();
    let mut rows = Vec::new();
    for (n, line) in lines.enumerate() {
        let lineno = n + 2;
        let line = line.map_err(|e| Error::io("cannot read", path, e))?;
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        if fields.len() != width {
            return Err(csv_err(
                lineno,
                format!("expected {width} fields, found {}", fields.len()),
            ));
        }
        let int = |i: usize, name: &str| {
            fields[i]
                .parse::<i64>()
                .map_err(|_| csv_err(lineno, format!("{name} {:?} is not an integer", fields[i])))
        };
        let rating: f32 = fields[cr]
            .parse()
            .ok()
            .filter(|r: &f32| r.is_finite())
            .ok_or_else(|| csv_err(lineno, format!("rating {:?} is not a number", fields[cr])))?;
        rows.push(RawInteraction {
            user_id: int(cu, "user_id")?,
            item_id: int(ci, "item_id")?,
            rating,
            timestamp: int(ct, "timestamp")?,
        });
    }
    Ok(rows)
}

/// Runs the benchmark on `rows`.
pub fn bench_cf(rows: &[RawInteraction], options: &BenchOptions) -> Result<BenchReport> {
    let split = temporal_split(rows);
    if split.train.is_empty() {
        return Err(Error::EmptyData {
            model_type: "bench".into(),
            detail: "the file has no interactions".into(),
        });
    }
    let (nu, ni) = (split.n_users(), split.n_items());
    let test = Interactions::from_entries(nu, ni, &split.test, |_| 1.0)?;
    let train_bin = Interactions::from_entries(nu, ni, &split.train, |_| 1.0)?;
    let test_users = (0..nu).filter(|&u| !test.user_row(u).0.is_empty()).count();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(options.threads.max(1))
        .build()
        .map_err(|e| Error::ThreadPool {
            threads: options.threads,
            message: e.to_string(),
        })?;
    let mut results = std::collections::BTreeMap::new();
    for model in &options.models {
        let (name, result) = match model {
            BenchModel::Popularity => {
                // Every variant under a key starting with `popularity` (plain first).
                let all = pool.install(|| {
                    crate::baselines::popularity_baselines(&split.train, &train_bin, &test, &[10])
                });
                for b in all {
                    results.insert(b.name, result_of(&b.metrics, None));
                }
                continue;
            }
            BenchModel::Als => (
                "als",
                pool.install(|| fit_als(&options.als, &split, &train_bin, &test))?,
            ),
            BenchModel::Bpr => (
                "bpr",
                pool.install(|| fit_bpr(&options.bpr, options.threads, &split, &train_bin, &test))?,
            ),
        };
        results.insert(name.to_owned(), result);
    }
    let mut tuning = std::collections::BTreeMap::new();
    if let Some(secs) = options.tune_seconds {
        let threads = options.threads.max(1);
        let mut als = options.als.clone();
        als.training.threads = threads;
        let mut bpr = options.bpr.clone();
        bpr.training.threads = threads;
        for config in [TrainConfig::Als(als), TrainConfig::Bpr(bpr)] {
            let tune_options = crate::TuneOptions {
                budget_seconds: Some(secs),
                trials: options.tune_trials,
            };
            let tuned = crate::tune(&config, &split, &tune_options, &mut |t| {
                tracing::info!(
                    trial = t.trial,
                    rung = t.rung,
                    validation_ndcg = t.validation_ndcg,
                    "tuning trial"
                );
            })?;
            tracing::info!(chosen = ?tuned.chosen, iterations = tuned.iterations, validation_ndcg = tuned.validation_ndcg, trials = tuned.trials_run, "tuned");
            let (name, result) = match config.with_tuned(&tuned) {
                TrainConfig::Als(c) => (
                    "als_tuned",
                    pool.install(|| fit_als(&c, &split, &train_bin, &test))?,
                ),
                TrainConfig::Bpr(c) => (
                    "bpr_tuned",
                    pool.install(|| fit_bpr(&c, threads, &split, &train_bin, &test))?,
                ),
            };
            results.insert(name.to_owned(), result);
            tuning.insert(name.to_owned(), tuned);
        }
    }
    Ok(BenchReport {
        split: split_sizes(&split, test_users),
        results,
        tuning,
    })
}

/// ALS on the whole training part with `config` (time-decayed confidence when
/// `model.half_life_days` is set), evaluated on `test`.
fn fit_als(
    config: &AlsConfig,
    split: &Split,
    train_bin: &Interactions,
    test: &Interactions,
) -> Result<BenchResult> {
    let m = &config.model;
    let (nu, ni) = (split.n_users(), split.n_items());
    let start = Instant::now();
    let newest = crate::recency::newest_timestamp(&split.train);
    let conf = Interactions::from_entries(nu, ni, &split.train, |e| {
        crate::recency::cell_confidence(e, m.alpha, newest, m.half_life_days)
    })?;
    let mut als = Als::new(m.params(), &conf, config.training.seed);
    for _ in 0..m.iterations {
        als.iterate();
    }
    let secs = start.elapsed().as_secs_f64();
    check_finite(als.users().all_finite() && als.items().all_finite(), "als")?;
    let metrics = evaluate_factors(als.users(), als.items(), train_bin, test, &[10]);
    Ok(result_of(&metrics, Some((secs, m.iterations))))
}

/// BPR on the whole training part with `config`, evaluated on `test`.
fn fit_bpr(
    config: &BprConfig,
    threads: usize,
    split: &Split,
    train_bin: &Interactions,
    test: &Interactions,
) -> Result<BenchResult> {
    let m = &config.model;
    let (nu, ni) = (split.n_users(), split.n_items());
    let start = Instant::now();
    let data = Interactions::from_entries(nu, ni, &split.train, |_| 1.0)?;
    let mut bpr = Bpr::new(m.params(), &data, config.training.seed, threads.max(1));
    for e in 0..m.iterations {
        bpr.epoch(e as u64);
    }
    let secs = start.elapsed().as_secs_f64();
    check_finite(bpr.users().all_finite() && bpr.items().all_finite(), "bpr")?;
    let metrics = evaluate_factors(bpr.users(), bpr.items(), train_bin, test, &[10]);
    Ok(result_of(&metrics, Some((secs, m.iterations))))
}

fn check_finite(ok: bool, model: &str) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(Error::Diverged {
            model_type: model.into(),
            iteration: 0,
            what: "factors",
        })
    }
}

fn split_sizes(split: &Split, test_users: usize) -> BenchSplit {
    BenchSplit {
        users: split.n_users(),
        items: split.n_items(),
        train: split.train.len(),
        test: split.test.len(),
        test_users,
    }
}

fn result_of(m: &Metrics, timing: Option<(f64, usize)>) -> BenchResult {
    BenchResult {
        seconds_total: timing.map(|t| t.0),
        seconds_per_iteration: timing.map(|(s, n)| s / n.max(1) as f64),
        iterations: timing.map(|t| t.1),
        recall_at_10: m.recall(10),
        ndcg_at_10: m.ndcg(10),
        coverage_at_10: m.coverage(10),
    }
}
