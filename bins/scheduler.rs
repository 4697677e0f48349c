//! `scheduler`: runs every recops job on its cron schedule (spec Component 9).
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Parser;
use recops_core::{Clock, Home, SystemClock, telemetry};
use recops_scheduler::*;

/// Runs the recops jobs (data refresh, training, deployment, drift and health checks,
/// embeddings) on the cron schedule of config/scheduler_config.json, in its time zone.
///
/// Without an action flag it runs in the foreground until SIGINT or SIGTERM, then stops
/// starting jobs and waits for running ones (up to shutdown_grace_seconds; a second
/// signal stops them at once). Each job runs in its own process group with its output in
/// logs/scheduler/jobs/<job>.log; the scheduler's own lines go to
/// logs/scheduler/scheduler.log. Exit codes: 0 ok, 1 failure, 2 usage or unknown job;
/// --status: 0 a scheduler runs for the home, 3 none does.
#[derive(Debug, Parser)]
#[command(name = "scheduler", version, about, long_about)]
struct Cli {
    /// The recops home folder.
    #[arg(long, env = "RECOPS_HOME", value_name = "DIR")]
    home: Option<PathBuf>,
    /// Where job binaries named without a path are (default: next to this executable).
    #[arg(long, env = "RECOPS_BIN_DIR", value_name = "DIR")]
    bin_dir: Option<PathBuf>,
    /// List the jobs: cron, enabled, timeout and the next 3 fire times.
    #[arg(long, conflicts_with_all = ["run_now", "check_config", "status"])]
    list: bool,
    /// Whether a scheduler runs for this home (pid, since when), next fires; exit 0/3.
    #[arg(long, conflicts_with_all = ["run_now", "check_config"])]
    status: bool,
    /// Run one job now (trigger `manual`), even if disabled, and wait for it.
    #[arg(long, value_name = "JOB", conflicts_with = "check_config")]
    run_now: Option<String>,
    /// Validate the config and the job binaries, then exit.
    #[arg(long)]
    check_config: bool,
    /// Print the result of --list, --status, --run-now or --check-config as JSON.
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    run(Cli::parse()).unwrap_or_else(|e| {
        eprintln!("error: {e:#}");
        let usage = matches!(e.downcast_ref::<Error>(), Some(Error::UnknownJob { .. }));
        ExitCode::from(if usage { 2 } else { 1 })
    })
}

/// Prints `text`, or `value` as JSON; returns `code`.
fn emit<T: serde::Serialize>(json: bool, value: &T, text: String, code: u8) -> Result<ExitCode> {
    match json {
        true => println!("{}", serde_json::to_string_pretty(value)?),
        false => print!("{text}"),
    }
    Ok(ExitCode::from(code))
}

fn run(cli: Cli) -> Result<ExitCode> {
    let stop = StopSignal::new();
    stop.install_os_handlers()?; // first, before any thread starts
    let quiet = cli.list || cli.check_config || cli.status;
    telemetry::init(telemetry::TelemetryOptions {
        default_filter: if quiet { "warn" } else { "info" }.into(),
        ..Default::default()
    })?;
    let home = Home::resolve(cli.home)?;
    let bin_dir = cli.bin_dir.map_or_else(default_bin_dir, Ok)?;
    let now = SystemClock.now();
    if cli.check_config {
        let check = check_config(&home, &bin_dir)?;
        emit(cli.json, &check, check.to_text(), 0)
    } else if cli.status {
        let status = scheduler_status(&home, &bin_dir, now)?;
        emit(cli.json, &status, status.to_text(), status.exit_code())
    } else if cli.list {
        let listing = list_jobs(&home, &bin_dir, now, 3)?;
        emit(cli.json, &listing, listing.to_table(), 0)
    } else if let Some(job) = cli.run_now {
        let options = SchedulerOptions {
            require_all_binaries: false,
            ..SchedulerOptions::new(bin_dir)
        };
        let outcome = Scheduler::open(&home, options)?.run_now(&job, &stop)?;
        let code = u8::from(!outcome.success());
        emit(cli.json, &outcome, outcome.to_text(), code)
    } else {
        let options = SchedulerOptions {
            alerts: recops_automation::SchedulerAlerts::for_home(&home),
            ..SchedulerOptions::new(bin_dir)
        };
        Scheduler::open(&home, options)?.run(&stop)?;
        Ok(ExitCode::SUCCESS)
    }
}
