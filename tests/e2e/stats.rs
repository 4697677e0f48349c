use recops_core::Home;
use recops_tracking::PipelineTracker;
use serde_json::{Value, json};

use crate::support::recops;

#[test]
fn stats_prints_the_spec_shape_as_json_and_a_table() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::new(dir.path());
    let tracker = PipelineTracker::open(&home).unwrap();
    for i in 0..6 {
        let id = tracker.start_run("data_refresh", json!({"i": i})).unwrap();
        if i == 5 {
            tracker.fail_run(&id, "staging file unreadable").unwrap();
        } else {
            tracker.complete_run(&id, json!({})).unwrap();
        }
    }
    tracker.start_run("model_training", json!({})).unwrap();
    drop(tracker);

    let out = recops(dir.path(), &["stats", "--days", "7", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["period_days"], json!(7));
    let dr = &v["stats_by_pipeline"]["data_refresh"];
    assert_eq!(dr["success"], json!(5));
    assert_eq!(dr["failed"], json!(1));
    assert_eq!(dr["running"], json!(0));
    assert!((dr["success_rate"].as_f64().unwrap() - 5.0 / 6.0).abs() < 1e-9);
    assert!(dr["avg_duration_seconds"].is_number());
    assert_eq!(
        v["stats_by_pipeline"]["model_training"]["running"],
        json!(1)
    );

    let out = recops(dir.path(), &["stats"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let row = text
        .lines()
        .find(|l| l.starts_with("data_refresh"))
        .unwrap();
    assert!(row.contains("83.3%"), "{text}");
    assert!(text.contains("SUCCESS RATE"), "{text}");
}

#[test]
fn stats_on_an_empty_home_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let out = recops(dir.path(), &["stats"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("No pipeline runs"));
}

#[test]
fn a_corrupt_database_is_named_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::new(dir.path());
    std::fs::create_dir_all(home.logs_dir()).unwrap();
    let junk = b"run_id,status\nx,success\n".repeat(50);
    std::fs::write(home.pipeline_db(), &junk).unwrap();
    let out = recops(dir.path(), &["stats", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("pipeline_metrics.db") && err.contains("not an SQLite database"),
        "{err}"
    );
    assert_eq!(std::fs::read(home.pipeline_db()).unwrap(), junk);
}

#[test]
fn bad_flags_exit_2_with_usage() {
    let dir = tempfile::tempdir().unwrap();
    let out = recops(dir.path(), &["stats", "--days", "zero"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--days"));
}

#[test]
fn init_writes_the_default_config_once() {
    let dir = tempfile::tempdir().unwrap();
    let out = recops(dir.path(), &["init"]);
    assert!(out.status.success());
    let home = Home::new(dir.path());
    let text = std::fs::read_to_string(home.recops_config()).unwrap();
    assert_eq!(text, recops_core::DEFAULT_RECOPS_CONFIG);
    std::fs::write(home.recops_config(), "edited").unwrap();
    let out = recops(dir.path(), &["init"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("kept"));
    assert_eq!(
        std::fs::read_to_string(home.recops_config()).unwrap(),
        "edited"
    );
}
