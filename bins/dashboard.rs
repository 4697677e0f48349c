//! `dashboard`: the recops web dashboard and JSON API (default http://127.0.0.1:8050).
#![allow(clippy::print_stderr)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use recops_core::{Home, RecopsConfig, telemetry};
use recops_dashboard::{DEFAULT_PORT, DashboardOptions};

/// Serves the recops dashboard: overview, pipelines, training, models, service,
/// drift, alerts and scheduler pages, and the same data as JSON under /api/v1/.
///
/// Read-only, except two actions (create/expire a silence, roll back the deployment)
/// that need RECOPS_ADMIN_TOKEN and are CSRF-protected; without the token they are
/// refused. A host other than loopback is refused unless RECOPS_ADMIN_TOKEN is set.
/// Logs go to logs/dashboard.log. Stops cleanly on Ctrl-C or SIGTERM.
/// Exit code: 0 clean stop, 1 failure, 2 usage.
#[derive(Debug, Parser)]
#[command(name = "dashboard", version, about, verbatim_doc_comment)]
struct Cli {
    /// The recops home folder.
    #[arg(long, env = "RECOPS_HOME", value_name = "DIR")]
    home: Option<PathBuf>,
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Port to listen on.
    #[arg(long, default_value_t = DEFAULT_PORT)]
    port: u16,
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let home = Home::resolve(cli.home)?;
    let config = RecopsConfig::load(&home)?;
    telemetry::init(telemetry::TelemetryOptions {
        log_file: Some(home.command_log("dashboard")?),
        max_files: config.logging.max_files,
        ..Default::default()
    })?;
    let options = DashboardOptions {
        host: cli.host,
        port: cli.port,
        ..DashboardOptions::from_env()
    };
    recops_dashboard::serve(&home, options)?;
    Ok(())
}
