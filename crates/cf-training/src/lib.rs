//! recops-cf-training: collaborative filtering for implicit feedback, trained fast and
//! reproducibly, evaluated against a popularity baseline and saved as model files.
//!
//! - [`Als`]: alternating least squares with confidence `c = 1 + α r`, conjugate-gradient
//!   (default) or exact Cholesky row solver, `YᵀY` once per sweep, rayon over rows.
//! - [`Bpr`]: Bayesian personalised ranking with SGD and popularity-sampled negatives,
//!   parallel over disjoint (user group, item group) blocks, so a seed, the data and the
//!   thread count fix the result bit for bit.
//! - [`evaluate_factors`], [`popularity_baseline`]: recall / ndcg / coverage @K exactly as
//!   ARCHITECTURE.md defines them (and `shared/bench/cf_vs_implicit.py` computes them).
//! - [`train`]: one training run — early stopping on validation ndcg@10, checkpoints and
//!   `--resume`, warm start, BERT init from product embeddings (truncated SVD, faer), the
//!   spec's lines in `logs/cf/{als,bpr}.log`, model files under `artifacts/cf/<model_id>/`
//!   (written whole through `.<model_id>.partial/`, carrying [`UNREGISTERED_MARKER`]
//!   until [`mark_registered`]; [`clear_partial_models`] and
//!   [`clear_unregistered_models`] remove what a killed run left).
//! - [`CfModel`]: the model files and their loader (used by the recommender service),
//!   which refuses a model whose shapes disagree with its id mappings.
//! - [`bench_cf`]: the `recops bench-cf` benchmark.
//!
//! ```
//! use recops_cf_training::{Als, AlsParams, Interactions, Solver, evaluate_factors};
//! use recops_data::{RawInteraction, temporal_split};
//!
//! // Two taste groups: even users like even items, odd users odd items.
//! let mut rows = Vec::new();
//! for u in 0..20i64 {
//!     for i in (0..10i64).filter(|i| i % 2 == u % 2) {
//!         // Each user meets their 5 items in a different order, so a different one is held out.
//!         let timestamp = (i / 2 + u) % 5;
//!         rows.push(RawInteraction { user_id: u, item_id: i, rating: 5.0, timestamp });
//!     }
//! }
//! let split = temporal_split(&rows);
//! let (nu, ni) = (split.n_users(), split.n_items());
//! let conf = Interactions::from_entries(nu, ni, &split.train, |e| 1.0 + 10.0 * e.rating)?;
//! let params = AlsParams { factors: 4, regularization: 0.05, solver: Solver::Cg, cg_steps: 3 };
//! let mut als = Als::new(params, &conf, 42);
//! for _ in 0..10 {
//!     als.iterate();
//! }
//! let train = Interactions::from_entries(nu, ni, &split.train, |_| 1.0)?;
//! let test = Interactions::from_entries(nu, ni, &split.test, |_| 1.0)?;
//! let m = evaluate_factors(als.users(), als.items(), &train, &test, &[1]);
//! assert_eq!(m.recall(1), 1.0); // the held-out item is the user's only unseen liked one
//! # Ok::<(), recops_cf_training::Error>(())
//! ```

mod als;
mod baselines;
mod bench;
mod bpr;
mod champion;
mod checkpoint;
mod config;
mod error;
mod eval;
mod init;
mod iteration;
mod kernels;
mod matrix;
mod model;
mod ranking;
mod recency;
mod rng;
mod serving_index;
mod tensors;
mod trainer;
mod tuning;

pub use als::{Als, AlsParams, Solver};
pub use baselines::{
    Baseline, DECAY_HALF_LIVES_DAYS, PLAIN_POPULARITY, decay_weight, decayed_popularity_order,
    evaluate_order, popularity_baselines, strongest,
};
pub use bench::{
    BenchModel, BenchOptions, BenchReport, BenchResult, BenchSplit, bench_cf, read_interactions_csv,
};
pub use bpr::{Bpr, BprParams, EpochStats};
pub use champion::{SplitEvaluation, evaluate_model_on_split};
pub use config::{
    AlsConfig, AlsModel, BprConfig, BprModel, DEFAULT_ALS_CONFIG, DEFAULT_BPR_CONFIG,
    EarlyStopping, EvaluationSection, TrainingSection,
};
pub use error::{Error, Result};
pub use eval::{
    MetricName, Metrics, MetricsAtK, evaluate_factors, evaluate_rankings, improvement_pct,
    popularity_baseline, popularity_order, recall_ndcg, top_n_for_user,
};
pub use init::{ProductEmbeddings, project_embeddings, read_product_embeddings, warm_start_rows};
pub use iteration::IterationReport;
pub use matrix::{Factors, Interactions};
pub use model::{
    CfModel, MODEL_FORMAT_VERSION, MODEL_META_FILE, MODEL_TENSORS_FILE, ModelMeta, ModelType,
    TrainingSummary, mapping_fingerprint,
};
pub use ranking::{dot, top_k};
pub use recency::{cell_confidence, newest_timestamp};
pub use serving_index::{SERVING_INDEX_FILE, ServingIndex};
pub use trainer::{
    TrainConfig, TrainData, TrainOptions, TrainOutcome, TrainingLog, UNREGISTERED_MARKER,
    clear_partial_models, clear_unregistered_models, mark_registered, new_model_id, thousands,
    train,
};
pub use tuning::{
    Trial, TrialCost, TrialParams, TuneOptions, TuningPlan, TuningResult, TuningSection,
    plan_trials, rungs, tune,
};
