//! The pipeline against a real PostgreSQL (a throwaway cluster on 127.0.0.1): with
//! `RECOPS_STORAGE_URL` set, the jobs record pipeline runs, training runs and
//! iterations in its tables, the recommender its request rollups, the `recops` commands and the health check read them
//! back, alerts the jobs fire keep their state in PostgreSQL's `alert_state`, and no
//! SQLite file is written for those stores.

use recops_core::Home;
use recops_testkit::PgCluster;
use serde_json::Value;

use crate::support::{command as bin, ok};

#[test]
fn data_refresh_and_training_record_in_postgres_and_commands_read_it() {
    let Some(pg) = PgCluster::shared() else {
        return;
    };
    let url = pg.fresh_database();
    let db = url.rsplit('/').next().unwrap().to_owned();
    let dir = tempfile::tempdir().unwrap();
    let h = dir.path().to_str().unwrap();
    let run = |path: &str, args: &[&str]| {
        let mut c = bin(path);
        c.env("RECOPS_STORAGE_URL", &url)
            .arg("--home")
            .arg(h)
            .args(args);
        ok(&mut c)
    };
    run(
        env!("CARGO_BIN_EXE_recops"),
        &[
            "gen-data",
            "--users",
            "200",
            "--products",
            "80",
            "--interactions",
            "3000",
        ],
    );
    run(env!("CARGO_BIN_EXE_data-refresh"), &[]);
    run(
        env!("CARGO_BIN_EXE_model-training"),
        &["--json", "--no-auto-deploy"],
    );

    // The spec's tables, filled.
    let count = |table: &str| -> i64 {
        pg.psql(&db, &format!("SELECT COUNT(*) FROM {table}"))
            .parse()
            .unwrap()
    };
    assert_eq!(
        pg.psql(
            &db,
            "SELECT string_agg(pipeline_name || ':' || status, ',' ORDER BY pipeline_name) \
             FROM pipeline_runs"
        ),
        "data_refresh:success,model_training:success"
    );
    assert_eq!(count("training_runs"), 2);
    assert!(count("iteration_metrics") >= 2);
    assert_eq!(
        pg.psql(
            &db,
            "SELECT string_agg(store || ':' || version, ',' ORDER BY store) \
             FROM recops_schema_migrations"
        ),
        "alerts:1,locks:1,pipeline:1,registry:1,training:1,training:2"
    );

    // The commands read the same rows through the store traits.
    let runs: Value = serde_json::from_slice(
        &run(env!("CARGO_BIN_EXE_recops"), &["runs", "list", "--json"]).stdout,
    )
    .unwrap();
    assert_eq!(runs["runs"].as_array().unwrap().len(), 2, "{runs}");
    let training: Value = serde_json::from_slice(
        &run(
            env!("CARGO_BIN_EXE_recops"),
            &["training", "list", "--json"],
        )
        .stdout,
    )
    .unwrap();
    let training = training["runs"].as_array().unwrap().clone();
    assert_eq!(training.len(), 2);
    assert!(training.iter().all(|r| r["status"] == "completed"));
    let stats: Value =
        serde_json::from_slice(&run(env!("CARGO_BIN_EXE_recops"), &["stats", "--json"]).stdout)
            .unwrap();
    assert_eq!(stats["stats_by_pipeline"]["data_refresh"]["success"], 1);

    // The health check's pipeline component reads PostgreSQL too (the service is not
    // running, so the overall verdict is not asserted).
    let mut c = bin(env!("CARGO_BIN_EXE_health-check"));
    c.env("RECOPS_STORAGE_URL", &url)
        .args(["--home", h, "--json"]);
    let out = c.output().unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    let text = report.to_string();
    assert!(text.contains("data_refresh"), "{text}");
    // Unhealthy (no service running): the job's alert fires, and its state is a row
    // of PostgreSQL's alert_state, read back by `recops alert list`.
    assert_eq!(
        pg.psql(
            &db,
            "SELECT status || ':' || notification_count FROM alert_state \
             WHERE alert_name = 'health_check_unhealthy'"
        ),
        "firing:1"
    );
    let listed: Value = serde_json::from_slice(
        &run(env!("CARGO_BIN_EXE_recops"), &["alert", "list", "--json"]).stdout,
    )
    .unwrap();
    assert!(
        listed["states"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["alert_name"] == "health_check_unhealthy" && s["status"] == "firing"),
        "{listed}"
    );
    run(
        env!("CARGO_BIN_EXE_recops"),
        &[
            "alert",
            "silence",
            "health_*",
            "--for",
            "2h",
            "--reason",
            "maintenance",
        ],
    );
    assert_eq!(
        pg.psql(&db, "SELECT matcher || ':' || reason FROM silences"),
        "health_*:maintenance"
    );

    // The recommender writes its per-minute rollups into PostgreSQL (flushed at
    // shutdown); nothing on the request path touches the database.
    let (mut service, base) = start_recommender(dir.path(), &url);
    recops_core::tls::install_crypto_provider();
    let client = reqwest::blocking::Client::new();
    for user in 0..5 {
        let r = client
            .post(format!("{base}/recommend"))
            .json(&serde_json::json!({"user_id": user, "topk": 5}))
            .send()
            .unwrap();
        assert!(r.status().is_success());
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(service.id()).unwrap()),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert!(service.wait().unwrap().success());
    let served: i64 = pg
        .psql(
            &db,
            "SELECT COALESCE(SUM(request_count), 0) FROM request_rollups WHERE endpoint = '/recommend'",
        )
        .parse()
        .unwrap();
    assert_eq!(served, 5);

    let home = Home::new(dir.path());
    assert!(!home.pipeline_db().exists(), "pipeline_metrics.db written");
    assert!(!home.training_db().exists(), "training_metrics.db written");
    assert!(!home.service_db().exists(), "service_metrics.db written");
    assert!(!home.alert_state_db().exists(), "alert_state.db written");
    // The jobs' pipeline locks were advisory locks: no lock file.
    assert!(
        !home.locks_dir().join("data_refresh.lock").exists(),
        "a lock file was written"
    );
}

/// The recommender on port 0 with `RECOPS_STORAGE_URL`; returns it and its base URL.
#[allow(clippy::zombie_processes)]
fn start_recommender(home: &std::path::Path, url: &str) -> (std::process::Child, String) {
    use std::io::BufRead;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_recommender"))
        .arg("--home")
        .arg(home)
        .args(["--port", "0"])
        .env_remove("RECOPS_ADMIN_TOKEN")
        .env("RECOPS_STORAGE_URL", url)
        .env("RECOPS_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut reader = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        assert!(
            reader.read_line(&mut line).unwrap() > 0,
            "recommender exited"
        );
        if let Some(at) = line.find("listening addr=") {
            let addr = line[at + "listening addr=".len()..].trim().to_owned();
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

/// `recops storage migrate`: an embedded home's history into PostgreSQL (a first,
/// interrupted copy resumes), verified by counts and checksums, then back into a new
/// embedded home with the same checksums.
#[test]
fn storage_migrate_copies_an_embedded_home_to_postgres_and_back() {
    use recops_tracking::{
        IterationRecord, MinuteRollup, NewTrainingRun, PipelineTracker, ServiceMetricsStore,
        TrainingOutcome, TrainingTracker,
    };
    let Some(pg) = PgCluster::shared() else {
        return;
    };
    let url = pg.fresh_database();
    let db = url.rsplit('/').next().unwrap().to_owned();
    let src = tempfile::tempdir().unwrap();
    let home = Home::new(src.path());
    let tracker =
        PipelineTracker::open_path(&home.pipeline_db(), recops_core::SystemClock::shared())
            .unwrap();
    for i in 0..1200 {
        let id = tracker
            .start_run("data_refresh", serde_json::json!({"i": i, "note": "ký tự"}))
            .unwrap();
        if i % 3 == 0 {
            tracker.fail_run(&id, "boom").unwrap();
        } else if i % 3 == 1 {
            tracker
                .complete_run(&id, serde_json::json!({"rows": i}))
                .unwrap();
        }
    }
    let training = TrainingTracker::open(&home).unwrap();
    for n in 0..3 {
        let id = training
            .start_run(&NewTrainingRun {
                model_type: "als".into(),
                hyperparameters: serde_json::json!({"factors": 64}),
                data_version: Some("v1".into()),
                git_commit: None,
            })
            .unwrap();
        for it in 1..=4 {
            training
                .log_iteration(
                    &id,
                    &IterationRecord {
                        iteration: it,
                        loss: Some(0.1 * f64::from(it)),
                        wall_time_seconds: 0.25,
                        ..IterationRecord::default()
                    },
                )
                .unwrap();
        }
        training
            .complete_run(&id, &TrainingOutcome::default())
            .unwrap();
        // Each run registers a model, compared with the champion before it.
        let model = format!("als_2025010{n}_000000");
        training
            .attach_registry(&id, &model, recops_tracking::RegistryStatus::Active)
            .unwrap();
        training
            .record_champion_comparison(&recops_tracking::ChampionRecord {
                run_id: id.clone(),
                model_id: model,
                compared_at: String::new(),
                data_version: Some("v1".into()),
                champion_id: (n > 0).then(|| format!("als_2025010{}_000000", n - 1)),
                champion_ndcg_at_10: (n > 0).then_some(0.2),
                champion_stored_ndcg_at_10: None,
                new_ndcg_at_10: 0.25,
                decision: recops_tracking::ChampionDecision::Promoted,
                summary: format!("comparison {n}"),
            })
            .unwrap();
    }
    // Alert state and silences (logs/alert_state.db of the embedded home).
    let alerts = recops_alerting::AlertManager::load(&home).unwrap();
    alerts.observe(
        "queue_stuck",
        true,
        "queue stuck",
        recops_alerting::Severity::Warning,
    );
    alerts.observe("disk_low", false, "", recops_alerting::Severity::Info);
    alerts
        .silence_for(
            "pipeline_*",
            chrono::Duration::hours(6),
            "moving to PostgreSQL",
        )
        .unwrap();
    drop(alerts);
    let rollups = ServiceMetricsStore::open(&home).unwrap();
    let minute = chrono::Utc::now() - chrono::Duration::hours(1);
    let mut hist = recops_tracking::LatencyHistogram::new();
    for ms in [3.0, 5.0, 80.0] {
        hist.record(ms);
    }
    rollups
        .record(&[MinuteRollup {
            minute,
            endpoint: "/recommend".into(),
            model_id: "als_20250101_000000".into(),
            instance: String::new(),
            request_count: 3,
            error_count: 1,
            fallback_count: 1,
            latency: hist,
        }])
        .unwrap();

    // A registered model (its folder stays on disk) and a deployment record.
    let model: recops_core::ModelId = "als_20250101_000000".parse().unwrap();
    std::fs::create_dir_all(home.model_dir(&model)).unwrap();
    std::fs::write(home.model_dir(&model).join("model.json"), b"{}").unwrap();
    let registry = recops_registry::Registry::open(&home);
    registry
        .register(
            &recops_registry::NewModel {
                model_id: model.clone(),
                model_type: recops_core::ModelType::Als,
                metrics: [("ndcg@10".to_owned(), 0.1)].into(),
                baseline: Default::default(),
                data_version: "v1".into(),
            },
            "test",
        )
        .unwrap();
    registry.promote(None, "best").unwrap();
    registry
        .record_deployment(&model, recops_registry::DeployedBy::Operator, "test")
        .unwrap();
    recops_deploy::DeploymentLog::open(&home)
        .append(recops_deploy::DeploymentRecord {
            timestamp: "2025-01-01T00:00:00.000000+00:00".into(),
            model_id: model.clone(),
            previous_model_id: None,
            status: recops_deploy::DeploymentStatus::Success,
            verification: None,
            rollback_triggered: false,
            rollback_status: None,
            rollback_verification: None,
            action: recops_deploy::DeploymentAction::Deploy,
            reason: None,
            duration_seconds: 0.5,
        })
        .unwrap();

    // An interrupted first copy: some runs are already there.
    let some = tracker.store().export(None, 100).unwrap();
    let pgdb = recops_tracking::PgDatabase::connect_new(&url).unwrap();
    let pg_runs = recops_tracking::PgPipelineStore::open(&pgdb).unwrap();
    assert_eq!(
        recops_tracking::PipelineStore::import(&pg_runs, &some).unwrap(),
        100
    );

    let migrate = |home: &std::path::Path, env_url: Option<&str>, to: &str| -> (Value, String) {
        let mut c = bin(env!("CARGO_BIN_EXE_recops"));
        c.arg("--home")
            .arg(home)
            .args(["storage", "migrate", "--to", to, "--json"]);
        match env_url {
            Some(u) => c.env("RECOPS_STORAGE_URL", u),
            None => c.env_remove("RECOPS_STORAGE_URL"),
        };
        let out = ok(&mut c);
        (
            serde_json::from_slice(&out.stdout).unwrap(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let table = |report: &Value, name: &str| -> Value {
        report["tables"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["table"] == name)
            .unwrap()
            .clone()
    };
    let (first, progress) = migrate(src.path(), None, &url);
    assert!(
        progress.contains("pipeline_runs: 1200/1200 rows"),
        "{progress}"
    );
    let p = table(&first, "pipeline_runs");
    assert_eq!(
        (p["source_rows"].as_u64(), p["copied"].as_u64()),
        (Some(1200), Some(1100))
    );
    assert_eq!(p["already_present"], 100);
    assert_eq!(p["source_checksum"], p["destination_checksum"]);
    assert_eq!(table(&first, "training_runs")["copied"], 3);
    assert_eq!(table(&first, "iteration_metrics")["destination_rows"], 12);
    assert_eq!(table(&first, "request_rollups")["copied"], 1);
    assert_eq!(table(&first, "champion_comparisons")["copied"], 3);
    assert_eq!(table(&first, "alert_state")["copied"], 2);
    assert_eq!(table(&first, "silences")["copied"], 1);
    assert_eq!(
        pg.psql(&db, "SELECT string_agg(alert_name || ':' || status, ',' ORDER BY alert_name) FROM alert_state"),
        "disk_low:ok,queue_stuck:firing"
    );
    assert_eq!(
        pg.psql(&db, "SELECT matcher || ':' || reason FROM silences"),
        "pipeline_*:moving to PostgreSQL"
    );
    assert_eq!(
        pg.psql(
            &db,
            "SELECT string_agg(summary, ',' ORDER BY summary) FROM champion_comparisons"
        ),
        "comparison 0,comparison 1,comparison 2"
    );
    assert_eq!(pg.psql(&db, "SELECT COUNT(*) FROM pipeline_runs"), "1200");
    assert_eq!(table(&first, "registry_models")["copied"], 1);
    assert_eq!(table(&first, "registry_audit")["copied"], 3);
    assert_eq!(table(&first, "deployment_history")["copied"], 1);
    assert_eq!(
        pg.psql(&db, "SELECT current_best FROM registry_state"),
        model.as_str()
    );

    // Again: nothing new, still verified.
    let (again, _) = migrate(src.path(), None, &url);
    assert_eq!(table(&again, "pipeline_runs")["copied"], 0);
    assert_eq!(table(&again, "pipeline_runs")["already_present"], 1200);
    for name in ["champion_comparisons", "alert_state", "silences"] {
        assert_eq!(table(&again, name)["copied"], 0, "{name}");
    }

    // And back, into a new embedded home: the same checksums.
    let back = tempfile::tempdir().unwrap();
    let (returned, _) = migrate(back.path(), Some(&url), "embedded");
    for name in [
        "pipeline_runs",
        "training_runs",
        "iteration_metrics",
        "champion_comparisons",
        "request_rollups",
        "alert_state",
        "silences",
        "registry_models",
        "registry_audit",
        "deployment_history",
    ] {
        assert_eq!(
            table(&returned, name)["destination_checksum"],
            table(&first, name)["source_checksum"],
            "{name}"
        );
    }
    assert!(Home::new(back.path()).pipeline_db().exists());
    // The copied alert state works: the firing alert is not notified again.
    let back_alerts = recops_alerting::AlertManager::load(&Home::new(back.path())).unwrap();
    assert_eq!(back_alerts.silences().unwrap()[0].matcher, "pipeline_*");
    let again = back_alerts.observe(
        "queue_stuck",
        true,
        "queue stuck",
        recops_alerting::Severity::Warning,
    );
    assert!(
        matches!(again.action, recops_alerting::Action::Deduplicated { .. }),
        "{again:?}"
    );
    assert_eq!(
        recops_registry::Registry::open(&Home::new(back.path()))
            .load()
            .unwrap(),
        registry.load().unwrap()
    );
}

/// A bad `RECOPS_STORAGE_URL` fails naming the key; a password in the URL is refused
/// without being echoed; an unreachable server names the URL, never `PGPASSWORD`.
#[test]
fn bad_storage_urls_fail_clearly_and_never_show_a_password() {
    let dir = tempfile::tempdir().unwrap();
    let fail = |url: &str| -> String {
        let out = bin(env!("CARGO_BIN_EXE_recops"))
            .env("RECOPS_STORAGE_URL", url)
            .env("PGPASSWORD", "hunter2-secret")
            .arg("--home")
            .arg(dir.path())
            .args(["runs", "list"])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{url} accepted");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!text.contains("hunter2"), "{text}");
        text
    };
    let e = fail("mysql://recops@127.0.0.1/recops");
    assert!(
        e.contains("storage.url") && e.contains("RECOPS_STORAGE_URL"),
        "{e}"
    );
    let e = fail("postgres://recops:hunter2-secret@127.0.0.1/recops");
    assert!(e.contains("PGPASSWORD"), "{e}");
    // Port 1 on 127.0.0.1: nothing listens there.
    let e = fail("postgres://recops@127.0.0.1:1/recops?connect_timeout=2");
    assert!(
        e.contains("cannot connect to PostgreSQL postgres://recops@127.0.0.1:1/recops"),
        "{e}"
    );
    assert!(!Home::new(dir.path()).pipeline_db().exists());
}

/// Train → register → deploy with `RECOPS_STORAGE_URL` set: the registry, its audit,
/// the deployed record and the deployment history live in PostgreSQL (no
/// `registry.json`, `registry_audit.log` or `deployment_history.json` is written),
/// and `recops models list` and `recops deployments list` read them from there.
#[test]
fn train_register_deploy_keep_registry_and_history_in_postgres() {
    let Some(pg) = PgCluster::shared() else {
        return;
    };
    let url = pg.fresh_database();
    let db = url.rsplit('/').next().unwrap().to_owned();
    let dir = tempfile::tempdir().unwrap();
    let h = dir.path().to_str().unwrap();
    let run = |path: &str, args: &[&str]| {
        let mut c = bin(path);
        c.env("RECOPS_STORAGE_URL", &url)
            .arg("--home")
            .arg(h)
            .args(args);
        ok(&mut c)
    };
    run(
        env!("CARGO_BIN_EXE_recops"),
        &[
            "gen-data",
            "--users",
            "200",
            "--products",
            "80",
            "--interactions",
            "3000",
        ],
    );
    run(env!("CARGO_BIN_EXE_data-refresh"), &[]);
    // The recommender starts with no model, so the deployment below is a real one.
    let (mut service, base) = start_recommender(dir.path(), &url);
    let training: Value = serde_json::from_slice(
        &run(
            env!("CARGO_BIN_EXE_model-training"),
            &["--json", "--no-auto-deploy"],
        )
        .stdout,
    )
    .unwrap();
    let best = training["current_best"].as_str().unwrap().to_owned();
    let deployed: Value = serde_json::from_slice(
        &run(
            env!("CARGO_BIN_EXE_model-deployment"),
            &["--service-url", &base, "--json"],
        )
        .stdout,
    )
    .unwrap();
    assert_eq!(deployed["status"], "deployed", "{deployed}");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(service.id()).unwrap()),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert!(service.wait().unwrap().success());

    let q = |sql: &str| pg.psql(&db, sql);
    assert_eq!(
        q("SELECT current_best || ' ' || (deployed::json ->> 'model_id') FROM registry_state"),
        format!("{best} {best}")
    );
    assert_eq!(
        q(&format!(
            "SELECT status || ' ' || (entry::json -> 'checksum' ->> 'algorithm') \
             FROM registry_models WHERE model_id = '{best}'"
        )),
        "active xxh3-128"
    );
    assert!(
        q("SELECT COUNT(*) FROM registry_audit")
            .parse::<i64>()
            .unwrap()
            >= 3
    );
    assert_eq!(
        q("SELECT string_agg(model_id || ':' || status, ',') FROM deployment_history"),
        format!("{best}:success")
    );

    // The commands read them back from PostgreSQL.
    let out = run(env!("CARGO_BIN_EXE_recops"), &["models", "list", "--json"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&best), "{text}");
    let out = run(
        env!("CARGO_BIN_EXE_recops"),
        &["deployments", "list", "--json"],
    );
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed["deployed"]["model_id"], best.as_str(), "{listed}");
    assert_eq!(listed["deployments"].as_array().unwrap().len(), 1);

    let home = Home::new(dir.path());
    assert!(!home.registry().exists(), "registry.json written");
    assert!(
        !home.registry_audit_log().exists(),
        "registry_audit.log written"
    );
    assert!(
        !home.deployment_history().exists(),
        "deployment_history.json written"
    );
    assert!(home.model_dir(&best.parse().unwrap()).is_dir());
}
