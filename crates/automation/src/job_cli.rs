//! What every job binary does first and last: find the home and start logging, then
//! turn the outcome into an exit code that scripts can trust.
//!
//! ```no_run
//! use std::process::ExitCode;
//! use recops_automation::job_cli::{self, Failure};
//!
//! fn main() -> ExitCode {
//!     let json = std::env::args().any(|a| a == "--json");
//!     let result = (|| -> recops_core::Result<ExitCode> {
//!         let home = job_cli::start(None, Some("data_refresh"), "info")?;
//!         println!("{}", home.root().display());
//!         Ok(ExitCode::SUCCESS)
//!     })();
//!     job_cli::finish(result, json, "data_refresh", &Failure::FAILED)
//! }
//! ```

use std::fmt::Display;
use std::path::PathBuf;
use std::process::ExitCode;

use recops_core::{Home, RecopsConfig, telemetry};

/// Resolves the home (`home`, else `RECOPS_HOME`, else the default) and installs
/// logging: stderr at `default_filter` (`RECOPS_LOG` overrides it) and, when `log` is
/// given, `logs/<log>.log`, rotated daily and kept as `logging.max_files` of
/// `config/recops.yaml` says. SIGTERM and SIGINT are caught first (see
/// [`crate::cancel`]).
pub fn start(
    home: Option<PathBuf>,
    log: Option<&str>,
    default_filter: &str,
) -> recops_core::Result<Home> {
    // First, before any thread starts: SIGTERM/SIGINT cancel the run in progress.
    if let Err(e) = crate::cancel::install() {
        tracing::warn!(error = %e, "cannot catch SIGTERM/SIGINT: a killed run stays `running`");
    }
    let home = Home::resolve(home)?;
    let config = RecopsConfig::load(&home)?;
    if let Some(tz) = config.logging.tz() {
        recops_core::set_log_timezone(tz);
    }
    telemetry::init(telemetry::TelemetryOptions {
        log_file: log.map(|name| home.command_log(name)).transpose()?,
        max_files: config.logging.max_files,
        default_filter: default_filter.to_owned(),
        ..Default::default()
    })?;
    Ok(home)
}

/// How a job binary reports an error that kept the job from running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failure {
    /// `status` of the JSON error object.
    pub status: &'static str,
    /// Written before the error on stderr (after `error: `).
    pub prefix: &'static str,
    /// Exit code.
    pub code: u8,
}

impl Failure {
    /// `{"status": "failed"}`, exit code 1: the job failed.
    pub const FAILED: Failure = Failure {
        status: "failed",
        prefix: "",
        code: 1,
    };
}

/// The exit code of a job binary: the one `result` carries or, on error,
/// `failure.code`, after writing `error: <prefix><error and its causes>` to stderr
/// and, with `json`, `{"status": <failure.status>, "pipeline": <pipeline>, "error": ...}`
/// to stdout (so `--json` output always parses).
#[allow(clippy::print_stdout, clippy::print_stderr)]
pub fn finish<E: Display>(
    result: Result<ExitCode, E>,
    json: bool,
    pipeline: &str,
    failure: &Failure,
) -> ExitCode {
    match result {
        Ok(code) => code,
        Err(e) => {
            let error = format!("{e:#}");
            if json {
                println!(
                    "{}",
                    serde_json::json!({"status": failure.status, "pipeline": pipeline, "error": error})
                );
            }
            eprintln!("error: {}{error}", failure.prefix);
            ExitCode::from(failure.code)
        }
    }
}
