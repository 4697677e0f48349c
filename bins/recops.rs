//! `recops`: the entry point for people (`recops stats`, `recops init`, ...).
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
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
    /// Write the default config files into <home>/config for editing (existing files
    /// are kept).
    Init,
    /// Benchmark ALS, BPR and the popularity baseline on a CSV
    /// (user_id,item_id,rating,timestamp) with the ARCHITECTURE split: training seconds
    /// per iteration and recall/ndcg/coverage@10. Hyperparameters come from the home's
    /// als_config.yaml / bpr_config.yaml (built-in defaults when absent).
    BenchCf {
        /// The interactions CSV.
        #[arg(long, value_name = "CSV")]
        data: PathBuf,
        /// Models to run, comma-separated: als, bpr, popularity.
        #[arg(long, value_delimiter = ',', default_value = "als,bpr,popularity")]
        models: Vec<recops_cf_training::BenchModel>,
        /// Training threads.
        #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=1024))]
        threads: u16,
        /// Print the JSON report (the shape shared/bench/cf_vs_implicit.py reads).
        #[arg(long)]
        json: bool,
    },
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
        Command::Init => {
            let target = home.recops_config();
            if target.exists() {
                println!("kept     {}", target.display());
            } else {
                recops_core::write_atomic(&target, recops_core::DEFAULT_RECOPS_CONFIG.as_bytes())
                    .with_context(|| format!("writing {}", target.display()))?;
                println!("written  {}", target.display());
            }
        }
        Command::BenchCf {
            data,
            models,
            threads,
            json,
        } => {
            let rows = recops_cf_training::read_interactions_csv(&data)?;
            let options = recops_cf_training::BenchOptions {
                models,
                threads: usize::from(threads),
                als: recops_cf_training::AlsConfig::load(&home)?,
                bpr: recops_cf_training::BprConfig::load(&home)?,
            };
            let report = recops_cf_training::bench_cf(&rows, &options)?;
            if json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                print!("{}", bench_table(&report));
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

fn bench_table(r: &recops_cf_training::BenchReport) -> String {
    let s = &r.split;
    let mut out = format!(
        "split: {} users, {} items, {} train, {} test, {} test users\n",
        s.users, s.items, s.train, s.test, s.test_users
    );
    out.push_str(&format!(
        "{:<11}{:>12}{:>12}{:>14}{:>16}{:>12}\n",
        "MODEL", "RECALL@10", "NDCG@10", "COVERAGE@10", "S/ITERATION", "SECONDS"
    ));
    for (name, m) in &r.results {
        let per = m
            .seconds_per_iteration
            .map_or("-".into(), |v| format!("{v:.5}"));
        let total = m.seconds_total.map_or("-".into(), |v| format!("{v:.3}"));
        out.push_str(&format!(
            "{name:<11}{:>12.5}{:>12.5}{:>14.5}{per:>16}{total:>12}\n",
            m.recall_at_10, m.ndcg_at_10, m.coverage_at_10
        ));
    }
    out
}
