//! `bert-embeddings`: product embeddings from the catalog (spec Component 8).
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use recops_automation::bert_embeddings::{self, BertEmbeddingsOptions};
use recops_automation::job_cli::{self, Failure};
use recops_core::SystemClock;

/// Embeds every product of data/published_data/data_product.csv (name + description,
/// Vietnamese) with the text model of config/embeddings.yaml and writes
/// data/content_based_embeddings/product_embeddings.safetensors atomically. Products
/// whose text and model are unchanged keep their vectors; the summary says why when all
/// are re-embedded. The run is recorded in logs/pipeline_metrics.db and logged to
/// logs/bert_embeddings.log; one run at a time (a second one is skipped).
///
/// The model and ONNX Runtime come from scripts/fetch_models.sh (or `recops models
/// fetch`). Exit codes: 0 written, skipped, or checked; 1 failure (the message names the
/// file); 2 bad usage.
#[derive(Debug, Parser)]
#[command(name = "bert-embeddings", version, about, long_about)]
struct Cli {
    /// The recops home folder.
    #[arg(long, env = "RECOPS_HOME", value_name = "DIR")]
    home: Option<PathBuf>,
    /// Only print the freshness of the existing file (age_days, is_stale,
    /// num_embeddings, embedding_dim, model_mismatch); exit 1 if there is none.
    #[arg(long, conflicts_with_all = ["full", "batch_size"])]
    check: bool,
    /// Re-embed every product, even unchanged ones.
    #[arg(long)]
    full: bool,
    /// Texts per forward pass (default: generation.batch_size, 32).
    #[arg(long, env = "RECOPS_EMBEDDINGS_BATCH_SIZE", value_parser = clap::value_parser!(u16).range(1..=4096))]
    batch_size: Option<u16>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
    /// No progress bar (it is only drawn on a terminal anyway).
    #[arg(long)]
    no_progress: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let json = cli.json;
    job_cli::finish(run(cli), json, "bert_embeddings", &Failure::FAILED)
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let home = job_cli::start(
        cli.home.clone(),
        (!cli.check).then_some("bert_embeddings"),
        if cli.check { "warn" } else { "info,ort=warn" },
    )?;
    if cli.check {
        let report = bert_embeddings::check(&home, &SystemClock)?;
        match cli.json {
            true => println!("{}", serde_json::to_string_pretty(&report)?),
            false => print!("{}", bert_embeddings::freshness_summary(&report)),
        }
        return Ok(ExitCode::SUCCESS);
    }
    let options = BertEmbeddingsOptions {
        full: cli.full,
        batch_size: cli.batch_size.map(usize::from),
        progress: !cli.no_progress && !cli.json,
    };
    let outcome = bert_embeddings::run(&home, &options, &SystemClock::shared())?;
    match cli.json {
        true => println!("{}", serde_json::to_string_pretty(&outcome)?),
        false => print!("{}", bert_embeddings::outcome_summary(&outcome)),
    }
    Ok(ExitCode::SUCCESS)
}
