//! recops-cf-training: ALS and BPR collaborative filtering.

mod als;
mod bench;
mod bpr;
mod config;
mod error;
mod eval;
mod kernels;
mod matrix;
mod rng;

pub use als::{Als, AlsParams, Solver};
pub use bench::{BenchModel, BenchOptions, BenchReport, BenchResult, BenchSplit, bench_cf, read_interactions_csv};
pub use bpr::{Bpr, BprParams, EpochStats};
pub use config::{AlsConfig, AlsModel, BprConfig, BprModel, DEFAULT_ALS_CONFIG, DEFAULT_BPR_CONFIG, EarlyStopping, EvaluationSection, TrainingSection};
pub use error::{Error, Result};
pub use eval::{Metrics, MetricsAtK, MetricName, evaluate_factors, evaluate_rankings, improvement_pct, popularity_baseline, popularity_order, recall_ndcg, top_n_for_user};
pub use matrix::{Factors, Interactions};
