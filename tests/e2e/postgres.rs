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
        "pipeline:1,training:1"
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
