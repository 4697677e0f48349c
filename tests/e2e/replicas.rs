//! Two recommender processes (OS-chosen ports) behind `service.urls`, one deployer:
//! `model-deployment` switches both or neither, and the health check probes each.
//! Two replicas sharing one home write their own rollups (labelled by instance) and
//! the health check adds them up.

use std::path::Path;

use recops_core::Home;
use recops_registry::Registry;
use recops_tracking::ServiceMetricsStore;
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

    // Replica c shares a's home (and so its rollup store): each writes its own rows,
    // labelled `<host>:<port>`, flushed when stopped with SIGTERM.
    let (mut c, url_c) = start_recommender(&h);
    let client = reqwest::blocking::Client::new();
    for (url, n) in [(&url_a, 7), (&url_c, 5)] {
        for u in 0..n {
            let r = client
                .post(format!("{url}/recommend"))
                .header("content-type", "application/json")
                .body(format!(r#"{{"user_id": {u}, "topk": 5}}"#))
                .send()
                .unwrap();
            assert_eq!(r.status().as_u16(), 200);
        }
    }
    for p in [&mut a, &mut c] {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(p.id()).unwrap());
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
        p.wait().unwrap();
    }
    let now = chrono::Utc::now();
    let by_instance = ServiceMetricsStore::open(&home)
        .unwrap()
        .window_by_instance(
            now - chrono::Duration::hours(1),
            now + chrono::Duration::minutes(1),
            Some("/recommend"),
        )
        .unwrap();
    // Instances are `<host name>:<port>`.
    let requests_of = |url: &str| {
        let port = format!(":{}", url.rsplit(':').next().unwrap());
        let (_, m) = by_instance
            .iter()
            .find(|(i, _)| i.ends_with(&port))
            .unwrap();
        m.request_count
    };
    assert_eq!(by_instance.len(), 2, "{by_instance:?}");
    // c served only these 5; a also answered the deployment checks.
    assert_eq!(requests_of(&url_c), 5);
    let from_a = requests_of(&url_a);
    assert!(from_a >= 7, "{by_instance:?}");

    // Health: replicas down make the service unhealthy, naming them; its request
    // metrics add up every replica's rows.
    b.kill().unwrap();
    b.wait().unwrap();
    let (_, health, text) = run(bin(env!("CARGO_BIN_EXE_health-check"), &h)
        .env("RECOPS_SERVICE_URLS", &urls)
        .arg("--json"));
    assert_eq!(health["components"]["service"], "unhealthy", "{text}");
    assert!(text.contains(&url_b), "{text}");
    assert_eq!(
        health["service_metrics"]["metrics"]["request_count"].as_u64(),
        Some(from_a + 5),
        "{text}"
    );
}
