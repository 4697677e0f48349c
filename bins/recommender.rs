//! `recommender`: the recommender service of the spec (`:8000`), with hot reload.
#![allow(clippy::print_stderr)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use recops_core::{Home, RecopsConfig, telemetry};
use recops_serving::{ADMIN_TOKEN_ENV, ServiceOptions};

/// Serves top-K product recommendations over HTTP from the registry's current_best
/// model, and hot-reloads models on POST /reload_model.
///
/// Endpoints: GET /health, /livez, /readyz, /metrics (Prometheus);
/// POST /recommend {"user_id", "topk"}; POST /reload_model {"model_id"} (needs
/// `Authorization: Bearer $RECOPS_ADMIN_TOKEN` when that variable is set).
/// Without a registered model the service starts not ready (/readyz answers 503)
/// until a model is deployed. Host and port default to config/recops.yaml (service:);
/// logs go to logs/service/recommender.log, request metrics to logs/service_metrics.db.
/// Slow or idle clients are cut off by the timeouts and connection cap of service:
/// (docs/operations-hardening.md). Refuses a non-loopback --host without
/// RECOPS_ADMIN_TOKEN unless --allow-unauthenticated is given.
/// Stops cleanly on Ctrl-C or SIGTERM (drain deadline service.drain_timeout_secs). Exit code: 0 clean stop, 1 failure, 2 usage.
#[derive(Debug, Parser)]
#[command(name = "recommender", version, about, verbatim_doc_comment)]
struct Cli {
    /// The recops home folder.
    #[arg(long, env = "RECOPS_HOME", value_name = "DIR")]
    home: Option<PathBuf>,
    /// Address to bind (default: service.host of config/recops.yaml, 127.0.0.1).
    #[arg(long)]
    host: Option<String>,
    /// Port to listen on (default: service.port of config/recops.yaml, 8000).
    #[arg(long)]
    port: Option<u16>,
    /// Serve on a non-loopback address without RECOPS_ADMIN_TOKEN (POST /reload_model
    /// is then open to the network); without it the service refuses to start.
    #[arg(long)]
    allow_unauthenticated: bool,
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
    if let Some(tz) = config.logging.tz() {
        recops_core::set_log_timezone(tz);
    }
    telemetry::init(telemetry::TelemetryOptions {
        log_file: Some(home.recommender_log()),
        max_files: config.logging.max_files,
        ..Default::default()
    })?;
    let options = ServiceOptions {
        admin_token: std::env::var(ADMIN_TOKEN_ENV)
            .ok()
            .filter(|t| !t.is_empty()),
        allow_unauthenticated: cli.allow_unauthenticated,
        ..ServiceOptions::from_settings(&config.service)
    };
    let host = cli.host.unwrap_or(config.service.host);
    let port = cli.port.unwrap_or(config.service.port);
    recops_automation::service_alerts::spawn_service_rules(&home);
    recops_serving::run(&home, &host, port, options)?;
    Ok(())
}
