//! `model-deployment`: the spec's `python -m automation.model_deployment` (Component 6).
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use recops_automation::job_cli::{self, Failure};
use recops_automation::model_deployment::{DEFAULT_TEST_USERS, DeployJobOptions, deploy_model};

/// Deploys a model to the recommender service with hot reload (POST /reload_model),
/// verifies it from outside (/health, the model id, and recommendations for every test
/// user plus the popularity fallback for an unknown one), and rolls back to the
/// previous model when verification fails.
///
/// Without --model-id it deploys the registry's current_best; deploying the model
/// already live does nothing. --rollback returns to the model that served before the
/// newest successful deployment. Every deployment is appended to
/// logs/deployment_history.json; failures and rollbacks are alerted.
/// The service URL defaults to service.url of config/recops.yaml; the admin token comes
/// from RECOPS_ADMIN_TOKEN.
/// Exit code: 0 deployed / unchanged / skipped (another deployment runs), 1 failed or
/// rolled back, 2 usage.
#[derive(Debug, Parser)]
#[command(name = "model-deployment", version, about, verbatim_doc_comment)]
struct Cli {
    /// The recops home folder.
    #[arg(long, env = "RECOPS_HOME", value_name = "DIR")]
    home: Option<PathBuf>,
    /// The model to deploy (default: the registry's current_best).
    #[arg(long, conflicts_with = "rollback")]
    model_id: Option<recops_core::ModelId>,
    /// The recommender's base URL (default: service.url of config/recops.yaml).
    #[arg(long, env = "RECOPS_SERVICE_URL")]
    service_url: Option<String>,
    /// Skip the verification after the reload.
    #[arg(long)]
    no_verify: bool,
    /// Do not roll back automatically when verification fails.
    #[arg(long)]
    no_rollback: bool,
    /// Return to the previous model instead of deploying.
    #[arg(long)]
    rollback: bool,
    /// Known users verified per model.
    #[arg(long, default_value_t = DEFAULT_TEST_USERS)]
    test_users: usize,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    job_cli::finish(run(&cli), cli.json, "model_deployment", &Failure::FAILED)
}

fn run(cli: &Cli) -> anyhow::Result<ExitCode> {
    let home = job_cli::start(cli.home.clone(), Some("model_deployment"), "info")?;
    let result = deploy_model(
        &home,
        &DeployJobOptions {
            model_id: cli.model_id.clone(),
            service_url: cli.service_url.clone(),
            verify: !cli.no_verify,
            rollback_on_failure: !cli.no_rollback,
            rollback: cli.rollback,
            test_users: cli.test_users,
            ..DeployJobOptions::default()
        },
    )?;
    if cli.json {
        println!("{}", serde_json::to_string_pretty(&result)?);
    } else {
        println!("{}: {}", result.status, result.message);
    }
    Ok(if result.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
