//! `model-training`: the spec's `python -m automation.model_training` (Component 2).
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use recops_automation::job_cli::{self, Failure};
use recops_automation::model_training::{TrainModelsOptions, train_models};
use recops_cf_training::ModelType;

/// Trains ALS and BPR on the processed interactions (data/processed/), compares each
/// with the strongest popularity baseline on ndcg@10, registers the ones that beat it
/// in artifacts/cf/registry.json (the others as rejected) and promotes a new model when
/// it beats the current champion re-evaluated on the same split.
///
/// A type is skipped when the data has not changed since its last registered model
/// (--force retrains). Progress goes to logs/cf/{als,bpr}.log and
/// logs/training_metrics.db; a new model more than 10% below the current best's
/// ndcg@10 raises the critical model_degradation alert. Configs:
/// config/als_config.yaml, config/bpr_config.yaml.
/// Exit code: 0 success (or another training run holds the lock), 1 failure, 2 usage.
#[derive(Debug, Parser)]
#[command(name = "model-training", version, about, verbatim_doc_comment)]
struct Cli {
    /// The recops home folder.
    #[arg(long, env = "RECOPS_HOME", value_name = "DIR")]
    home: Option<PathBuf>,
    /// Model types to train (als, bpr); repeat or comma-separate. Default: both.
    #[arg(long = "model", value_delimiter = ',', value_parser = |s: &str| s.parse::<ModelType>().map_err(|e| e.to_string()))]
    models: Vec<ModelType>,
    /// Retrain even when the data has not changed since the last registered model.
    #[arg(long)]
    force: bool,
    /// Continue an interrupted run from its newest checkpoint (checkpoints/<type>/);
    /// with nothing to resume it says so and trains from scratch (exit code as usual).
    #[arg(long)]
    resume: bool,
    /// Tune the hyperparameters on the validation split (carved from the training part)
    /// before training; see docs/training.md.
    #[arg(long)]
    tune: bool,
    /// Tuning budget per model type, seconds (default: tuning.budget_seconds, 300).
    #[arg(long, value_name = "SECONDS", requires = "tune")]
    budget: Option<f64>,
    /// Tuning configurations to draw (default: derived from the budget); a run's
    /// `planned_trials` repeats its search.
    #[arg(long, value_name = "N", requires = "tune", value_parser = clap::value_parser!(u16).range(1..=1000))]
    trials: Option<u16>,
    /// Do not deploy the new best model afterwards (the spec's auto_deploy=True is the
    /// default: the new current_best is deployed through the model-deployment job).
    #[arg(long)]
    no_auto_deploy: bool,
    /// The default; kept for scripts written when deploying was opt-in.
    #[arg(long, hide = true, conflicts_with = "no_auto_deploy")]
    auto_deploy: bool,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    job_cli::finish(run(&cli), cli.json, "model_training", &Failure::FAILED)
}

fn run(cli: &Cli) -> anyhow::Result<ExitCode> {
    let home = job_cli::start(cli.home.clone(), Some("model_training"), "info")?;
    let options = TrainModelsOptions {
        model_types: cli.models.clone(),
        force_retrain: cli.force,
        auto_deploy: cli.auto_deploy || !cli.no_auto_deploy,
        resume: cli.resume,
        tune: cli.tune,
        tune_budget_seconds: cli.budget,
        tune_trials: cli.trials.map(usize::from),
        ..TrainModelsOptions::default()
    };
    let report = train_models(&home, &options)?;
    if cli.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("{}", report.message);
        for m in &report.models {
            println!("{:<4} {:<15} {}", m.model_type, m.status, m.message);
        }
    }
    Ok(if report.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
