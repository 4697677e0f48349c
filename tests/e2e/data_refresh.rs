use std::process::Command;

use serde_json::Value;

fn bin(name: &str) -> Command {
    let path = match name {
        "recops" => env!("CARGO_BIN_EXE_recops"),
        _ => env!("CARGO_BIN_EXE_data-refresh"),
    };
    let mut c = crate::support::command(path);
    c.env_remove("RECOPS_STAGING_DIR");
    c
}

#[test]
fn gen_data_then_data_refresh_builds_the_processed_data() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().to_str().unwrap();
    let out = bin("recops")
        .args([
            "--home",
            home,
            "gen-data",
            "--users",
            "200",
            "--products",
            "50",
            "--interactions",
            "3000",
        ])
        .args([
            "--files",
            "2",
            "--drift-rating-shift",
            "-1.5",
            "--drift-new-items",
            "3",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["interactions"], 3000);
    assert_eq!(summary["products"], 53);
    assert_eq!(summary["staging_files"].as_array().unwrap().len(), 2);
    assert!(summary["drift_window_start"].is_string());
    assert!(
        dir.path()
            .join("data/published_data/data_product.csv")
            .exists()
    );

    let out = bin("data-refresh")
        .args(["--home", home, "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["status"], "success");
    assert_eq!(r["type"], "full");
    assert_eq!(r["new_records"], 3000);
    assert_eq!(r["total_records"], 3000);
    assert!(r["run_id"].as_str().unwrap().starts_with("data_refresh_"));
    for f in [
        "interactions.parquet",
        "X_train_confidence.npz",
        "user_item_mappings.json",
        "user_metadata.parquet",
        "data_version.json",
    ] {
        assert!(dir.path().join("data/processed").join(f).exists(), "{f}");
    }
    assert!(dir.path().join("logs/data_refresh.log").exists());
    // The human form, and a second run with nothing to do.
    let out = bin("data-refresh").args(["--home", home]).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.starts_with("data_refresh success (run data_refresh_"),
        "{text}"
    );
    assert!(
        text.contains(": no new data, 0 files, 0 new records (0 rejected), 3000 total, unchanged"),
        "{text}"
    );
    // `recops stats` sees both runs.
    let out = bin("recops")
        .args(["--home", home, "stats", "--json"])
        .output()
        .unwrap();
    let stats: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(stats["stats_by_pipeline"]["data_refresh"]["success"], 2);
}

#[test]
fn a_broken_staging_file_exits_1_and_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let staging = dir.path().join("data/staging");
    std::fs::create_dir_all(&staging).unwrap();
    std::fs::write(staging.join("bad.csv"), "id,stars\n1,5\n").unwrap();
    let out = bin("data-refresh")
        .args(["--home", dir.path().to_str().unwrap(), "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["status"], "failed");
    let err = r["error"].as_str().unwrap();
    assert!(
        err.contains("bad.csv") && err.contains("missing required column(s)"),
        "{err}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("error: data_refresh run"), "{stderr}");
    assert!(staging.join("bad.csv").exists());
    // Usage errors exit 2.
    let out = bin("data-refresh").arg("--no-such-flag").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn init_writes_the_data_config() {
    let dir = tempfile::tempdir().unwrap();
    let out = bin("recops")
        .args(["--home", dir.path().to_str().unwrap(), "init"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = std::fs::read_to_string(dir.path().join("config/data_config.yaml")).unwrap();
    assert!(text.contains("incremental_max_new_rows"));
}
