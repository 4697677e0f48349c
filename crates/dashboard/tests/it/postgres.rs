//! A home whose stores are in PostgreSQL (`storage.url`): the dashboard reads them
//! through the store traits, never writing or migrating. Skipped with a NOTICE when
//! PostgreSQL is not installed, unless `CI=true` or `RECOPS_REQUIRE_POSTGRES=1`.

use recops_core::Home;
use recops_testkit::PgCluster;
use recops_tracking::{
    IterationRecord, LatencyHistogram, MinuteRollup, NewTrainingRun, PipelineTracker,
    ServiceMetricsStore, Storage, TrainingOutcome, TrainingTracker,
};
use serde_json::json;

use crate::support::Running;

/// A home whose `config/recops.yaml` points at a fresh database, and that database's
/// name.
fn postgres_home(pg: &PgCluster) -> (tempfile::TempDir, Home, String, String) {
    let url = pg.fresh_database();
    let db = url.rsplit('/').next().unwrap().to_owned();
    let dir = tempfile::tempdir().unwrap();
    let home = Home::new(dir.path());
    std::fs::create_dir_all(dir.path().join("config")).unwrap();
    let shipped = include_str!("../../../../config/recops.yaml");
    assert!(shipped.contains("  url: \"\"\n"));
    std::fs::write(
        dir.path().join("config/recops.yaml"),
        shipped.replacen("  url: \"\"\n", &format!("  url: {url}\n"), 1),
    )
    .unwrap();
    (dir, home, url, db)
}

#[test]
fn a_postgres_home_with_no_tables_is_empty_and_left_untouched() {
    let Some(pg) = PgCluster::shared() else {
        return;
    };
    let (dir, home, _url, db) = postgres_home(pg);
    let d = Running::start(dir, home, None);
    let (status, text) = d.get("/metrics");
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("recops_pipeline_store_up 1\n"), "{text}");
    assert!(!text.contains("{pipeline="), "{text}");
    assert_eq!(
        pg.psql(
            &db,
            "SELECT to_regclass('recops_schema_migrations') IS NULL"
        ),
        "t",
        "the dashboard created tables"
    );
    for (path, panel) in [
        ("/api/v1/pipelines", "runs"),
        ("/api/v1/training", "runs"),
        ("/api/v1/service", "totals"),
        ("/api/v1/alerts", "states"),
        ("/api/v1/alerts", "silences"),
    ] {
        let v = d.json(path);
        assert_eq!(v[panel]["state"], "empty", "{path}: {v}");
    }
    assert_eq!(
        pg.psql(
            &db,
            "SELECT to_regclass('recops_schema_migrations') IS NULL"
        ),
        "t",
        "the API created tables"
    );
    assert!(!d.home.logs_dir().join("pipeline_metrics.db").exists());
}

#[test]
fn the_api_of_a_postgres_home_shows_its_runs_training_runs_and_rollups() {
    let Some(pg) = PgCluster::shared() else {
        return;
    };
    let (dir, home, _url, _db) = postgres_home(pg);
    let storage = Storage::of(&home).unwrap();
    assert!(matches!(storage, Storage::Postgres(_)), "{storage:?}");
    let runs = PipelineTracker::open(&home).unwrap();
    let ok = runs.start_run("data_refresh", json!({})).unwrap();
    runs.complete_run(&ok, json!({"records_processed": 10}))
        .unwrap();
    let bad = runs.start_run("model_training", json!({})).unwrap();
    runs.fail_run(&bad, "disk full").unwrap();
    let finished = runs.get_run(&ok).unwrap().unwrap().finished_at.unwrap();
    let training = TrainingTracker::open(&home).unwrap();
    let trained = training
        .start_run(&NewTrainingRun {
            model_type: "als".into(),
            hyperparameters: json!({"factors": 8}),
            data_version: Some("v1".into()),
            git_commit: None,
        })
        .unwrap();
    for i in 1..=3 {
        training
            .log_iteration(
                &trained,
                &IterationRecord {
                    iteration: i,
                    loss: Some(1.0 / f64::from(i)),
                    validation_recall: Some(0.1 * f64::from(i)),
                    validation_ndcg: None,
                    wall_time_seconds: 0.5,
                },
            )
            .unwrap();
    }
    training
        .complete_run(
            &trained,
            &TrainingOutcome {
                recall_at_10: 0.3,
                ndcg_at_10: 0.2,
                coverage: 0.5,
                baseline_recall_at_10: 0.1,
                improvement_pct: 200.0,
                training_time_seconds: 1.5,
                artifacts_path: None,
            },
        )
        .unwrap();
    let finished = chrono::DateTime::parse_from_rfc3339(&finished).unwrap();

    let mut latency = LatencyHistogram::new();
    (0..40).for_each(|_| latency.record(25.0));
    ServiceMetricsStore::open(&home)
        .unwrap()
        .record(&[MinuteRollup {
            minute: recops_tracking::truncate_minute(chrono::Utc::now()),
            endpoint: "/recommend".into(),
            model_id: "als_1".into(),
            instance: String::new(),
            request_count: 40,
            error_count: 2,
            fallback_count: 4,
            latency,
        }])
        .unwrap();

    // An alert fired and a silence set by another process (a job, `recops alert`).
    let alerts = recops_alerting::AlertManager::load(&home).unwrap();
    alerts.observe(
        "queue_stuck",
        true,
        "the queue has not moved for 2h",
        recops_alerting::Severity::Critical,
    );
    alerts
        .silence_for("pipeline_*", chrono::Duration::hours(3), "moving hosts")
        .unwrap();
    drop(alerts);
    // Scheduler state, through the same trait the scheduler writes with.
    let state = recops_scheduler::StateStore::open_home(&home).unwrap();
    let now = chrono::Utc::now();
    state.ensure("data_refresh", now).unwrap();
    state
        .finish("data_refresh", "scheduler_data_refresh_1", now, true)
        .unwrap();
    state.ensure("drift_detection", now).unwrap();
    state.set_overdue("drift_detection", Some(now)).unwrap();

    let d = Running::start(dir, home, None);
    let (status, text) = d.get("/metrics");
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("recops_pipeline_store_up 1\n"), "{text}");
    assert!(
        text.contains(&format!(
            "recops_pipeline_last_success_timestamp_seconds{{pipeline=\"data_refresh\"}} {}\n",
            finished.timestamp_millis() as f64 / 1000.0
        )),
        "{text}"
    );
    assert!(
        text.contains("recops_pipeline_last_run_success{pipeline=\"model_training\"} 0\n"),
        "{text}"
    );
    assert!(!d.home.logs_dir().join("pipeline_metrics.db").exists());

    // The pipelines API: runs, filters, summary, failures, one run, the trends.
    let p = d.json("/api/v1/pipelines");
    assert_eq!(
        p["pipelines"],
        json!(["data_refresh", "model_training"]),
        "{p}"
    );
    let runs = p["runs"]["data"]["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2, "{p}");
    assert_eq!(runs[0]["run_id"], json!(bad), "newest first: {p}");
    let summary = p["summary"]["data"].as_array().unwrap();
    assert_eq!(summary[0]["pipeline_name"], "data_refresh");
    assert_eq!(summary[0]["success_rate"], json!(1.0));
    assert_eq!(summary[1]["failed"], json!(1));
    assert_eq!(p["failures"]["data"][0]["error_message"], "disk full");
    let one = d.json("/api/v1/pipelines?status=success");
    assert_eq!(one["runs"]["data"]["runs"][0]["run_id"], json!(ok), "{one}");
    let run = d.json(&format!("/api/v1/pipelines/runs/{ok}"));
    assert_eq!(
        run["data"]["metadata"]["records_processed"],
        json!(10),
        "{run}"
    );
    let trend = d.json("/api/v1/pipelines/trend?chart=success_rate&days=7");
    assert_eq!(trend["state"], "ready", "{trend}");
    let (status, html) = d.get("/pipelines");
    assert_eq!(status, 200);
    assert!(html.contains(&ok) && !html.contains("cannot read pipeline runs"));

    // Training runs, their iterations and the evaluation trend.
    let t = d.json("/api/v1/training");
    assert_eq!(
        t["runs"]["data"]["runs"][0]["run_id"],
        json!(trained),
        "{t}"
    );
    assert_eq!(
        t["runs"]["data"]["runs"][0]["recall_at_10"],
        json!(0.3),
        "{t}"
    );
    let run = d.json(&format!("/api/v1/training/runs/{trained}"));
    assert_eq!(run["data"]["iterations"], json!(3), "{run}");
    assert_eq!(run["data"]["hyperparameters"]["factors"], json!(8), "{run}");
    let curves = d.json(&format!("/api/v1/training/runs/{trained}/curves"));
    assert_eq!(curves["state"], "ready", "{curves}");
    assert!(curves.to_string().contains("validation_recall"), "{curves}");
    let eval = d.json("/api/v1/training/evaluation");
    assert_eq!(eval["state"], "ready", "{eval}");
    assert!(!d.home.logs_dir().join("training_metrics.db").exists());

    // Service rollups.
    let service = d.json("/api/v1/service?range=1h");
    let totals = &service["totals"]["data"];
    assert_eq!(totals["requests"], json!(40), "{service}");
    assert_eq!(totals["error_rate"], json!(0.05), "{service}");
    assert_eq!(totals["fallback_rate"], json!(0.1), "{service}");
    let latency = d.json("/api/v1/service/chart?range=1h&chart=latency");
    assert_eq!(latency["state"], "ready", "{latency}");
    assert!(!d.home.logs_dir().join("service_metrics.db").exists());

    // Alert state and silences, read from PostgreSQL's alert_state and silences.
    let a = d.json("/api/v1/alerts");
    let state = &a["states"]["data"][0];
    assert_eq!(state["alert_name"], "queue_stuck", "{a}");
    assert_eq!(state["status"], "firing", "{a}");
    assert_eq!(state["notification_count"], json!(1), "{a}");
    assert_eq!(
        state["last_message"], "queue_stuck: the queue has not moved for 2h",
        "{a}"
    );
    assert_eq!(a["silences"]["data"][0]["matcher"], "pipeline_*", "{a}");
    assert_eq!(a["silences"]["data"][0]["reason"], "moving hosts", "{a}");
    let (status, html) = d.get("/alerts");
    assert_eq!(status, 200);
    assert!(html.contains("queue_stuck") && html.contains("moving hosts"));
    assert!(!d.home.alert_state_db().exists(), "alert_state.db written");
    // The scheduler panel reads the PostgreSQL state.
    let sched = d.json("/api/v1/scheduler");
    assert_eq!(sched["state"]["data"], json!(2), "{sched}");
    let jobs = sched["jobs"]["data"].as_array().unwrap();
    let job = |name: &str| jobs.iter().find(|j| j["job"] == name).unwrap().clone();
    assert_eq!(job("data_refresh")["last_status"], "success", "{sched}");
    assert_eq!(
        job("data_refresh")["last_run_id"],
        "scheduler_data_refresh_1"
    );
    assert!(
        job("drift_detection")["overdue_since"].is_object(),
        "{sched}"
    );
    assert!(!d.home.scheduler_state_db().exists());
}

#[test]
fn an_unreachable_postgres_makes_the_panels_unavailable_and_metrics_down() {
    // Nothing listens on port 1: the first panel waits for the pool's timeout, the
    // others get the remembered error at once.
    let dir = tempfile::tempdir().unwrap();
    let home = Home::new(dir.path());
    std::fs::create_dir_all(dir.path().join("config")).unwrap();
    let shipped = include_str!("../../../../config/recops.yaml");
    std::fs::write(
        dir.path().join("config/recops.yaml"),
        shipped.replacen(
            "  url: \"\"\n",
            "  url: postgres://recops@127.0.0.1:1/recops\n",
            1,
        ),
    )
    .unwrap();
    let d = Running::start(dir, home, None);
    let p = d.json("/api/v1/pipelines");
    for panel in ["runs", "summary", "failures"] {
        assert_eq!(p[panel]["state"], "unavailable", "{panel}: {p}");
        let message = p[panel]["message"].as_str().unwrap();
        assert!(message.contains("127.0.0.1:1"), "{message}");
    }
    let (status, text) = d.get("/metrics");
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("recops_pipeline_store_up 0\n"), "{text}");
    assert!(!d.home.logs_dir().join("pipeline_metrics.db").exists());
}
