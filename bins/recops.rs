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
    /// Generate a synthetic shop data set (seeded): interactions as CSV files in
    /// <home>/data/staging/ and the product catalog as
    /// <home>/data/published_data/data_product.csv. Users fall into taste clusters,
    /// items have long-tail popularity, ratings lean to 4-5, comments are Vietnamese.
    /// The default size runs through the whole pipeline in seconds; the spec's size is
    /// --users 26000 --products 2200 --interactions 1000000.
    GenData(GenDataArgs),
}

#[derive(Debug, clap::Args)]
struct GenDataArgs {
    /// Users.
    #[arg(long, default_value_t = 1_000)]
    users: usize,
    /// Products in the catalog.
    #[arg(long, default_value_t = 200)]
    products: usize,
    /// Interaction rows.
    #[arg(long, default_value_t = 20_000)]
    interactions: usize,
    /// Seed: the same flags give the same files.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Number of staging CSV files (consecutive date ranges).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
    files: u32,
    /// First day of the data (YYYY-MM-DD).
    #[arg(long, default_value = "2024-01-01")]
    start_date: chrono::NaiveDate,
    /// Length of the period in days.
    #[arg(long, default_value_t = 365)]
    days: u32,
    /// Drift: length of the drift window at the end of the period, in days.
    #[arg(long, default_value_t = 7)]
    drift_window_days: u32,
    /// Drift: added to ratings in the window (e.g. -1.5).
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    drift_rating_shift: f64,
    /// Drift: new products that trend in the window.
    #[arg(long, default_value_t = 0)]
    drift_new_items: usize,
    /// Drift: share of window interactions going to the new products.
    #[arg(long, default_value_t = 0.3)]
    drift_trending_share: f64,
    /// Drift: daily volume in the window relative to before (2.0 doubles it).
    #[arg(long, default_value_t = 1.0)]
    drift_volume_factor: f64,
    /// Share of rows repeated with the same (user, product, date), to exercise dedup.
    #[arg(long, default_value_t = 0.0)]
    duplicate_rate: f64,
    /// Share of rows made invalid, to exercise validation.
    #[arg(long, default_value_t = 0.0)]
    invalid_rate: f64,
    /// Print what was written as JSON.
    #[arg(long)]
    json: bool,
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
            for (target, text) in [
                (home.recops_config(), recops_core::DEFAULT_RECOPS_CONFIG),
                (home.data_config(), recops_data::DEFAULT_DATA_CONFIG),
            ] {
                if target.exists() {
                    println!("kept     {}", target.display());
                } else {
                    recops_core::write_atomic(&target, text.as_bytes())
                        .with_context(|| format!("writing {}", target.display()))?;
                    println!("written  {}", target.display());
                }
            }
        }
        Command::GenData(a) => {
            let config = recops_testkit::GenConfig {
                users: a.users,
                products: a.products,
                interactions: a.interactions,
                seed: a.seed,
                start: a.start_date,
                days: a.days,
                duplicate_rate: a.duplicate_rate,
                invalid_rate: a.invalid_rate,
                drift: recops_testkit::DriftOptions {
                    window_days: a.drift_window_days,
                    rating_shift: a.drift_rating_shift,
                    new_items: a.drift_new_items,
                    trending_share: a.drift_trending_share,
                    volume_factor: a.drift_volume_factor,
                },
                ..recops_testkit::GenConfig::default()
            };
            let ds = recops_testkit::generate(&config)?;
            let summary = recops_testkit::write_dataset(&home, &ds, a.files as usize)?;
            if a.json {
                println!("{}", serde_json::to_string_pretty(&summary)?);
            } else {
                println!(
                    "generated {} interactions of {} users on {} products (seed {})",
                    summary.interactions, summary.users, summary.products, summary.seed
                );
                for f in &summary.staging_files {
                    println!("written  {}", f.display());
                }
                println!("written  {}", summary.catalog.display());
                if let Some(d) = &summary.drift_window_start {
                    println!("drift injected from {d}");
                }
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
