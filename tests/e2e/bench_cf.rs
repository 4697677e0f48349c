//! `recops bench-cf`: the JSON contract `shared/bench/cf_vs_implicit.py` reads, and
//! clear errors for bad CSV files.

use serde_json::Value;
use std::fmt::Write as _;

use crate::support::recops;

#[test]
fn bench_cf_prints_the_harness_json() {
    let dir = tempfile::tempdir().unwrap();
    // Small configs so the test is quick: 4 factors, few iterations.
    std::fs::create_dir_all(dir.path().join("config")).unwrap();
    std::fs::write(
        dir.path().join("config/als_config.yaml"),
        "model:\n  factors: 4\n  iterations: 3\ntuning:\n  trials: 3\n  factors: [2, 4]\n  min_iterations: 1\n  max_iterations: 3\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("config/bpr_config.yaml"),
        "model:\n  factors: 4\n  iterations: 3\ntuning:\n  trials: 3\n  factors: [2, 4]\n  min_iterations: 1\n  max_iterations: 3\n",
    )
    .unwrap();
    let mut csv = String::from("user_id,item_id,rating,timestamp\n");
    for u in 0..30 {
        for i in 0..8 {
            writeln!(
                csv,
                "{u},{},{},{}",
                (u % 3) * 10 + i,
                1 + (u + i) % 5,
                1000 + i
            )
            .unwrap();
        }
    }
    let data = dir.path().join("data.csv");
    std::fs::write(&data, csv).unwrap();
    let out = recops(
        dir.path(),
        &[
            "bench-cf",
            "--data",
            data.to_str().unwrap(),
            "--models",
            "als,bpr,popularity",
            "--threads",
            "2",
            "--json",
            "--tune",
            "600",
            "--trials",
            "4",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    // 30 users x 8 items each: floor(0.2 * 8) = 1 held out per user.
    assert_eq!(v["split"]["users"], 30);
    assert_eq!(v["split"]["items"], 24);
    assert_eq!(v["split"]["train"], 210);
    assert_eq!(v["split"]["test"], 30);
    assert_eq!(v["split"]["test_users"], 30);
    for model in ["als", "bpr", "als_tuned", "bpr_tuned"] {
        let r = &v["results"][model];
        if !model.ends_with("_tuned") {
            assert_eq!(r["iterations"], 3, "{model}");
        }
        for key in [
            "seconds_total",
            "seconds_per_iteration",
            "recall_at_10",
            "ndcg_at_10",
            "coverage_at_10",
        ] {
            assert!(r[key].as_f64().is_some(), "{model}.{key} missing in {r}");
        }
    }
    // `--trials 4`: the given plan, recorded with each search.
    for model in ["als_tuned", "bpr_tuned"] {
        let t = &v["tuning"][model];
        assert_eq!(t["planned_trials"], 4, "{t}");
        assert_eq!(t["trials_from_budget"], false, "{t}");
    }
    assert!(v["results"]["popularity"]["seconds_total"].is_null());
    assert!(v["results"]["popularity"]["ndcg_at_10"].as_f64().is_some());
    // The recency-aware popularity variants, under keys starting with `popularity`.
    for key in ["popularity_decay_7d", "popularity_decay_30d"] {
        assert!(v["results"][key]["ndcg_at_10"].as_f64().is_some(), "{key}");
    }
}

#[test]
fn bench_cf_names_the_bad_line_of_a_csv() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("bad.csv");
    std::fs::write(
        &data,
        "user_id,item_id,rating,timestamp\n1,2,5,100\n1,x,4,101\n",
    )
    .unwrap();
    let out = recops(dir.path(), &["bench-cf", "--data", data.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.csv line 3: item_id \"x\" is not an integer"),
        "{err}"
    );
    let out = recops(
        dir.path(),
        &[
            "bench-cf",
            "--data",
            data.to_str().unwrap(),
            "--models",
            "svd",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(2),
        "an unknown model is a usage error"
    );
}
