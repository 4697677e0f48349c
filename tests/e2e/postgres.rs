//! The pipeline against a real PostgreSQL (a throwaway cluster on 127.0.0.1): with
//! `RECOPS_STORAGE_URL` set, the jobs record pipeline runs, training runs and
//! iterations in its tables, the recommender its request rollups, the `recops` commands and the health check read them
//! back, and no SQLite file is written for those stores.

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
        "pipeline:1,training:1,training:2"
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
    for _ in 0..3 {
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
    }
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
    assert_eq!(pg.psql(&db, "SELECT COUNT(*) FROM pipeline_runs"), "1200");

    // Again: nothing new, still verified.
    let (again, _) = migrate(src.path(), None, &url);
    assert_eq!(table(&again, "pipeline_runs")["copied"], 0);
    assert_eq!(table(&again, "pipeline_runs")["already_present"], 1200);

    // And back, into a new embedded home: the same checksums.
    let back = tempfile::tempdir().unwrap();
    let (returned, _) = migrate(back.path(), Some(&url), "embedded");
    for name in [
        "pipeline_runs",
        "training_runs",
        "iteration_metrics",
        "request_rollups",
    ] {
        assert_eq!(
            table(&returned, name)["destination_checksum"],
            table(&first, name)["source_checksum"],
            "{name}"
        );
    }
    assert!(Home::new(back.path()).pipeline_db().exists());
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
