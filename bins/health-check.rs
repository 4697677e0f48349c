//! `health-check`: the spec's `python -m automation.health_check` (Component 3).
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use recops_automation::health_check::{HealthJobOptions, run_health_check};
use recops_automation::job_cli::{self, Failure};

/// Is everything OK? Checks the recommender (/health within 5 s), the data files
/// (health.required_files of config/recops.yaml), the model (registry, current_best,
/// its files load), the pipelines (success rate >= 50 % over 7 days), the product
/// embeddings (age, model; missing = warning) and the service metrics of the last hour
/// against the alert rules of config/alerts_config.yaml.
///
/// Appends one line to logs/health_check.log, records the run, and keeps the
/// health_check_unhealthy alert firing while something is unhealthy (deduplicated;
/// resolved when health returns).
/// Exit code: 0 healthy, 1 unhealthy, 2 the check could not run (or bad usage).
#[derive(Debug, Parser)]
#[command(name = "health-check", version, about, verbatim_doc_comment)]
struct Cli {
    /// The recops home folder.
    #[arg(long, env = "RECOPS_HOME", value_name = "DIR")]
    home: Option<PathBuf>,
    /// The recommender's base URL (default: service.url of config/recops.yaml).
    #[arg(long, env = "RECOPS_SERVICE_URL")]
    service_url: Option<String>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    job_cli::finish(
        run(&cli),
        cli.json,
        "health_check",
        &Failure {
            status: "error",
            prefix: "the health check could not run: ",
            code: 2,
        },
    )
}

fn run(cli: &Cli) -> anyhow::Result<ExitCode> {
    let home = job_cli::start(cli.home.clone(), None, "warn")?;
    let report = run_health_check(
        &home,
        &HealthJobOptions {
            service_url: cli.service_url.clone(),
            ..HealthJobOptions::default()
        },
    )?;
    if cli.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("{}", report.status.to_uppercase());
        for (name, status) in &report.components {
            println!(
                "  {name:<16} {}",
                serde_json::to_value(status)?.as_str().unwrap_or("?")
            );
        }
        for p in report.problems() {
            println!("- {p}");
        }
    }
    Ok(if report.healthy {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
