//! `recops demo`: the whole system once, on generated sample data, in a fresh home.
//!
//! Steps: embedding model set-up (when missing) -> sample data (the spec's size, with
//! drift in the last week) -> data refresh -> BERT embeddings -> ALS and BPR training
//! -> the recommender on 127.0.0.1 -> deployment with verification -> health check ->
//! drift detection -> a summary. A failing step stops the demo with its name, the reason
//! and the log to read.

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use recops_core::{Home, ModelId, SystemClock, error_chain};
use recops_serving::{HomeModelSource, ModelSource, RunningService, ServiceOptions, ServingModel};
use recops_synth::{DriftOptions, GenConfig, generate, write_dataset};
use recops_tracking::ServiceMetricsStore;
use serde::Serialize;

use recops_automation::bert_embeddings::{self, BertEmbeddingsOptions, check_models, fetch_models};
use recops_automation::data_refresh::refresh_data;
use recops_automation::drift_detection::{DriftJobOptions, detect_drift};
use recops_automation::health_check::{HealthJobOptions, run_health_check};
use recops_automation::model_deployment::{DeployJobOptions, deploy_model};
use recops_automation::model_training::{TrainModelsOptions, train_models};

use crate::error::{Error, Result};

/// A file in a fresh demo home marking it as the demo's: only such a home is reset by
/// a later `recops demo`.
pub const DEMO_MARKER: &str = ".recops-demo";

/// What the demo does.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// The home (default `./demo-home`).
    pub home: PathBuf,
    /// Port of the recommender (default 8000; 0 = any free port).
    pub port: u16,
    /// Port of the dashboard on 127.0.0.1 (default 8050; 0 = any free port).
    pub dashboard_port: u16,
    /// Generated users (default 26,000, the spec's size).
    pub users: usize,
    /// Generated products (default 2,200).
    pub products: usize,
    /// Generated interactions (default 1,000,000).
    pub interactions: usize,
    /// Seed of the generator.
    pub seed: u64,
    /// Skip the embedding model and the BERT step (training then uses random init).
    pub skip_embeddings: bool,
    /// The log file the steps write to (for the failure message).
    pub log_file: PathBuf,
}

impl DemoOptions {
    /// The spec's size in `home`, service on `port`.
    pub fn new(home: PathBuf, port: u16) -> Self {
        let size = GenConfig::spec_size();
        DemoOptions {
            log_file: Home::new(&home).logs_dir().join("demo.log"),
            home,
            port,
            dashboard_port: if port == 0 {
                0
            } else {
                recops_dashboard::DEFAULT_PORT
            },
            users: size.users,
            products: size.products,
            interactions: size.interactions,
            seed: size.seed,
            skip_embeddings: false,
        }
    }
}

/// One finished step.
#[derive(Debug, Clone, Serialize)]
pub struct StepReport {
    /// Step name.
    pub name: &'static str,
    /// Wall time.
    pub seconds: f64,
    /// One line on what it did.
    pub detail: String,
}

/// Everything the demo did; the service is still running inside.
#[derive(Debug)]
pub struct Demo {
    /// The home.
    pub home: Home,
    /// The steps, in order.
    pub steps: Vec<StepReport>,
    /// The running recommender.
    pub service: RunningService,
    /// The running dashboard.
    pub dashboard: recops_dashboard::DashboardHandle,
    /// Lines of the final summary.
    pub summary: Vec<String>,
}

/// Prepares `options.home`: creates it, or resets a home made by an earlier demo;
/// refuses any other non-empty folder so no data is ever deleted by mistake.
pub fn prepare_home(dir: &Path) -> Result<Home> {
    let marker = dir.join(DEMO_MARKER);
    let non_empty = std::fs::read_dir(dir)
        .map(|mut d| d.next().is_some())
        .unwrap_or(false);
    if non_empty {
        if !marker.exists() {
            return Err(Error::Step(format!(
                "{} exists and was not made by `recops demo`; pass --home with a new folder \
                 (nothing was changed)",
                dir.display()
            )));
        }
        std::fs::remove_dir_all(dir)
            .map_err(|e| recops_core::Error::io("cannot reset the demo home", dir, e))?;
    }
    recops_core::ensure_dir(dir)?;
    recops_core::write_atomic(
        &marker,
        b"created by recops demo; `recops demo` may reset this folder\n",
    )?;
    let home = Home::new(dir);
    recops_automation::write_default_configs(&home)?;
    Ok(home)
}

/// Serves the registry's models but starts without one, so the demo's deployment step
/// shows a real deployment (reload + verification).
struct StartEmpty(HomeModelSource);

impl ModelSource for StartEmpty {
    fn initial_model_id(&self) -> recops_serving::Result<Option<ModelId>> {
        Ok(None)
    }
    fn load(&self, model_id: &ModelId) -> recops_serving::Result<ServingModel> {
        self.0.load(model_id)
    }
}

/// Runs the demo in `home` (made by [`prepare_home`]), writing a progress line per
/// step to `out`.
pub fn run_demo(home: &Home, options: &DemoOptions, out: &mut dyn Write) -> Result<Demo> {
    let home = home.clone();
    let _ = writeln!(out, "recops demo in {}", home.root().display());
    let mut steps = Steps {
        out,
        done: Vec::new(),
        total: 10,
        log: options.log_file.display().to_string(),
    };
    steps.run("embedding model and ONNX Runtime", || {
        embedding_model(&home, options)
    })?;
    steps.run("sample data", || sample_data(&home, options))?;
    steps.run("data refresh", || {
        Ok(refresh_data(&home, false, None)?.to_string())
    })?;
    steps.run("BERT embeddings", || embeddings(&home, options))?;
    steps.run("model training (ALS, BPR)", || training(&home))?;
    let mut service: Option<RunningService> = None;
    steps.run("recommender service", || {
        let s = start_service(&home, options.port)?;
        let detail = format!("listening on http://{} (no model yet)", s.addr());
        service = Some(s);
        Ok(detail)
    })?;
    let service = service.ok_or_else(|| Error::Step("the service did not start".into()))?;
    let url = format!("http://{}", service.addr());
    steps.run("model deployment", || deployment(&home, &url))?;
    // A little traffic, so the service metrics and the health check have something.
    warm_up(&url, &home);
    let mut health_status = String::new();
    steps.run("health check", || {
        let (status, detail) = health(&home, &url)?;
        health_status = status;
        Ok(detail)
    })?;
    let mut drift_line = String::new();
    steps.run("drift detection", || {
        let (line, detail) = drift(&home)?;
        drift_line = line;
        Ok(detail)
    })?;
    let mut dashboard = None;
    steps.run("dashboard", || {
        let d = start_dashboard(&home, options.dashboard_port)?;
        let detail = format!(
            "{} (overview, pipelines, training, models, service, drift, alerts, scheduler)",
            d.url()
        );
        dashboard = Some(d);
        Ok(detail)
    })?;
    let dashboard = dashboard.ok_or_else(|| Error::Step("the dashboard did not start".into()))?;
    let mut summary = summary_lines(&home, &url, &health_status, &drift_line);
    summary.insert(0, format!("dashboard {}", dashboard.url()));
    Ok(Demo {
        home,
        steps: steps.done,
        service,
        dashboard,
        summary,
    })
}

/// Runs the demo's steps in order, printing `[n/10] name ... done in 1.2 s: detail`.
struct Steps<'a> {
    out: &'a mut dyn Write,
    done: Vec<StepReport>,
    total: usize,
    log: String,
}

impl Steps<'_> {
    /// Runs one step; a failure names the step, the reason and the log to read.
    fn run(&mut self, name: &'static str, f: impl FnOnce() -> Result<String>) -> Result<()> {
        let n = self.done.len() + 1;
        let _ = write!(self.out, "[{n}/{}] {name} ... ", self.total);
        let _ = self.out.flush();
        let started = Instant::now();
        match f() {
            Ok(detail) => {
                let seconds = started.elapsed().as_secs_f64();
                let _ = writeln!(self.out, "done in {seconds:.1} s: {detail}");
                self.done.push(StepReport {
                    name,
                    seconds,
                    detail,
                });
                Ok(())
            }
            Err(e) => {
                let _ = writeln!(self.out, "FAILED");
                Err(Error::Step(format!(
                    "step {n} ({name}) failed: {}; details in {}",
                    recops_core::error_chain(&e),
                    self.log
                )))
            }
        }
    }
}

/// Step 1: the embedding model and ONNX Runtime, fetched when missing.
fn embedding_model(home: &Home, options: &DemoOptions) -> Result<String> {
    if options.skip_embeddings {
        return Ok("skipped (--skip-embeddings)".into());
    }
    if let Ok(check) = check_models(home) {
        return Ok(format!("{} ready ({} dims)", check.model, check.dim));
    }
    if !fetch_models(home, false)? {
        return Err(Error::Step(
            "scripts/fetch_models.sh failed (see its output above)".into(),
        ));
    }
    let check = check_models(home)?;
    Ok(format!("{} installed ({} dims)", check.model, check.dim))
}

/// Step 2: generated data with drift in the last week, in four staging files.
fn sample_data(home: &Home, options: &DemoOptions) -> Result<String> {
    let config = GenConfig {
        users: options.users,
        products: options.products,
        interactions: options.interactions,
        seed: options.seed,
        drift: DriftOptions {
            rating_shift: -0.8,
            new_items: (options.products / 50).max(3),
            volume_factor: 1.4,
            ..DriftOptions::default()
        },
        ..GenConfig::default()
    };
    let ds = generate(&config).map_err(|e| Error::Step(e.to_string()))?;
    let s = write_dataset(home, &ds, 4).map_err(|e| Error::Step(e.to_string()))?;
    Ok(format!(
        "{} interactions of {} users on {} products in {} staging files, drift in the last week",
        s.interactions,
        s.users,
        s.products,
        s.staging_files.len()
    ))
}

/// Step 4: the product embeddings.
fn embeddings(home: &Home, options: &DemoOptions) -> Result<String> {
    if options.skip_embeddings {
        return Ok("skipped (--skip-embeddings): training uses random initialisation".into());
    }
    let o = bert_embeddings::run(
        home,
        &BertEmbeddingsOptions {
            progress: true,
            ..BertEmbeddingsOptions::default()
        },
        &SystemClock::shared(),
    )?;
    Ok(bert_embeddings::outcome_summary(&o))
}

/// Step 5: ALS and BPR.
fn training(home: &Home) -> Result<String> {
    let r = train_models(home, &TrainModelsOptions::default())?;
    if !r.ok() {
        return Err(Error::Step(r.message));
    }
    Ok(r.message)
}

/// Step 6: the recommender on 127.0.0.1:`port`, without a model until the deployment.
/// The dashboard on 127.0.0.1 over the demo's home (read-only; its actions need
/// `RECOPS_ADMIN_TOKEN`, as always).
fn start_dashboard(home: &Home, port: u16) -> Result<recops_dashboard::DashboardHandle> {
    let options = recops_dashboard::DashboardOptions {
        port,
        ..recops_dashboard::DashboardOptions::from_env()
    };
    recops_dashboard::spawn(home, options).map_err(|e| Error::Step(error_chain(&e)))
}

fn start_service(home: &Home, port: u16) -> Result<RunningService> {
    let listener = TcpListener::bind(("127.0.0.1", port)).map_err(|e| {
        Error::Step(format!(
            "cannot listen on 127.0.0.1:{port}: {e} (is another recommender running? pass --port)"
        ))
    })?;
    let store = Arc::new(ServiceMetricsStore::open(home)?);
    RunningService::start(
        listener,
        Arc::new(StartEmpty(HomeModelSource::new(home.clone()))),
        Some(store),
        ServiceOptions {
            admin_token: std::env::var(recops_serving::ADMIN_TOKEN_ENV)
                .ok()
                .filter(|t| !t.is_empty()),
            ..ServiceOptions::default()
        },
        SystemClock::shared(),
    )
    .map_err(|e| Error::Step(e.to_string()))
}

/// Step 7: the registry's best model to the service, verified.
fn deployment(home: &Home, url: &str) -> Result<String> {
    let r = deploy_model(
        home,
        &DeployJobOptions {
            service_url: Some(url.to_owned()),
            ..DeployJobOptions::default()
        },
    )?;
    if !r.ok() {
        return Err(Error::Step(r.message));
    }
    Ok(r.message)
}

/// Step 8: the health check; returns the status and the step's line.
fn health(home: &Home, url: &str) -> Result<(String, String)> {
    let r = run_health_check(
        home,
        &HealthJobOptions {
            service_url: Some(url.to_owned()),
            ..HealthJobOptions::default()
        },
    )?;
    let warnings = r.problems();
    let detail = if warnings.is_empty() {
        r.status.to_owned()
    } else {
        format!("{} ({})", r.status, warnings.join("; "))
    };
    Ok((r.status.to_owned(), detail))
}

/// Step 9: drift detection; returns its message and the step's line.
fn drift(home: &Home) -> Result<(String, String)> {
    let r = detect_drift(home, &DriftJobOptions::default())?;
    let detail = format!(
        "{}; report {}",
        r.message,
        r.report_path
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    );
    Ok((r.message, detail))
}

/// Sends a few hundred recommendation requests (known and unknown users).
fn warm_up(url: &str, home: &Home) {
    recops_core::tls::install_crypto_provider();
    let Ok(client) = reqwest::blocking::Client::builder().build() else {
        return;
    };
    let users: Vec<i64> = recops_registry::Registry::open(home)
        .current_best()
        .ok()
        .flatten()
        .and_then(|(id, _)| recops_cf_training::CfModel::load_id(home, &id).ok())
        .map(|m| m.user_ids.iter().step_by(97).take(200).copied().collect())
        .unwrap_or_default();
    for (i, u) in users.iter().enumerate() {
        let user = if i % 10 == 9 { -1 - i as i64 } else { *u };
        let _ = client
            .post(format!("{url}/recommend"))
            .json(&serde_json::json!({"user_id": user, "topk": 10}))
            .send();
    }
}

fn summary_lines(home: &Home, url: &str, health: &str, drift: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let example_user = recops_registry::Registry::open(home)
        .current_best()
        .ok()
        .flatten()
        .and_then(|(id, _)| recops_cf_training::CfModel::load_id(home, &id).ok())
        .and_then(|m| m.user_ids.first().copied())
        .unwrap_or(1);
    if let Ok(reg) = recops_registry::Registry::open(home).load() {
        for (id, m) in &reg.models {
            let get = |k: &str| m.metrics.get(k).copied().unwrap_or(f64::NAN);
            let base = |k: &str| m.baseline.get(k).copied().unwrap_or(f64::NAN);
            lines.push(format!(
                "trained   {id}: recall@10 {:.4} (popularity {:.4}), ndcg@10 {:.4} (popularity {:.4}), coverage@10 {:.3}{}",
                get("recall@10"),
                base("recall@10"),
                get("ndcg@10"),
                base("ndcg@10"),
                get("coverage@10"),
                if reg.current_best.as_deref() == Some(id) { "  <- current_best" } else { "" }
            ));
        }
        if let Some(best) = &reg.current_best {
            lines.push(format!("deployed  {best} on {url}"));
        }
    }
    lines.push(format!("health    {health}"));
    lines.push(format!("drift     {drift}"));
    lines.push(String::new());
    let root = home.root().display().to_string();
    for (what, path) in [
        ("interactions", home.interactions()),
        ("training matrix", home.train_confidence()),
        ("embeddings", home.product_embeddings()),
        ("registry", home.registry()),
        ("pipeline runs", home.pipeline_db()),
        ("training runs", home.training_db()),
        ("service metrics", home.service_db()),
        ("deployments", home.deployment_history()),
        ("alerts", home.alerts_log()),
        ("training logs", home.logs_dir().join("cf")),
        ("health log", home.health_check_log()),
        ("drift reports", home.drift_reports_dir()),
    ] {
        lines.push(format!("{what:<16} {}", path.display()));
    }
    lines.push(String::new());
    lines.push("try:".into());
    lines.push(format!("  curl -s {url}/health"));
    lines.push(format!(
        "  curl -s -X POST {url}/recommend -H 'content-type: application/json' -d '{{\"user_id\": {example_user}, \"topk\": 5}}'"
    ));
    lines.push(format!("  curl -s {url}/metrics | head"));
    lines.push(format!("  recops --home {root} stats"));
    lines.push(format!("  health-check --home {root} --service-url {url}"));
    lines
}
