//! `data-refresh`: the spec's `python -m automation.data_refresh` (Component 7).
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use recops_automation::data_refresh::refresh_data;
use recops_automation::job_cli::{self, Failure};

/// Turns new interaction files dropped into data/staging/ (CSV or Parquet with
/// user_id, product_id, rating, comment, cmt_date) into the processed data: validates
/// every row (rejected rows go to data/staging/rejected/ with the reason), merges
/// without duplicates (newest wins), scores comments, rebuilds the training matrix,
/// tracks the run, archives the files to data/staging/archive/ and alerts.
///
/// At most `refresh.incremental_max_new_rows` (100) new rows are merged incrementally;
/// more, or --force-full, rebuild everything. A file that cannot be read at all stays in
/// staging and the run fails naming it; processed data is never left half-written.
/// Exit code: 0 success (or skipped: another refresh is running), 1 failure, 2 usage.
#[derive(Debug, Parser)]
#[command(name = "data-refresh", version, about, verbatim_doc_comment)]
struct Cli {
    /// The recops home folder.
    #[arg(long, env = "RECOPS_HOME", value_name = "DIR")]
    home: Option<PathBuf>,
    /// Rebuild all processed data even when there are few new rows.
    #[arg(long)]
    force_full: bool,
    /// Pick new files up from DIR instead of <home>/data/staging.
    #[arg(long, env = "RECOPS_STAGING_DIR", value_name = "DIR")]
    staging_dir: Option<PathBuf>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    job_cli::finish(run(&cli), cli.json, "data_refresh", &Failure::FAILED)
}

fn run(cli: &Cli) -> anyhow::Result<ExitCode> {
    let home = job_cli::start(cli.home.clone(), Some("data_refresh"), "info")?;
    let result = refresh_data(&home, cli.force_full, cli.staging_dir.as_deref())?;
    if cli.json {
        println!("{}", serde_json::to_string_pretty(&result)?);
    } else {
        println!("{result}");
    }
    Ok(ExitCode::SUCCESS)
}
