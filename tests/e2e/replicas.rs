//! Two recommender processes (OS-chosen ports) behind `service.urls`, one deployer:
//! `model-deployment` switches both or neither, and the health check probes each.

use std::path::Path;

use recops_core::Home;
use recops_registry::Registry;
use serde_json::Value;

use crate::pipeline::{bin, health_model_id, run, start_recommender};

/// A recursive copy of `from` into `to` (the second replica's home).
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

#[test]
fn two_replicas_deploy_together_and_roll_back_together() {
    let dir = tempfile::tempdir().unwrap();
    let (h, h2) = (dir.path().join("a"), dir.path().join("b"));
    let home = Home::new(&h);
    let (code, _, text) = run(bin(env!("CARGO_BIN_EXE_recops"), &h).args([
        "gen-data",
        "--users",
        "400",
        "--products",
        "120",
        "--interactions",
        "12000",
    ]));
    assert_eq!(code, 0, "{text}");
    let (code, _, text) = run(bin(env!("CARGO_BIN_EXE_data-refresh"), &h).arg("--json"));
    assert_eq!(code, 0, "{text}");
    let (code, training, text) =
        run(bin(env!("CARGO_BIN_EXE_model-training"), &h).args(["--json", "--no-auto-deploy"]));
    assert_eq!(code, 0, "{text}");
    let best = training["current_best"].as_str().unwrap().to_owned();
    let other = training["models"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["model_id"].as_str())
        .filter(|id| *id != best)
        .map(|id| recops_core::ModelId::new(id).unwrap())
        .find(|id| Registry::open(&home).servable(id).is_ok())
        .unwrap();

    // Replica b serves a copy of the home where one byte of `other`'s factors
    // differs (the last byte: factor data, which would still load): the registry's
    // checksum makes b refuse the reload, naming the file.
    copy_dir(&h, &h2);
    let other_b = Home::new(&h2).model_dir(&other);
    let factors = other_b.join("model.safetensors");
    let mut bytes = std::fs::read(&factors).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    std::fs::write(&factors, &bytes).unwrap();
    let (mut a, url_a) = start_recommender(&h);
    let (mut b, url_b) = start_recommender(&h2);
    assert_eq!(health_model_id(&url_a).as_deref(), Some(best.as_str()));
    assert_eq!(health_model_id(&url_b).as_deref(), Some(best.as_str()));
    let urls = format!("{url_a},{url_b}");
    let deploy = |id: &str| {
        run(bin(env!("CARGO_BIN_EXE_model-deployment"), &h)
            .env("RECOPS_SERVICE_URLS", &urls)
            .args(["--model-id", id, "--json"]))
    };

    let (code, out, text) = deploy(&other);
    assert_ne!(code, 0, "{text}");
    assert_eq!(out["status"], "rolled_back", "{out}");
    let reason = out["record"]["reason"].as_str().unwrap();
    assert!(reason.contains(&format!("replica {url_b}")), "{out}");
    assert!(
        reason.contains(&format!("model {other}: file model.safetensors differs")),
        "{out}"
    );
    assert!(
        !reason.contains(h2.to_str().unwrap()),
        "no path in the answer: {out}"
    );
    assert_eq!(out["record"]["rollback_status"], "success", "{out}");
    assert_eq!(health_model_id(&url_a).as_deref(), Some(best.as_str()));
    assert_eq!(health_model_id(&url_b).as_deref(), Some(best.as_str()));
    let deployed = Registry::open(&home)
        .deployed()
        .unwrap()
        .map(|d| d.model_id);
    assert_ne!(deployed.as_deref(), Some(other.as_str()), "not recorded");
    let history: Value =
        serde_json::from_slice(&std::fs::read(home.deployment_history()).unwrap()).unwrap();
    let records = history["deployments"].as_array().unwrap();
    assert_eq!(records.len(), 1, "one record for both replicas: {history}");
    assert_eq!(records[0]["status"], "failed");

    // Replica b's files repaired: both switch, and only then is it the deployed model.
    std::fs::remove_dir_all(&other_b).unwrap();
    copy_dir(&home.model_dir(&other), &other_b);
    let (code, out, text) = deploy(&other);
    assert_eq!(code, 0, "{text}");
    assert_eq!(out["status"], "deployed", "{out}");
    assert_eq!(health_model_id(&url_a).as_deref(), Some(other.as_str()));
    assert_eq!(health_model_id(&url_b).as_deref(), Some(other.as_str()));
    let deployed = Registry::open(&home).deployed().unwrap().unwrap();
    assert_eq!(deployed.model_id, other);

    // Health: one replica down makes the service unhealthy, naming it.
    b.kill().unwrap();
    b.wait().unwrap();
    let (_, health, text) = run(bin(env!("CARGO_BIN_EXE_health-check"), &h)
        .env("RECOPS_SERVICE_URLS", &urls)
        .arg("--json"));
    assert_eq!(health["components"]["service"], "unhealthy", "{text}");
    assert!(text.contains(&url_b), "{text}");
    a.kill().unwrap();
    a.wait().unwrap();
}
