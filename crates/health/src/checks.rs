//! The individual checks. Each one reports a problem as `healthy: false` with the
//! reason; none of them returns an error or panics on bad state.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use recops_core::{Home, ModelId, error_chain, format_timestamp};
use recops_registry::Registry;
use recops_tracking::{PipelineStats, PipelineTracker, ServiceMetricsStore, WindowMetrics};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The state of one component.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ComponentStatus {
    /// Works.
    Healthy,
    /// Works, but something deserves a look (e.g. no embeddings configured).
    Warning,
    /// Broken: someone must act.
    Unhealthy,
}

impl ComponentStatus {
    /// Healthy unless `ok` is false.
    pub fn from_ok(ok: bool) -> Self {
        if ok {
            ComponentStatus::Healthy
        } else {
            ComponentStatus::Unhealthy
        }
    }
}

/// `check_service_health`: is `/health` reachable and answering 200 within the timeout?
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceHealth {
    /// Answered 200.
    pub healthy: bool,
    /// healthy / unhealthy.
    pub status: ComponentStatus,
    /// The URL checked.
    pub url: String,
    /// Time to the answer.
    pub latency_ms: Option<f64>,
    /// The JSON body of `/health`.
    pub response: Option<Value>,
    /// Why it is unhealthy.
    pub error: Option<String>,
    /// With several replicas (`service.urls`, [`check_replicas_health`]): each
    /// replica's own check; empty for one service.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub instances: Vec<ServiceHealth>,
}

/// Checks every replica in `service_urls` ([`check_service_health`] each): healthy
/// only when all are; `error` names each replica that is down, `instances` holds the
/// per-replica checks, `response` is the first replica's. One URL gives exactly
/// [`check_service_health`].
pub fn check_replicas_health(service_urls: &[String], timeout: Duration) -> ServiceHealth {
    let mut checks: Vec<ServiceHealth> = service_urls
        .iter()
        .map(|u| check_service_health(u, timeout))
        .collect();
    if checks.len() == 1
        && let Some(only) = checks.pop()
    {
        return only;
    }
    let healthy = !checks.is_empty() && checks.iter().all(|c| c.healthy);
    let errors: Vec<String> = checks
        .iter()
        .filter_map(|c| c.error.as_ref().map(|e| format!("{}: {e}", c.url)))
        .collect();
    let error = if checks.is_empty() {
        Some("no service URL configured (service.urls)".to_owned())
    } else if errors.is_empty() {
        None
    } else {
        Some(format!(
            "{} of {} replicas down: {}",
            errors.len(),
            checks.len(),
            errors.join("; ")
        ))
    };
    ServiceHealth {
        healthy,
        status: if healthy {
            ComponentStatus::Healthy
        } else {
            ComponentStatus::Unhealthy
        },
        url: checks
            .iter()
            .map(|c| c.url.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        latency_ms: checks.iter().filter_map(|c| c.latency_ms).reduce(f64::max),
        response: checks.first().and_then(|c| c.response.clone()),
        error,
        instances: checks,
    }
}

/// Checks `{service_url}/health` with `timeout` (5 s in the spec).
pub fn check_service_health(service_url: &str, timeout: Duration) -> ServiceHealth {
    let url = format!("{}/health", service_url.trim_end_matches('/'));
    let unhealthy =
        |error: String, latency_ms: Option<f64>, response: Option<Value>| ServiceHealth {
            healthy: false,
            status: ComponentStatus::Unhealthy,
            url: url.clone(),
            latency_ms,
            response,
            error: Some(error),
            instances: Vec::new(),
        };
    // reqwest is built with rustls without a default provider (see DEPENDENCIES.md).
    recops_core::tls::install_crypto_provider();
    let client = match reqwest::blocking::Client::builder()
        .timeout(timeout)
        .build()
    {
        Ok(c) => c,
        Err(e) => return unhealthy(format!("cannot create an HTTP client: {e}"), None, None),
    };
    let started = Instant::now();
    match client.get(&url).send() {
        Ok(resp) => {
            let latency = started.elapsed().as_secs_f64() * 1000.0;
            let status = resp.status();
            let body = resp.json::<Value>().ok();
            if status.is_success() {
                ServiceHealth {
                    healthy: true,
                    status: ComponentStatus::Healthy,
                    url: url.clone(),
                    latency_ms: Some(latency),
                    response: body,
                    error: None,
                    instances: Vec::new(),
                }
            } else {
                unhealthy(format!("/health answered {status}"), Some(latency), body)
            }
        }
        Err(e) if e.is_timeout() => unhealthy(
            format!("no answer from {url} within {:.1} s", timeout.as_secs_f64()),
            None,
            None,
        ),
        Err(e) => unhealthy(
            format!("service unreachable at {url}: {}", error_chain(&e)),
            None,
            None,
        ),
    }
}

/// One required file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileStatus {
    /// Present (and a file).
    pub exists: bool,
    /// Size in MiB (0 when missing).
    pub size_mb: f64,
    /// Last modification, RFC 3339.
    pub modified_at: Option<String>,
}

/// `check_data_health`: do the required data files exist?
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataHealth {
    /// Every required file exists.
    pub healthy: bool,
    /// healthy / unhealthy.
    pub status: ComponentStatus,
    /// By path relative to the home.
    pub files: BTreeMap<String, FileStatus>,
    /// The missing ones.
    pub missing: Vec<String>,
}

/// Checks the files of `required` (paths relative to the home; from
/// `config/recops.yaml` `health.required_files`).
pub fn check_data_health(home: &Home, required: &[String]) -> DataHealth {
    let mut files = BTreeMap::new();
    let mut missing = Vec::new();
    for rel in required {
        let path = home.root().join(rel);
        let status = match std::fs::metadata(&path) {
            Ok(m) if m.is_file() => FileStatus {
                exists: true,
                size_mb: m.len() as f64 / (1024.0 * 1024.0),
                modified_at: m
                    .modified()
                    .ok()
                    .map(|t| format_timestamp(DateTime::<Utc>::from(t))),
            },
            _ => {
                missing.push(rel.clone());
                FileStatus {
                    exists: false,
                    size_mb: 0.0,
                    modified_at: None,
                }
            }
        };
        files.insert(rel.clone(), status);
    }
    let healthy = missing.is_empty();
    DataHealth {
        healthy,
        status: ComponentStatus::from_ok(healthy),
        files,
        missing,
    }
}

/// `check_pipeline_health`: any pipeline below 50 % success over the period?
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PipelineHealth {
    /// No pipeline is below the success rate limit.
    pub healthy: bool,
    /// healthy / unhealthy.
    pub status: ComponentStatus,
    /// Pipelines with `success_rate < 0.5`.
    pub unhealthy_pipelines: Vec<String>,
    /// The statistics read (`get_stats(days)`).
    pub stats: Option<PipelineStats>,
    /// Why the check could not run.
    pub error: Option<String>,
}

/// Reads `get_stats(days)` (7 in the spec) and flags pipelines with a success rate
/// below `min_success_rate` (0.5). A pipeline with no finished run is not flagged.
/// Reads the home's configured store (`storage.url`).
pub fn check_pipeline_health(home: &Home, days: u32, min_success_rate: f64) -> PipelineHealth {
    let stats = PipelineTracker::open(home).and_then(|t| t.get_stats(days));
    match stats {
        Ok(stats) => {
            let unhealthy_pipelines: Vec<String> = stats
                .stats_by_pipeline
                .iter()
                .filter(|(_, s)| s.success_rate.is_some_and(|r| r < min_success_rate))
                .map(|(name, _)| name.clone())
                .collect();
            let healthy = unhealthy_pipelines.is_empty();
            PipelineHealth {
                healthy,
                status: ComponentStatus::from_ok(healthy),
                unhealthy_pipelines,
                stats: Some(stats),
                error: None,
            }
        }
        Err(e) => PipelineHealth {
            healthy: false,
            status: ComponentStatus::Unhealthy,
            unhealthy_pipelines: Vec::new(),
            stats: None,
            error: Some(error_chain(&e)),
        },
    }
}

/// Service metrics of the last window, for the alert rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceMetricsHealth {
    /// No alert rule fired on the window (set by the caller after evaluating rules).
    pub healthy: bool,
    /// healthy / warning / unhealthy.
    pub status: ComponentStatus,
    /// The window's metrics (`/recommend`).
    pub metrics: Option<WindowMetrics>,
    /// The alerts the rules triggered, as the alerting crate reports them.
    pub triggered: Vec<Value>,
    /// Why the metrics could not be read.
    pub error: Option<String>,
}

/// Reads the `/recommend` metrics of `[now - window, now)` from the home's service
/// metrics store (`service_metrics.db`, or PostgreSQL per `storage.url`).
/// Rule evaluation is the caller's (the health-check job runs them through the alert
/// rules); until then the component is healthy when the metrics could be read.
pub fn read_service_metrics(
    home: &Home,
    now: DateTime<Utc>,
    window: chrono::Duration,
) -> ServiceMetricsHealth {
    match ServiceMetricsStore::open(home)
        .and_then(|s| s.window(now - window, now, Some("/recommend")))
    {
        Ok(m) => ServiceMetricsHealth {
            healthy: true,
            status: ComponentStatus::Healthy,
            metrics: Some(m),
            triggered: Vec::new(),
            error: None,
        },
        Err(e) => ServiceMetricsHealth {
            healthy: false,
            status: ComponentStatus::Unhealthy,
            metrics: None,
            triggered: Vec::new(),
            error: Some(error_chain(&e)),
        },
    }
}

/// Desired vs actual serving state (a warning, never unhealthy: the service check
/// covers a service that serves nothing).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeploymentHealth {
    /// healthy / warning.
    pub status: ComponentStatus,
    /// The registry's `deployed` model (none before the first deployment).
    pub deployed: Option<ModelId>,
    /// The model the service reports.
    pub serving: Option<String>,
    /// Why it is a warning.
    pub message: Option<String>,
}

/// Compares the registry's deployed model with the model `service` reports.
pub fn check_deployment(home: &Home, service: &ServiceHealth) -> DeploymentHealth {
    let serving = service
        .response
        .as_ref()
        .and_then(|r| r.get("model_id"))
        .and_then(|v| v.as_str())
        .map(str::to_owned);
    let deployed = match Registry::open_read_only(home).load() {
        Ok(r) => r.deployed.map(|d| d.model_id),
        // The model check reports an unreadable registry.
        Err(_) => None,
    };
    let message = match (&deployed, &serving) {
        (Some(d), Some(s)) if d != s => Some(format!(
            "the service serves {s} but the deployed model is {d} (model-deployment --model-id {d} restores it)"
        )),
        (Some(d), None) if service.healthy => Some(format!(
            "the service serves no model but the deployed model is {d}"
        )),
        _ => None,
    };
    DeploymentHealth {
        status: if message.is_some() {
            ComponentStatus::Warning
        } else {
            ComponentStatus::Healthy
        },
        deployed,
        serving,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;

    #[test]
    fn service_check_healthy_down_and_hanging() {
        // A minimal HTTP server answering /health once.
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf).unwrap();
            let body = r#"{"status":"ok","model_id":"als_1"}"#;
            write!(s, "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len()).unwrap();
        });
        let h = check_service_health(&format!("http://{addr}"), Duration::from_secs(5));
        server.join().unwrap();
        assert!(h.healthy, "{h:?}");
        assert_eq!(h.response.unwrap()["model_id"], "als_1");
        assert!(h.latency_ms.unwrap() >= 0.0);

        // Nothing listening.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let down =
            check_service_health(&format!("http://127.0.0.1:{port}"), Duration::from_secs(5));
        assert!(!down.healthy);
        assert!(down.error.unwrap().contains("unreachable"));

        // Accepts but never answers: a timeout, reported, not a hang.
        let hang = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = hang.local_addr().unwrap();
        let h = check_service_health(&format!("http://{addr}"), Duration::from_millis(300));
        assert!(!h.healthy);
        assert!(h.error.unwrap().contains("no answer"), "timeout expected");
        drop(hang);

        // Several replicas: unhealthy when one is down, each reported, the down one named.
        let up = TcpListener::bind("127.0.0.1:0").unwrap();
        let up_addr = up.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut s, _) = up.accept().unwrap();
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf).unwrap();
            let body = r#"{"status":"ok","model_id":"als_1"}"#;
            write!(s, "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len()).unwrap();
        });
        let urls = [
            format!("http://{up_addr}"),
            format!("http://127.0.0.1:{port}"),
        ];
        let h = check_replicas_health(&urls, Duration::from_secs(5));
        server.join().unwrap();
        assert!(!h.healthy);
        assert_eq!(h.instances.len(), 2);
        assert!(h.instances[0].healthy && !h.instances[1].healthy);
        let e = h.error.unwrap();
        assert!(
            e.contains("1 of 2") && e.contains(&format!("127.0.0.1:{port}")),
            "{e}"
        );
        assert_eq!(h.response.unwrap()["model_id"], "als_1");
    }

    #[test]
    fn data_check_reports_each_file() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::new(dir.path());
        std::fs::create_dir_all(home.processed_dir()).unwrap();
        std::fs::write(home.interactions(), vec![0u8; 2 * 1024 * 1024]).unwrap();
        let required = vec![
            "data/processed/interactions.parquet".to_owned(),
            "data/processed/user_item_mappings.json".to_owned(),
        ];
        let d = check_data_health(&home, &required);
        assert!(!d.healthy);
        assert_eq!(d.missing, vec!["data/processed/user_item_mappings.json"]);
        let f = &d.files["data/processed/interactions.parquet"];
        assert!(f.exists && (f.size_mb - 2.0).abs() < 1e-9 && f.modified_at.is_some());
        std::fs::write(home.user_item_mappings(), b"{}").unwrap();
        assert!(check_data_health(&home, &required).healthy);
    }

    #[test]
    fn pipeline_check_flags_low_success_rates_and_unreadable_databases() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::new(dir.path());
        let t = PipelineTracker::open(&home).unwrap();
        for i in 0..4 {
            let id = t.start_run("data_refresh", Value::Null).unwrap();
            if i == 0 {
                t.complete_run(&id, Value::Null).unwrap()
            } else {
                t.fail_run(&id, "x").unwrap()
            }
            let id = t.start_run("health_check", Value::Null).unwrap();
            t.complete_run(&id, Value::Null).unwrap();
        }
        t.start_run("model_training", Value::Null).unwrap(); // running only: not flagged
        let p = check_pipeline_health(&home, 7, 0.5);
        assert!(!p.healthy);
        assert_eq!(p.unhealthy_pipelines, vec!["data_refresh"]);
        let bad_dir = tempfile::tempdir().unwrap();
        let bad_home = Home::new(bad_dir.path());
        std::fs::create_dir_all(bad_home.logs_dir()).unwrap();
        std::fs::write(bad_home.pipeline_db(), b"not a database at all, just text").unwrap();
        let bad = check_pipeline_health(&bad_home, 7, 0.5);
        assert!(!bad.healthy && bad.error.unwrap().contains("not an SQLite database"));
    }
}

/// `check_model_health`: registry found, `current_best` set, its files present and
/// loadable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelHealth {
    /// All of the above.
    pub healthy: bool,
    /// healthy / unhealthy.
    pub status: ComponentStatus,
    /// The registry's best model.
    pub current_best: Option<ModelId>,
    /// Models in the registry.
    pub total_models: usize,
    /// Its folder exists.
    pub model_exists: bool,
    /// Its files load (shapes and mappings consistent).
    pub model_loads: bool,
    /// Why it is unhealthy.
    pub error: Option<String>,
}

/// Opens a model folder the way the service does (model files, mappings, serving
/// index); the error says why it cannot be served.
pub fn load_model(dir: &Path) -> Result<(), recops_cf_training::Error> {
    let model = recops_cf_training::CfModel::load(dir)?;
    recops_cf_training::ServingIndex::load(dir, model.user_ids.len(), model.item_ids.len())?;
    Ok(())
}

/// Checks `artifacts/cf/registry.json` and the files of its `current_best`, opened
/// with [`load_model`].
pub fn check_model_health(home: &Home) -> ModelHealth {
    let mut h = ModelHealth {
        healthy: false,
        status: ComponentStatus::Unhealthy,
        current_best: None,
        total_models: 0,
        model_exists: false,
        model_loads: false,
        error: None,
    };
    if !home.registry().exists() {
        h.error = Some(format!(
            "Registry not found at {}",
            home.registry().display()
        ));
        return h;
    }
    let registry = match recops_registry::Registry::open_read_only(home).load() {
        Ok(r) => r,
        Err(e) => {
            h.error = Some(error_chain(&e));
            return h;
        }
    };
    h.total_models = registry.models.len();
    let Some(best) = registry.current_best.clone() else {
        h.error = Some("No current best model".into());
        return h;
    };
    h.current_best = Some(best.clone());
    let dir = home.model_dir(&best);
    h.model_exists = dir.is_dir();
    if !h.model_exists {
        h.error = Some(format!("model folder {} is missing", dir.display()));
        return h;
    }
    match load_model(&dir) {
        Ok(()) => {
            h.model_loads = true;
            h.healthy = true;
            h.status = ComponentStatus::Healthy;
        }
        Err(e) => h.error = Some(error_chain(&e)),
    }
    h
}

/// Freshness of the product embeddings (spec Component 8).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmbeddingsHealth {
    /// Not broken (a missing, stale or mismatched file is a warning, not a failure).
    pub healthy: bool,
    /// healthy / warning / unhealthy.
    pub status: ComponentStatus,
    /// An embeddings file exists.
    pub configured: bool,
    /// Whole days since the file was written.
    pub age_days: Option<i64>,
    /// Older than the limit (30 days) or made by another model.
    pub is_stale: Option<bool>,
    /// Number of vectors.
    pub num_embeddings: Option<usize>,
    /// Vector length.
    pub embedding_dim: Option<usize>,
    /// The configured model differs from the one that made the vectors.
    pub model_mismatch: Option<bool>,
    /// What deserves a look, in one line.
    pub message: Option<String>,
}

/// Reads `data/content_based_embeddings/product_embeddings.safetensors` of `home`
/// and compares it with `config/embeddings.yaml`: missing = "not configured"
/// (warning), stale or made by another model = warning, unreadable = unhealthy.
pub fn check_embeddings_health(home: &Home, clock: &dyn recops_core::Clock) -> EmbeddingsHealth {
    use recops_embeddings::{
        EmbeddingsConfig, FreshnessOptions, ModelSpec, check_embedding_freshness,
    };
    let mut h = EmbeddingsHealth {
        healthy: true,
        status: ComponentStatus::Healthy,
        configured: false,
        age_days: None,
        is_stale: None,
        num_embeddings: None,
        embedding_dim: None,
        model_mismatch: None,
        message: None,
    };
    let path = home.product_embeddings();
    if !path.exists() {
        h.status = ComponentStatus::Warning;
        h.message = Some(format!(
            "not configured: no embeddings at {} (run bert-embeddings)",
            path.display()
        ));
        return h;
    }
    h.configured = true;
    let config = match EmbeddingsConfig::load(home) {
        Ok(c) => c,
        Err(e) => {
            h.healthy = false;
            h.status = ComponentStatus::Unhealthy;
            h.message = Some(error_chain(&e));
            return h;
        }
    };
    // Without the model files the vectors can still be aged; the comparison is skipped.
    let expected = ModelSpec::configured_identity(&config, home).ok();
    match check_embedding_freshness(
        &path,
        &FreshnessOptions {
            clock,
            stale_after_days: config.freshness.stale_after_days,
            expected: expected.as_ref(),
        },
    ) {
        Ok(f) => {
            h.age_days = Some(f.age_days);
            h.is_stale = Some(f.is_stale);
            h.num_embeddings = Some(f.num_embeddings);
            h.embedding_dim = Some(f.embedding_dim);
            h.model_mismatch = Some(f.model_mismatch);
            if f.is_stale {
                h.status = ComponentStatus::Warning;
                h.message = Some(if f.model_mismatch {
                    format!("made by another model: {}", f.mismatch_reasons.join("; "))
                } else {
                    format!("{} days old (limit {})", f.age_days, f.stale_after_days)
                });
            }
        }
        Err(e) => {
            h.healthy = false;
            h.status = ComponentStatus::Unhealthy;
            h.message = Some(error_chain(&e));
        }
    }
    h
}
