use recops_core::Home;
use recops_tracking::{TrainingStatus, TrainingTracker};
use serde_json::Value;

use crate::support::{command as bin, ok};

/// gen-data -> data-refresh -> model-training: both models registered, the best
/// promoted, every iteration tracked, the spec's log lines written; a second run on the
/// same data skips; --force retrains.
#[test]
fn model_training_registers_tracks_and_skips_unchanged_data() {
    let dir = tempfile::tempdir().unwrap();
    let h = dir.path().to_str().unwrap();
    ok(bin(env!("CARGO_BIN_EXE_recops")).args([
        "--home",
        h,
        "gen-data",
        "--users",
        "300",
        "--products",
        "100",
        "--interactions",
        "5000",
    ]));
    ok(bin(env!("CARGO_BIN_EXE_data-refresh")).args(["--home", h]));
    let out = ok(bin(env!("CARGO_BIN_EXE_model-training")).args([
        "--home",
        h,
        "--json",
        "--no-auto-deploy",
    ]));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let models = report["models"].as_array().unwrap();
    assert_eq!(models.len(), 2, "{report}");
    assert!(
        models.iter().all(|m| m["status"] == "registered"),
        "{report}"
    );

    let home = Home::new(dir.path());
    let registry: Value = serde_json::from_slice(&std::fs::read(home.registry()).unwrap()).unwrap();
    let best = registry["current_best"].as_str().unwrap().to_owned();
    assert_eq!(registry["models"].as_object().unwrap().len(), 2);
    assert!(
        home.model_dir(&best.parse().unwrap())
            .join("model.safetensors")
            .exists()
    );

    let tracker = TrainingTracker::open(&home).unwrap();
    let runs = tracker.list_runs(None, 10).unwrap();
    assert_eq!(runs.len(), 2);
    for run in &runs {
        assert_eq!(run.status, Some(TrainingStatus::Completed));
        assert!(run.model_id.is_some());
        assert!(!tracker.iterations(&run.run_id).unwrap().is_empty());
    }
    let log = std::fs::read_to_string(home.cf_log("als").unwrap()).unwrap();
    for needle in [
        "| INFO | ========== ALS Training Started ==========",
        "| INFO | Config: factors=64, regularization=0.05, iterations=15",
        "| INFO | Iteration 1/15 | loss=",
        "| INFO | Baseline (popularity): recall@10=",
        "| INFO | Registered to registry: als_",
    ] {
        assert!(log.contains(needle), "missing {needle:?} in:\n{log}");
    }

    // Same data: nothing to train.
    let out = ok(bin(env!("CARGO_BIN_EXE_model-training")).args([
        "--home",
        h,
        "--json",
        "--model",
        "als",
        "--no-auto-deploy",
    ]));
    let again: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(again["models"][0]["status"], "skipped", "{again}");
}

#[test]
fn model_training_without_processed_data_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let out = bin(env!("CARGO_BIN_EXE_model-training"))
        .args(["--home", dir.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("interactions.parquet") && text.contains("data-refresh"),
        "{text}"
    );
}
