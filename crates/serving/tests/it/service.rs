use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{Duration, TimeZone, Utc};
use recops_core::{FixedClock, ModelId};
use recops_serving::{
    Error, ModelParts, ModelSource, RunningService, ServiceOptions, ServingModel,
};
use recops_tracking::ServiceMetricsStore;
use serde_json::Value;

/// Models kept in memory; `load` validates like the real source does.
#[derive(Default)]
struct MemorySource {
    models: Mutex<HashMap<ModelId, ModelParts>>,
    initial: Mutex<Option<ModelId>>,
    loads: AtomicUsize,
}

impl ModelSource for MemorySource {
    fn initial_model_id(&self) -> recops_serving::Result<Option<ModelId>> {
        Ok(self.initial.lock().unwrap().clone())
    }
    fn load(&self, model_id: &ModelId) -> recops_serving::Result<ServingModel> {
        self.loads.fetch_add(1, Ordering::SeqCst);
        let parts = self
            .models
            .lock()
            .unwrap()
            .get(model_id)
            .cloned()
            .ok_or_else(|| Error::ModelUnavailable {
                model_id: model_id.to_string(),
                reason: recops_serving::Unavailable::NotRegistered,
            })?;
        ServingModel::new(parts)
    }
}

/// 50 users x 40 items; `shift` changes the scores so models differ.
pub(crate) fn parts(model_id: &str, shift: f32) -> ModelParts {
    let (nu, ni, k) = (50usize, 40usize, 4usize);
    ModelParts {
        model_id: model_id.parse().unwrap(),
        model_type: recops_core::ModelType::Als,
        user_ids: (0..nu as i64).map(|u| 1000 + u).collect(),
        item_ids: (0..ni as i64).map(|i| 500 + i).collect(),
        factors: k,
        user_factors: (0..nu * k).map(|x| ((x * 7 % 11) as f32) / 10.0).collect(),
        item_factors: (0..ni * k)
            .map(|x| ((x * 5 % 13) as f32) / 10.0 + shift)
            .collect(),
        seen_indptr: (0..=nu).map(|u| u * 2).collect(),
        // User u has seen items u and u + 1 (mod the item count), sorted.
        seen_indices: (0..nu)
            .flat_map(|u| {
                let (a, b) = ((u % ni) as u32, ((u + 1) % ni) as u32);
                [a.min(b), a.max(b)]
            })
            .collect(),
        item_popularity: (0..ni as u32).map(|i| 100 - i).collect(),
    }
}

/// `text` without the `instance="<instance>"` label, which every sample must carry.
pub(crate) fn strip_instance(text: &str, instance: &str) -> String {
    let first = format!("{{instance=\"{instance}\",");
    let only = format!("{{instance=\"{instance}\"}}");
    let mut out = String::new();
    for line in text.lines() {
        if !line.starts_with('#') && !line.is_empty() {
            assert!(
                line.contains(&first) || line.contains(&only),
                "no instance=\"{instance}\" label: {line}"
            );
        }
        out.push_str(&line.replace(&first, "{").replace(&only, ""));
        out.push('\n');
    }
    out
}

pub(crate) struct Fixture {
    pub(crate) service: Option<RunningService>,
    source: Arc<MemorySource>,
    pub(crate) base: String,
    client: reqwest::blocking::Client,
    _dir: tempfile::TempDir,
    pub(crate) db: std::path::PathBuf,
}

impl Fixture {
    fn start(token: Option<&str>, initial: Option<&str>) -> Fixture {
        Fixture::start_with(
            initial,
            ServiceOptions {
                admin_token: token.map(str::to_owned),
                ..ServiceOptions::default()
            },
        )
    }

    /// A service with `options`, serving `initial` at start.
    pub(crate) fn start_with(initial: Option<&str>, options: ServiceOptions) -> Fixture {
        recops_core::tls::install_crypto_provider();
        let source = Arc::new(MemorySource::default());
        for (id, shift) in [("als_20250101_000000", 0.0), ("bpr_20250102_000000", 0.5)] {
            source
                .models
                .lock()
                .unwrap()
                .insert(id.parse().unwrap(), parts(id, shift));
        }
        let mut broken = parts("als_20250103_000000", 0.0);
        broken.item_factors[3] = f32::NAN;
        source
            .models
            .lock()
            .unwrap()
            .insert(broken.model_id.clone(), broken);
        *source.initial.lock().unwrap() = initial.map(|id| id.parse().unwrap());
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("service_metrics.db");
        let store = Arc::new(ServiceMetricsStore::open_path(&db).unwrap());
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let clock = FixedClock::new(Utc.with_ymd_and_hms(2025, 1, 15, 10, 0, 0).unwrap());
        let service = RunningService::start(
            listener,
            source.clone(),
            Some(store),
            options,
            clock.shared(),
        )
        .unwrap();
        let base = format!("http://{}", service.addr());
        Fixture {
            service: Some(service),
            source,
            base,
            client: reqwest::blocking::Client::new(),
            _dir: dir,
            db,
        }
    }

    pub(crate) fn get(&self, path: &str) -> (u16, String) {
        let r = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .unwrap();
        (r.status().as_u16(), r.text().unwrap())
    }

    /// `GET /metrics`, checking that every sample carries the instance label (default
    /// `<host name>:<port>`), returned without it so assertions read plainly.
    pub(crate) fn metrics(&self) -> String {
        let (code, text) = self.get("/metrics");
        assert_eq!(code, 200, "{text}");
        let port = self.base.rsplit(':').next().unwrap();
        let host = hostname::get().unwrap().to_string_lossy().into_owned();
        strip_instance(&text, &format!("{host}:{port}"))
    }

    pub(crate) fn post(&self, path: &str, body: &str, token: Option<&str>) -> (u16, Value) {
        let mut req = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body.to_owned());
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let r = req.send().unwrap();
        let status = r.status().as_u16();
        (status, r.json().unwrap_or(Value::Null))
    }
}

#[test]
fn health_readiness_and_recommendations() {
    let f = Fixture::start(None, Some("als_20250101_000000"));
    let (code, body) = f.get("/health");
    assert_eq!(code, 200);
    let health: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["model_id"], "als_20250101_000000");
    assert_eq!(health["loaded_at"], "2025-01-15T10:00:00.000000+00:00");
    assert!(health["uptime_seconds"].is_number());
    assert_eq!(f.get("/livez").0, 200);
    assert_eq!(f.get("/readyz").0, 200);

    let (code, rec) = f.post("/recommend", r#"{"user_id": 1003, "topk": 5}"#, None);
    assert_eq!(code, 200, "{rec}");
    assert_eq!(rec["user_id"], 1003);
    assert_eq!(rec["model_id"], "als_20250101_000000");
    assert_eq!(rec["fallback"], false);
    let items = rec["items"].as_array().unwrap();
    assert_eq!(items.len(), 5);
    // Seen items (3 and 4 -> product ids 503, 504) are filtered; scores descend.
    assert!(
        items
            .iter()
            .all(|i| i["product_id"] != 503 && i["product_id"] != 504)
    );
    let scores: Vec<f64> = items.iter().map(|i| i["score"].as_f64().unwrap()).collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");

    let (code, rec) = f.post("/recommend", r#"{"user_id": 999999}"#, None);
    assert_eq!(code, 200);
    assert_eq!(rec["fallback"], true);
    assert_eq!(rec["items"].as_array().unwrap().len(), 10);
    assert_eq!(rec["items"][0]["product_id"], 500);
}

#[test]
fn bad_requests_get_400_with_a_message() {
    let f = Fixture::start(None, Some("als_20250101_000000"));
    for (body, needle) in [
        ("{not json", ""),
        (r#"{"user_id": "abc"}"#, "user_id"),
        (r#"{"topk": 5}"#, "user_id"),
        (r#"{"user_id": 1, "topk": 0}"#, "topk"),
        (r#"{"user_id": 1, "topk": 1000}"#, "topk"),
        (r#"{"user_id": 1, "extra": 1}"#, "extra"),
    ] {
        let (code, v) = f.post("/recommend", body, None);
        assert_eq!(code, 400, "{body}: {v}");
        let msg = v["error"].as_str().unwrap();
        assert!(msg.contains(needle), "{body}: {msg}");
    }
    assert_eq!(f.get("/nope").0, 404);
    // Bodies beyond the limit are refused before parsing. (The server closes that
    // connection, so use a client of its own.)
    let big = format!(r#"{{"user_id": 1, "pad": "{}"}}"#, "x".repeat(20 * 1024));
    recops_core::tls::install_crypto_provider();
    let r = reqwest::blocking::Client::new()
        .post(format!("{}/recommend", f.base))
        .header("content-type", "application/json")
        .body(big)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 413);
}

#[test]
fn without_a_model_the_service_is_alive_but_not_ready() {
    let f = Fixture::start(None, None);
    assert_eq!(f.get("/livez").0, 200);
    assert_eq!(f.get("/readyz").0, 503);
    let (code, body) = f.get("/health");
    assert_eq!(code, 503);
    assert!(body.contains("no_model"));
    assert_eq!(f.post("/recommend", r#"{"user_id": 1}"#, None).0, 503);
    // A first deployment makes it ready.
    let (code, v) = f.post(
        "/reload_model",
        r#"{"model_id": "als_20250101_000000"}"#,
        None,
    );
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["previous_model_id"], Value::Null);
    assert_eq!(f.get("/readyz").0, 200);
}

#[test]
fn reload_success_failure_and_instant_rollback() {
    let f = Fixture::start(None, Some("als_20250101_000000"));
    let (code, v) = f.post(
        "/reload_model",
        r#"{"model_id": "bpr_20250102_000000"}"#,
        None,
    );
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["previous_model_id"], "als_20250101_000000");
    assert_eq!(v["from_memory"], false);
    assert_eq!(
        f.post("/recommend", r#"{"user_id": 1000}"#, None).1["model_id"],
        "bpr_20250102_000000"
    );

    // Unknown, invalid-name and broken models are refused; the current one keeps serving.
    let (code, v) = f.post(
        "/reload_model",
        r#"{"model_id": "als_29990101_000000"}"#,
        None,
    );
    assert_eq!(code, 404, "{v}");
    assert_eq!(v["serving_model_id"], "bpr_20250102_000000");
    let (code, v) = f.post("/reload_model", r#"{"model_id": "../../etc/passwd"}"#, None);
    assert_eq!(code, 400, "{v}");
    let (code, v) = f.post(
        "/reload_model",
        r#"{"model_id": "als_20250103_000000"}"#,
        None,
    );
    assert_eq!(code, 422, "{v}");
    assert!(v["error"].as_str().unwrap().contains("not finite"));
    assert_eq!(
        f.post("/recommend", r#"{"user_id": 1000}"#, None).1["model_id"],
        "bpr_20250102_000000"
    );

    // Rolling back to the previous model does not touch the disk.
    let loads = f.source.loads.load(Ordering::SeqCst);
    let (code, v) = f.post(
        "/reload_model",
        r#"{"model_id": "als_20250101_000000"}"#,
        None,
    );
    assert_eq!(code, 200);
    assert_eq!(v["from_memory"], true);
    assert_eq!(f.source.loads.load(Ordering::SeqCst), loads);

    let metrics = f.metrics();
    assert!(
        metrics.contains("recops_model_reloads_total{result=\"success\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("recops_model_reloads_total{result=\"failure\"} 3"),
        "{metrics}"
    );
    assert!(metrics.contains("recops_model_info{model_id=\"als_20250101_000000\""));
}

#[test]
fn reload_requires_the_admin_token_when_configured() {
    let f = Fixture::start(Some("s3cret-token"), Some("als_20250101_000000"));
    let body = r#"{"model_id": "bpr_20250102_000000"}"#;
    assert_eq!(f.post("/reload_model", body, None).0, 401);
    assert_eq!(f.post("/reload_model", body, Some("wrong")).0, 401);
    assert_eq!(f.post("/reload_model", body, Some("s3cret-token")).0, 200);
}

#[test]
fn no_request_fails_while_the_model_is_reloaded_ten_times() {
    let f = Arc::new(Fixture::start(None, Some("als_20250101_000000")));
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for w in 0..4 {
        let (f, stop) = (f.clone(), stop.clone());
        workers.push(std::thread::spawn(move || {
            let mut n = 0u64;
            let mut failures = Vec::new();
            while !stop.load(Ordering::SeqCst) || n < 20 {
                let user = 1000 + (n as i64 + w) % 60; // some unknown users too
                let (code, v) = f.post(
                    "/recommend",
                    &format!(r#"{{"user_id": {user}, "topk": 10}}"#),
                    None,
                );
                if code != 200 || v["items"].as_array().is_none_or(|a| a.is_empty()) {
                    failures.push((code, v));
                }
                n += 1;
            }
            (n, failures)
        }));
    }
    for i in 0..10 {
        let id = if i % 2 == 0 {
            "bpr_20250102_000000"
        } else {
            "als_20250101_000000"
        };
        let (code, v) = f.post("/reload_model", &format!(r#"{{"model_id": "{id}"}}"#), None);
        assert_eq!(code, 200, "{v}");
    }
    stop.store(true, Ordering::SeqCst);
    let mut total = 0;
    for w in workers {
        let (n, failures) = w.join().unwrap();
        assert!(failures.is_empty(), "failed requests: {failures:?}");
        total += n;
    }
    assert!(total >= 80);
}

#[test]
fn request_metrics_reach_the_store_on_shutdown() {
    let mut f = Fixture::start(None, Some("als_20250101_000000"));
    for u in 0..30 {
        f.post(
            "/recommend",
            &format!(r#"{{"user_id": {}}}"#, 990 + u),
            None,
        );
    }
    f.service.take().unwrap().shutdown().unwrap();
    let store = ServiceMetricsStore::open_path(&f.db).unwrap();
    let t0 = Utc.with_ymd_and_hms(2025, 1, 15, 10, 0, 0).unwrap();
    let w = store
        .window(t0, t0 + Duration::hours(1), Some("/recommend"))
        .unwrap();
    assert_eq!(w.request_count, 30);
    assert_eq!(w.fallback_count, 10); // users 990..999 are unknown
    assert!((w.fallback_rate.unwrap() - 1.0 / 3.0).abs() < 1e-9);
    assert!(w.avg_latency_ms.is_some());
    let rows = store.rollups(t0, t0 + Duration::hours(1), None).unwrap();
    assert!(rows.iter().all(|r| r.model_id == "als_20250101_000000"));
    // Labelled with the replica's default instance, as on /metrics.
    let port = f.base.rsplit(':').next().unwrap();
    let host = hostname::get().unwrap().to_string_lossy().into_owned();
    let instance = format!("{host}:{port}");
    assert!(rows.iter().all(|r| r.instance == instance), "{rows:?}");
}

#[test]
fn metrics_carry_the_configured_instance_label() {
    let f = Fixture::start_with(
        Some("als_20250101_000000"),
        ServiceOptions {
            instance: Some("replica \"b\"".into()),
            ..ServiceOptions::default()
        },
    );
    f.post("/recommend", r#"{"user_id": 1000}"#, None);
    let (_, text) = f.get("/metrics");
    assert!(
        text.contains(
            "recops_http_requests_total{instance=\"replica \\\"b\\\"\",route=\"/recommend\",code=\"200\"} 1"
        ),
        "{text}"
    );
    let plain = strip_instance(&text, "replica \\\"b\\\"");
    assert!(
        plain.contains("recops_recommend_fallbacks_total 0"),
        "{plain}"
    );
}
