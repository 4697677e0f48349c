//! `config/als_config.yaml` and `config/bpr_config.yaml`: the spec's format and
//! defaults, plus `model.solver`, `model.cg_steps`, `model.verify_negatives`,
//! `training.seed`, `training.threads` and `training.early_stopping.eval_every`.

use recops_core::{Home, Validate, load_config};
use serde::{Deserialize, Serialize};

use crate::als::Solver;
use crate::error::Result;
use crate::eval::MetricName;

/// The shipped `config/als_config.yaml`, used when the home has none.
pub const DEFAULT_ALS_CONFIG: &str = include_str!("../../../config/als_config.yaml");
/// The shipped `config/bpr_config.yaml`, used when the home has none.
pub const DEFAULT_BPR_CONFIG: &str = include_str!("../../../config/bpr_config.yaml");

/// `config/als_config.yaml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlsConfig {
    /// `model:` hyperparameters.
    pub model: AlsModel,
    /// `training:` options.
    #[serde(default = "TrainingSection::als")]
    pub training: TrainingSection,
    /// `evaluation:` options.
    #[serde(default)]
    pub evaluation: EvaluationSection,
    /// `tuning:` the validation-only hyperparameter search ([`crate::tune`]).
    #[serde(default)]
    pub tuning: crate::tuning::TuningSection,
}

/// `model:` of the ALS config.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlsModel {
    /// Latent factors (64).
    #[serde(default = "d_factors")]
    pub factors: usize,
    /// L2 regularisation λ (0.05).
    #[serde(default = "d_als_reg")]
    pub regularization: f32,
    /// Sweeps over users and items (15).
    #[serde(default = "d_als_iter")]
    pub iterations: usize,
    /// Confidence weight: c = 1 + alpha · rating (10).
    #[serde(default = "d_alpha")]
    pub alpha: f32,
    /// Row solver: `cg` (default) or `cholesky`.
    #[serde(default = "d_solver")]
    pub solver: Solver,
    /// Conjugate-gradient steps per row and sweep (3).
    #[serde(default = "d_cg_steps")]
    pub cg_steps: usize,
    /// Time-decayed confidence: a rating counts `0.5^(age / half_life_days)` times
    /// ([`crate::cell_confidence`]); unset = no decay (the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub half_life_days: Option<f64>,
}

/// `config/bpr_config.yaml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BprConfig {
    /// `model:` hyperparameters.
    pub model: BprModel,
    /// `training:` options.
    #[serde(default = "TrainingSection::bpr")]
    pub training: TrainingSection,
    /// `evaluation:` options.
    #[serde(default)]
    pub evaluation: EvaluationSection,
    /// `tuning:` the validation-only hyperparameter search ([`crate::tune`]).
    #[serde(default)]
    pub tuning: crate::tuning::TuningSection,
}

/// `model:` of the BPR config.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BprModel {
    /// Latent factors (64); the model also has an item bias column.
    #[serde(default = "d_factors")]
    pub factors: usize,
    /// SGD step size (0.01).
    #[serde(default = "d_lr")]
    pub learning_rate: f32,
    /// L2 regularisation (0.01).
    #[serde(default = "d_bpr_reg")]
    pub regularization: f32,
    /// Epochs (100); each draws as many samples as there are training cells.
    #[serde(default = "d_bpr_iter")]
    pub iterations: usize,
    /// Skip a sampled negative that the user actually has (true).
    #[serde(default = "d_true")]
    pub verify_negatives: bool,
}

/// `training:` (shared by both configs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainingSection {
    /// No GPU backend exists: `true` logs a warning and trains on the CPU (false).
    #[serde(default)]
    pub use_gpu: bool,
    /// Initialise item factors from the product embeddings via truncated SVD (true).
    #[serde(default = "d_true")]
    pub bert_init: bool,
    /// Start from the latest registered model of the same type (false).
    #[serde(default)]
    pub warm_start: bool,
    /// Save a checkpoint every N iterations to `checkpoints/<type>/`; 0 = never (5).
    #[serde(default = "d_checkpoint")]
    pub checkpoint_every: usize,
    /// Early stopping on validation ndcg@10.
    #[serde(default)]
    pub early_stopping: EarlyStopping,
    /// Random seed (42): the same seed, data and threads give the same factors.
    #[serde(default = "d_seed")]
    pub seed: u64,
    /// Training threads; 0 = all cores (0).
    #[serde(default)]
    pub threads: usize,
}

impl TrainingSection {
    fn with_eval_every(eval_every: usize) -> Self {
        TrainingSection {
            use_gpu: false,
            bert_init: true,
            warm_start: false,
            checkpoint_every: d_checkpoint(),
            early_stopping: EarlyStopping {
                eval_every,
                ..EarlyStopping::default()
            },
            seed: d_seed(),
            threads: 0,
        }
    }

    /// The ALS defaults (validate every iteration).
    pub fn als() -> Self {
        Self::with_eval_every(1)
    }

    /// The BPR defaults (validate every 5 epochs).
    pub fn bpr() -> Self {
        Self::with_eval_every(5)
    }

    /// The thread count to use: `threads`, or all cores when 0.
    pub fn effective_threads(&self) -> usize {
        if self.threads > 0 {
            self.threads
        } else {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        }
    }
}

/// `training.early_stopping:`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EarlyStopping {
    /// Stop when validation ndcg@10 stops improving (true).
    #[serde(default = "d_true")]
    pub enabled: bool,
    /// Validations without improvement before stopping (5).
    #[serde(default = "d_patience")]
    pub patience: usize,
    /// Smallest increase of validation ndcg@10 that counts as improvement (0.001).
    #[serde(default = "d_min_delta")]
    pub min_delta: f64,
    /// Validate every N iterations (1 for ALS, 5 for BPR).
    #[serde(default = "d_one")]
    pub eval_every: usize,
}

impl Default for EarlyStopping {
    fn default() -> Self {
        EarlyStopping {
            enabled: true,
            patience: d_patience(),
            min_delta: d_min_delta(),
            eval_every: 1,
        }
    }
}

/// `evaluation:`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvaluationSection {
    /// Cut-offs K ([10, 20]); 10 is always evaluated too (early stopping, logs, registry).
    #[serde(default = "d_k_values")]
    pub k_values: Vec<usize>,
    /// Metrics recorded in the model and registry ([recall, ndcg, coverage]).
    #[serde(default = "d_metrics")]
    pub metrics: Vec<MetricName>,
}

impl Default for EvaluationSection {
    fn default() -> Self {
        EvaluationSection {
            k_values: d_k_values(),
            metrics: d_metrics(),
        }
    }
}

impl EvaluationSection {
    /// `k_values` plus 10, sorted, without duplicates.
    pub fn ks(&self) -> Vec<usize> {
        let mut ks = self.k_values.clone();
        ks.push(10);
        ks.sort_unstable();
        ks.dedup();
        ks
    }
}

fn d_factors() -> usize {
    64
}
fn d_als_reg() -> f32 {
    0.05
}
fn d_als_iter() -> usize {
    15
}
fn d_alpha() -> f32 {
    10.0
}
fn d_solver() -> Solver {
    Solver::Cg
}
fn d_cg_steps() -> usize {
    3
}
fn d_lr() -> f32 {
    0.01
}
fn d_bpr_reg() -> f32 {
    0.01
}
fn d_bpr_iter() -> usize {
    100
}
fn d_true() -> bool {
    true
}
fn d_checkpoint() -> usize {
    5
}
fn d_seed() -> u64 {
    42
}
fn d_patience() -> usize {
    5
}
fn d_min_delta() -> f64 {
    0.001
}
fn d_one() -> usize {
    1
}
fn d_k_values() -> Vec<usize> {
    vec![10, 20]
}
fn d_metrics() -> Vec<MetricName> {
    vec![MetricName::Recall, MetricName::Ndcg, MetricName::Coverage]
}

type Problems = Vec<(String, String)>;

fn check(p: &mut Problems, ok: bool, key: &str, msg: &str) {
    if !ok {
        p.push((key.to_owned(), msg.to_owned()));
    }
}

fn check_common(
    p: &mut Problems,
    factors: usize,
    reg: f32,
    iterations: usize,
    t: &TrainingSection,
    e: &EvaluationSection,
) {
    check(
        p,
        (1..=4096).contains(&factors),
        "model.factors",
        "expected an integer from 1 to 4096",
    );
    check(
        p,
        reg.is_finite() && reg >= 0.0,
        "model.regularization",
        "expected a number >= 0",
    );
    check(
        p,
        (1..=100_000).contains(&iterations),
        "model.iterations",
        "expected an integer from 1 to 100000",
    );
    check(
        p,
        t.threads <= 1024,
        "training.threads",
        "expected 0 (all cores) to 1024",
    );
    let es = &t.early_stopping;
    check(
        p,
        es.patience >= 1,
        "training.early_stopping.patience",
        "expected an integer >= 1",
    );
    check(
        p,
        es.min_delta.is_finite() && es.min_delta >= 0.0,
        "training.early_stopping.min_delta",
        "expected a number >= 0",
    );
    check(
        p,
        es.eval_every >= 1,
        "training.early_stopping.eval_every",
        "expected an integer >= 1",
    );
    check(
        p,
        !e.k_values.is_empty(),
        "evaluation.k_values",
        "expected at least one cut-off, e.g. [10, 20]",
    );
    for (i, k) in e.k_values.iter().enumerate() {
        check(
            p,
            (1..=1000).contains(k),
            &format!("evaluation.k_values[{i}]"),
            "expected an integer from 1 to 1000",
        );
    }
}

impl Validate for AlsConfig {
    fn problems(&self) -> Problems {
        let mut p = self.tuning.problems(crate::ModelType::Als);
        let m = &self.model;
        check(
            &mut p,
            m.half_life_days.is_none_or(|h| h.is_finite() && h > 0.0),
            "model.half_life_days",
            "expected a number of days > 0",
        );
        check_common(
            &mut p,
            m.factors,
            m.regularization,
            m.iterations,
            &self.training,
            &self.evaluation,
        );
        check(
            &mut p,
            m.alpha.is_finite() && m.alpha >= 0.0,
            "model.alpha",
            "expected a number >= 0",
        );
        check(
            &mut p,
            (1..=1000).contains(&m.cg_steps),
            "model.cg_steps",
            "expected an integer from 1 to 1000",
        );
        if m.solver == Solver::Cholesky && m.regularization <= 0.0 {
            p.push((
                "model.regularization".into(),
                "the cholesky solver needs regularization > 0".into(),
            ));
        }
        p
    }
}

impl Validate for BprConfig {
    fn problems(&self) -> Problems {
        let mut p = self.tuning.problems(crate::ModelType::Bpr);
        let m = &self.model;
        check_common(
            &mut p,
            m.factors,
            m.regularization,
            m.iterations,
            &self.training,
            &self.evaluation,
        );
        check(
            &mut p,
            m.learning_rate.is_finite() && m.learning_rate > 0.0 && m.learning_rate <= 10.0,
            "model.learning_rate",
            "expected a number > 0 and <= 10",
        );
        p
    }
}

impl AlsModel {
    /// The solver parameters of this section (the one place they are built).
    pub fn params(&self) -> crate::AlsParams {
        crate::AlsParams {
            factors: self.factors,
            regularization: self.regularization,
            solver: self.solver,
            cg_steps: self.cg_steps,
        }
    }
}

impl BprModel {
    /// The SGD parameters of this section (the one place they are built).
    pub fn params(&self) -> crate::BprParams {
        crate::BprParams {
            factors: self.factors,
            learning_rate: self.learning_rate,
            regularization: self.regularization,
            verify_negatives: self.verify_negatives,
        }
    }
}

impl AlsConfig {
    /// Loads `config/als_config.yaml` of `home`, or the built-in default.
    pub fn load(home: &Home) -> Result<Self> {
        Ok(load_config(&home.als_config(), DEFAULT_ALS_CONFIG)?)
    }
}

impl BprConfig {
    /// Loads `config/bpr_config.yaml` of `home`, or the built-in default.
    pub fn load(home: &Home) -> Result<Self> {
        Ok(load_config(&home.bpr_config(), DEFAULT_BPR_CONFIG)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use recops_core::{ConfigFormat, parse_config};
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

    #[test]
    fn shipped_configs_parse_with_the_spec_defaults() {
        let als: AlsConfig = parse(DEFAULT_ALS_CONFIG).unwrap();
        assert_eq!((als.model.factors, als.model.iterations), (64, 15));
        assert_eq!((als.model.regularization, als.model.alpha), (0.05, 10.0));
        assert_eq!(als.model.solver, Solver::Cg);
        let t = &als.training;
        assert!(!t.use_gpu && t.bert_init && !t.warm_start);
        assert_eq!(t.checkpoint_every, 5);
        assert_eq!(
            t.early_stopping,
            EarlyStopping {
                enabled: true,
                patience: 5,
                min_delta: 0.001,
                eval_every: 1
            }
        );
        assert_eq!(als.evaluation.k_values, vec![10, 20]);
        assert_eq!(als.evaluation.metrics.len(), 3);
        let bpr: BprConfig = parse(DEFAULT_BPR_CONFIG).unwrap();
        assert_eq!((bpr.model.factors, bpr.model.iterations), (64, 100));
        assert_eq!(
            (bpr.model.learning_rate, bpr.model.regularization),
            (0.01, 0.01)
        );
        // The spec's minimal file (no extra keys) gives the same model section.
        let spec: AlsConfig = parse(
            "model:\n  factors: 64\n  regularization: 0.05\n  iterations: 15\n  alpha: 10\n\
             training:\n  use_gpu: false\n  bert_init: true\n  warm_start: false\n  checkpoint_every: 5\n  \
             early_stopping:\n    enabled: true\n    patience: 5\n    min_delta: 0.001\n\
             evaluation:\n  k_values: [10, 20]\n  metrics: [recall, ndcg, coverage]\n",
        )
        .unwrap();
        assert_eq!(spec.model, als.model);
        assert_eq!(spec.training, als.training);
    }

    #[test]
    fn typos_and_bad_values_name_the_key() {
        let e = parse::<AlsConfig>("model:\n  factor: 64\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("model.factor") && e.contains("unknown field"),
            "{e}"
        );
        let e = parse::<AlsConfig>("model:\n  factors: 0\n  regularization: -1\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("model.factors") && e.contains("model.regularization"),
            "{e}"
        );
        let e = parse::<BprConfig>("model:\n  learning_rate: 0\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("model.learning_rate"), "{e}");
        let e = parse::<AlsConfig>("model:\n  solver: lu\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("model.solver"), "{e}");
        let e = parse::<AlsConfig>("model: {}\ntraining:\n  early_stoping: {}\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("early_stoping"), "{e}");
    }
}
