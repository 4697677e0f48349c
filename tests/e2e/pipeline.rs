//! The whole system on a temporary home, through the real binaries: data-refresh,
//! model-training, recommender (OS-chosen port), model-deployment, health-check,
//! drift-detection — and the failure path of a deployment that fails verification.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use recops_cf_training::{CfModel, ServingIndex};
use recops_core::{Home, ModelId, SystemClock};
use recops_registry::{NewModel, Registry};
use recops_tracking::{PipelineTracker, RunStatus, TrainingStatus, TrainingTracker};
use serde_json::Value;

pub(crate) fn bin(path: &str, home: &Path) -> Command {
    let mut c = crate::support::command(path);
    c.arg("--home")
        .arg(home)
        .env_remove("RECOPS_SERVICE_URL")
        .env_remove("RECOPS_SERVICE_URLS")
        .env_remove("RECOPS_ADMIN_TOKEN");
    c
}

pub(crate) fn run(c: &mut Command) -> (i32, Value, String) {
    let out = c.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let json = serde_json::from_str(&stdout).unwrap_or(Value::Null);
    let text = format!("{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), json, text)
}

/// The recommender binary on port 0; returns the child and its base URL, read from the
/// `recommender service listening addr=...` line of its log on stderr. The caller kills
/// and waits for the child.
#[allow(clippy::zombie_processes)]
pub(crate) fn start_recommender(home: &Path) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_recommender"))
        .arg("--home")
        .arg(home)
        .args(["--port", "0"])
        .env_remove("RECOPS_ADMIN_TOKEN")
        .env("RECOPS_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        assert!(
            reader.read_line(&mut line).unwrap() > 0,
            "recommender exited"
        );
        if let Some(at) = line.find("listening addr=") {
            let addr = line[at + "listening addr=".len()..].trim().to_owned();
            // Keep draining stderr so the service never blocks on a full pipe.
            std::thread::spawn(move || {
                let mut sink = String::new();
                while reader.read_line(&mut sink).map(|n| n > 0).unwrap_or(false) {
                    sink.clear();
                }
            });
            return (child, format!("http://{addr}"));
        }
    }
}

pub(crate) fn health_model_id(url: &str) -> Option<String> {
    recops_core::tls::install_crypto_provider();
    let v: Value = reqwest::blocking::get(format!("{url}/health"))
        .ok()?
        .json()
        .ok()?;
    v["model_id"].as_str().map(str::to_owned)
}

/// A copy of `model_id` under a new id whose first user has already seen every item:
/// it loads (the service's own smoke test passes) but answers that user with nothing,
/// so deployment verification fails. Registered as an active model.
fn register_model_failing_verification(home: &Home, model_id: &str, new_id: &str) {
    let (model_id, new_id): (ModelId, ModelId) =
        (model_id.parse().unwrap(), new_id.parse().unwrap());
    let mut model = CfModel::load_id(home, &model_id).unwrap();
    let (nu, ni) = (model.user_ids.len(), model.item_ids.len());
    let mut index = ServingIndex::load(&home.model_dir(&model_id), nu, ni).unwrap();
    let first_row = index.seen_indptr[1];
    let mut seen: Vec<u32> = (0..ni as u32).collect();
    seen.extend_from_slice(&index.seen_indices[first_row..]);
    let shift = ni - first_row;
    index.seen_indices = seen;
    for p in index.seen_indptr.iter_mut().skip(1) {
        *p += shift;
    }
    model.meta.model_id = new_id.clone();
    let dir = home.model_dir(&new_id);
    std::fs::create_dir_all(&dir).unwrap();
    index.save(&dir).unwrap();
    model.save(&dir).unwrap();
    Registry::open(home)
        .register(
            &NewModel {
                model_id: new_id.clone(),
                model_type: model.meta.model_type,
                metrics: BTreeMap::from([("ndcg@10".to_owned(), 0.0)]),
                baseline: BTreeMap::new(),
                data_version: model.meta.data_version.clone(),
            },
            "built by the end-to-end test to fail verification",
        )
        .unwrap();
}

#[test]
fn the_whole_system_leaves_its_records_and_a_bad_deployment_rolls_back() {
    let dir = tempfile::tempdir().unwrap();
    let h = dir.path();
    let home = Home::new(h);

    // Data with a strong drift in the last week.
    let (code, _, text) = run(bin(env!("CARGO_BIN_EXE_recops"), h).args([
        "gen-data",
        "--users",
        "400",
        "--products",
        "120",
        "--interactions",
        "12000",
        "--drift-rating-shift",
        "-1.5",
        "--drift-new-items",
        "6",
        "--drift-volume-factor",
        "1.8",
    ]));
    assert_eq!(code, 0, "{text}");
    let (code, refresh, text) = run(bin(env!("CARGO_BIN_EXE_data-refresh"), h).arg("--json"));
    assert_eq!(code, 0, "{text}");
    assert_eq!(refresh["status"], "success", "{refresh}");

    let (code, training, text) =
        run(bin(env!("CARGO_BIN_EXE_model-training"), h).args(["--json", "--no-auto-deploy"]));
    assert_eq!(code, 0, "{text}");
    let best = training["current_best"].as_str().unwrap().to_owned();

    let (mut service, url) = start_recommender(h);
    assert_eq!(
        health_model_id(&url).as_deref(),
        Some(best.as_str()),
        "serves current_best at start"
    );

    // Deploy the other trained model, verified for every test user.
    let other = training["models"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["model_id"].as_str())
        .find(|id| *id != best)
        .unwrap()
        .to_owned();
    let (code, deploy, text) = run(bin(env!("CARGO_BIN_EXE_model-deployment"), h).args([
        "--service-url",
        &url,
        "--model-id",
        &other,
        "--json",
    ]));
    assert_eq!(code, 0, "{text}");
    assert_eq!(deploy["status"], "deployed", "{deploy}");
    let v = &deploy["record"]["verification"];
    assert_eq!(
        (
            v["health_check"].clone(),
            v["model_id_match"].clone(),
            v["recommendations_work"].clone()
        ),
        (Value::Bool(true), Value::Bool(true), Value::Bool(true)),
        "{deploy}"
    );
    assert_eq!(health_model_id(&url).as_deref(), Some(other.as_str()));

    // Health: everything healthy (no embeddings file is a warning only).
    let (code, health, text) =
        run(bin(env!("CARGO_BIN_EXE_health-check"), h).args(["--service-url", &url, "--json"]));
    assert_eq!(code, 0, "{text}");
    assert_eq!(health["status"], "healthy", "{health}");
    assert_eq!(health["components"]["embeddings"], "warning");
    assert!(
        std::fs::read_to_string(home.health_check_log())
            .unwrap()
            .contains("| HEALTHY |")
    );

    // Drift: the injected drift is found, reported and alerted.
    let (code, drift, text) = run(bin(env!("CARGO_BIN_EXE_drift-detection"), h).arg("--json"));
    assert_eq!(code, 0, "{text}");
    assert_eq!(drift["overall_severity"], "high", "{drift}");
    assert!(
        drift["results"]["rating_drift"]["drift_detected"]
            .as_bool()
            .unwrap()
    );
    let report = Path::new(drift["report_path"].as_str().unwrap()).to_path_buf();
    assert!(report.exists() && home.drift_summary().exists());
    let alerts = std::fs::read_to_string(home.alerts_log()).unwrap();
    assert!(
        alerts.contains("| alerting | data_drift: drift severity high"),
        "{alerts}"
    );

    // The failure path: verification fails, the previous model comes back.
    register_model_failing_verification(&home, &other, "als_29990101_000000");
    let (code, failed, text) = run(bin(env!("CARGO_BIN_EXE_model-deployment"), h).args([
        "--service-url",
        &url,
        "--model-id",
        "als_29990101_000000",
        "--json",
    ]));
    assert_eq!(code, 1, "{text}");
    assert_eq!(failed["status"], "rolled_back", "{failed}");
    assert_eq!(
        health_model_id(&url).as_deref(),
        Some(other.as_str()),
        "rolled back"
    );
    let history: Value =
        serde_json::from_slice(&std::fs::read(home.deployment_history()).unwrap()).unwrap();
    let last = history["deployments"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["model_id"], "als_29990101_000000");
    assert_eq!(last["status"], "failed");
    assert_eq!(last["rollback_triggered"], true);
    assert_eq!(last["rollback_status"], "success");
    assert_eq!(last["verification"]["recommendations_work"], false);
    let alerts = std::fs::read_to_string(home.alerts_log()).unwrap();
    assert!(
        alerts.contains("pipeline_model_deployment_rolled_back"),
        "{alerts}"
    );

    // The desired state: the failed model is marked, the model rolled back to stays
    // deployed, and the scheduled deployment (no --model-id) changes nothing.
    let reg = Registry::open(&home);
    let failed_entry = reg.get("als_29990101_000000").unwrap().unwrap();
    assert!(failed_entry.verification_failed.is_some());
    assert_eq!(reg.deployed().unwrap().unwrap().model_id, other);
    let cron = |url: &str| {
        run(bin(env!("CARGO_BIN_EXE_model-deployment"), h).args(["--service-url", url, "--json"]))
    };
    let (code, out, text) = cron(&url);
    assert_eq!(
        (code, out["status"].as_str()),
        (0, Some("unchanged")),
        "{text}"
    );
    assert_eq!(
        health_model_id(&url).as_deref(),
        Some(other.as_str()),
        "the operator's choice sticks"
    );
    // A champion that failed verification is never redeployed automatically.
    reg.promote(Some(&"als_29990101_000000".parse().unwrap()), "test")
        .unwrap();
    let (code, out, text) = cron(&url);
    assert_eq!(
        (code, out["status"].as_str()),
        (0, Some("unchanged")),
        "{text}"
    );
    assert!(
        out["message"]
            .as_str()
            .unwrap()
            .contains("failed verification"),
        "{out}"
    );
    assert_eq!(health_model_id(&url).as_deref(), Some(other.as_str()));
    reg.promote(Some(&best.parse().unwrap()), "test").unwrap();

    // A restart serves the deployed model, not current_best.
    service.kill().unwrap();
    service.wait().unwrap();
    let (mut service, url) = start_recommender(h);
    assert_eq!(
        health_model_id(&url).as_deref(),
        Some(other.as_str()),
        "restart keeps the deployment"
    );

    // Rollback twice: back to the model before, then nothing older (never back and forth).
    let rollback = |url: &str| {
        run(bin(env!("CARGO_BIN_EXE_model-deployment"), h).args([
            "--service-url",
            url,
            "--rollback",
            "--json",
        ]))
    };
    let (code, out, text) = rollback(&url);
    assert_eq!(code, 0, "{text}");
    assert_eq!(out["model_id"], best.as_str(), "{out}");
    assert_eq!(health_model_id(&url).as_deref(), Some(best.as_str()));
    let (code, _, text) = rollback(&url);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("cannot roll back"), "{text}");
    assert_eq!(
        health_model_id(&url).as_deref(),
        Some(best.as_str()),
        "not back to {other}"
    );
    let deployed = reg.deployed().unwrap().unwrap();
    assert_eq!(
        (deployed.model_id.as_str(), deployed.action),
        (best.as_str(), recops_registry::DeployedBy::Rollback)
    );

    service.kill().unwrap();
    service.wait().unwrap();

    // The records every job leaves.
    let tracker = PipelineTracker::open_path(&home.pipeline_db(), SystemClock::shared()).unwrap();
    for pipeline in [
        "data_refresh",
        "model_training",
        "model_deployment",
        "health_check",
        "drift_detection",
    ] {
        let runs = tracker
            .get_recent_runs(Some(pipeline), 10, Some(RunStatus::Success))
            .unwrap();
        assert!(!runs.is_empty(), "no successful {pipeline} run");
    }
    let training_runs = TrainingTracker::open(&home)
        .unwrap()
        .list_runs(None, 10)
        .unwrap();
    assert_eq!(training_runs.len(), 2);
    for r in &training_runs {
        assert_eq!(r.status, Some(TrainingStatus::Completed));
        assert!(
            !TrainingTracker::open(&home)
                .unwrap()
                .iterations(&r.run_id)
                .unwrap()
                .is_empty()
        );
    }
    let registry: Value = serde_json::from_slice(&std::fs::read(home.registry()).unwrap()).unwrap();
    assert_eq!(registry["current_best"], best.as_str());
    dashboard_shows_the_pipeline(&home, &best);
}

/// The dashboard over the home the pipeline filled: every panel answers, and the runs,
/// training runs, models and deployments of the pipeline are there.
fn dashboard_shows_the_pipeline(home: &Home, best: &str) {
    recops_core::tls::install_crypto_provider();
    let options = recops_dashboard::DashboardOptions {
        port: 0,
        ..Default::default()
    };
    let dashboard = recops_dashboard::spawn(home, options).unwrap();
    let get = |path: &str| -> Value {
        let r = reqwest::blocking::get(format!("{}{path}", dashboard.url())).unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
        r.json().unwrap()
    };
    for page in [
        "/",
        "/pipelines",
        "/training",
        "/models",
        "/service",
        "/drift",
        "/alerts",
        "/scheduler",
    ] {
        let r = reqwest::blocking::get(format!("{}{page}", dashboard.url())).unwrap();
        assert!(r.status().is_success(), "{page}: {}", r.status());
    }
    let pipelines = get("/api/v1/pipelines");
    let names: Vec<&str> = pipelines["runs"]["data"]["runs"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["pipeline_name"].as_str())
        .collect();
    for p in ["data_refresh", "model_training", "model_deployment"] {
        assert!(names.contains(&p), "no {p} run in {names:?}");
    }
    let training = get("/api/v1/training");
    assert_eq!(
        training["runs"]["data"]["runs"].as_array().unwrap().len(),
        2
    );
    let models = get("/api/v1/models");
    assert_eq!(models["champion"], best);
    assert!(!models["deployments"]["data"].as_array().unwrap().is_empty());
    let drift = get("/api/v1/drift");
    assert!(
        !drift["data_versions"]["data"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    dashboard.stop().unwrap();
}
