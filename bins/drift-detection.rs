//! `drift-detection`: the spec's `python -m automation.drift_detection` (Component 4).
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use recops_automation::drift_detection::{DriftJobOptions, detect_drift};
use recops_automation::job_cli::{self, Failure};

/// Has the data changed enough to retrain? Compares the last 7 days of
/// data/processed/interactions.parquet with the data before it: rating distribution
/// (max share difference, chi-square, PSI, Jensen-Shannon), popularity (top-100
/// Jaccard, rank-biased overlap) and interaction volume / user activity per day.
///
/// Writes reports/drift/drift_report_YYYYMMDD.json and a row of
/// reports/drift/drift_summary.md, records the run in logs/pipeline_metrics.db and
/// raises the data_drift alert on high severity. Windows and thresholds: the drift:
/// section of config/recops.yaml.
/// Exit code: 0 ran (whatever the drift), 1 failure (e.g. no processed data), 2 usage.
#[derive(Debug, Parser)]
#[command(name = "drift-detection", version, about, verbatim_doc_comment)]
struct Cli {
    /// The recops home folder.
    #[arg(long, env = "RECOPS_HOME", value_name = "DIR")]
    home: Option<PathBuf>,
    /// Run model training when the drift severity is high (also drift.retrain_on_drift).
    #[arg(long)]
    retrain_on_drift: bool,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    job_cli::finish(run(&cli), cli.json, "drift_detection", &Failure::FAILED)
}

fn run(cli: &Cli) -> anyhow::Result<ExitCode> {
    let home = job_cli::start(cli.home.clone(), Some("drift_detection"), "info")?;
    let result = detect_drift(
        &home,
        &DriftJobOptions {
            retrain_on_drift: cli.retrain_on_drift.then_some(true),
            ..DriftJobOptions::default()
        },
    )?;
    if cli.json {
        println!("{}", serde_json::to_string_pretty(&result)?);
    } else {
        println!("{}", result.message);
        if let Some(p) = &result.report_path {
            println!("report: {}", p.display());
        }
        for r in result.results.iter().flat_map(|r| &r.recommendations) {
            println!("- {r}");
        }
    }
    let retrain_ok = result.retraining.as_ref().is_none_or(|r| r.ok());
    Ok(if retrain_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
