//! `config/recops.yaml`: the settings owned by recops-core.

use serde::Deserialize;

use crate::config::{Validate, load_config};
use crate::error::Result;
use crate::home::Home;

/// The shipped `config/recops.yaml`, used when the home has none.
pub const DEFAULT_RECOPS_CONFIG: &str = include_str!("../../../config/recops.yaml");

/// `config/recops.yaml`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RecopsConfig {
    /// The recommender service.
    pub service: ServiceSettings,
    /// Text log files.
    #[serde(default)]
    pub logging: LoggingSettings,
    /// Pipeline locks.
    #[serde(default)]
    pub locks: LockSettings,
    /// Health checks.
    pub health: HealthSettings,
    /// Drift detection windows and thresholds.
    #[serde(default)]
    pub drift: DriftSettings,
    /// What the daily `maintenance` job keeps.
    #[serde(default)]
    pub retention: RetentionSettings,
    /// Where the stores live (embedded SQLite files, or PostgreSQL).
    #[serde(default)]
    pub storage: StorageSettings,
}

/// The variable that overrides `storage.url` of `config/recops.yaml`.
pub const STORAGE_URL_ENV: &str = "RECOPS_STORAGE_URL";

/// `storage:` section: where pipeline runs, training runs and service rollups live.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StorageSettings {
    /// Empty (the default): embedded SQLite files under `logs/`.
    /// `postgres://USER@HOST:PORT/DB` (or `postgresql://`): PostgreSQL, with the
    /// password from `PGPASSWORD`, never from this file. `RECOPS_STORAGE_URL` overrides.
    pub url: String,
}

/// Where the stores live, from `storage.url` (see [`StorageSettings`]).
#[derive(Clone, PartialEq, Eq)]
pub enum StorageUrl {
    /// SQLite files under the home's `logs/` (the default).
    Embedded,
    /// A PostgreSQL database; the URL has no password.
    Postgres(String),
}

impl std::fmt::Debug for StorageUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_string())
    }
}

impl std::fmt::Display for StorageUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StorageUrl::Embedded => f.write_str("embedded"),
            StorageUrl::Postgres(url) => f.write_str(url),
        }
    }
}

impl StorageUrl {
    /// Parses a `storage.url` value: empty or `embedded` for the SQLite files, else a
    /// `postgres://` / `postgresql://` URL without a password. The message of the
    /// error says what was expected (the caller names the key).
    pub fn parse(text: &str) -> std::result::Result<StorageUrl, String> {
        let text = text.trim();
        if text.is_empty() || text == "embedded" {
            return Ok(StorageUrl::Embedded);
        }
        let Some(rest) = text
            .strip_prefix("postgres://")
            .or_else(|| text.strip_prefix("postgresql://"))
        else {
            return Err(format!(
                "expected empty (embedded SQLite) or postgres://USER@HOST:PORT/DB, got a URL \
                 starting {:?}",
                text.split("://").next().unwrap_or_default()
            ));
        };
        let authority = rest.split(['/', '?']).next().unwrap_or_default();
        if let Some((userinfo, _)) = authority.rsplit_once('@')
            && userinfo.contains(':')
        {
            return Err(
                "the URL carries a password; remove it and set PGPASSWORD in the environment"
                    .into(),
            );
        }
        if text.contains("password=") {
            return Err(
                "the URL carries a password parameter; remove it and set PGPASSWORD in the \
                 environment"
                    .into(),
            );
        }
        let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        if host.is_empty() {
            return Err("expected a host, as in postgres://USER@HOST:PORT/DB".into());
        }
        let db = rest
            .split_once('/')
            .map(|(_, d)| d.split('?').next().unwrap_or_default())
            .unwrap_or_default();
        if db.is_empty() {
            return Err("expected a database name, as in postgres://USER@HOST:PORT/DB".into());
        }
        Ok(StorageUrl::Postgres(text.to_owned()))
    }

    /// True for PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        matches!(self, StorageUrl::Postgres(_))
    }
}

/// `retention:` section: what the daily `maintenance` job keeps. Old entries of the
/// text records (registry audit, deployment history, drift summary) are moved to
/// dated archive files, never deleted; database rows past their age are deleted.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionSettings {
    /// Days of per-minute service rollups kept (default 90).
    pub service_rollups_days: u32,
    /// Days of finished pipeline runs kept (default 365).
    pub pipeline_runs_days: u32,
    /// Days of finished training runs (and their iterations) kept; runs of active
    /// registered models are always kept (default 365).
    pub training_runs_days: u32,
    /// Days of registry audit lines kept in `logs/registry_audit.log` (default 365).
    pub registry_audit_days: u32,
    /// Days of deployment history kept in `logs/deployment_history.json` (default
    /// 365; the newest 20 records always stay, for rollbacks).
    pub deployment_history_days: u32,
    /// Rows kept in `reports/drift/drift_summary.md` (default 104: two years weekly).
    pub drift_summary_rows: usize,
    /// Hours after which a `running` pipeline run is marked failed (default 24).
    pub stale_run_hours: f64,
}

impl Default for RetentionSettings {
    fn default() -> Self {
        RetentionSettings {
            service_rollups_days: 90,
            pipeline_runs_days: 365,
            training_runs_days: 365,
            registry_audit_days: 365,
            deployment_history_days: 365,
            drift_summary_rows: 104,
            stale_run_hours: 24.0,
        }
    }
}

/// `service:` section.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ServiceSettings {
    /// Address the recommender binds to (default `127.0.0.1`).
    pub host: String,
    /// Port the recommender listens on (default 8000).
    pub port: u16,
    /// URL the jobs use to reach the service (default `http://127.0.0.1:8000`).
    pub url: String,
    /// Every replica's URL, when several recommenders run behind a load balancer:
    /// `model-deployment` deploys to, verifies and rolls back all of them, and the
    /// health check probes each. A YAML list or one comma-separated string
    /// (`RECOPS_SERVICE_URLS` in the shipped file); empty (default) = `[url]`.
    /// Read it through [`ServiceSettings::urls`].
    #[serde(default, deserialize_with = "url_list")]
    pub urls: Vec<String>,
    /// Connections served at once (default 1024). At the cap the service stops
    /// accepting (new clients wait in the listen backlog) and logs a warning.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Seconds a client has to send a request's complete headers, counted from when
    /// the connection is ready for the request (default 10).
    #[serde(default = "default_header_read_timeout_secs")]
    pub header_read_timeout_secs: u64,
    /// Seconds a client has to send a request's complete body once its headers arrived
    /// (default 10); a slower body gets 408 and the connection is closed.
    #[serde(default = "default_body_read_timeout_secs")]
    pub body_read_timeout_secs: u64,
    /// Seconds a keep-alive connection may stay silent between requests (default 5;
    /// at most `header_read_timeout_secs`, which also bounds that wait).
    #[serde(default = "default_idle_timeout_secs")]
    pub idle_timeout_secs: u64,
    /// Seconds shutdown waits for requests in flight before closing the remaining
    /// connections (default 10); the final metrics flush runs either way.
    #[serde(default = "default_drain_timeout_secs")]
    pub drain_timeout_secs: u64,
    /// The `instance` label of the recommender's `/metrics` samples (replicas must
    /// differ); empty (default) means `<host name>:<port>`.
    #[serde(default)]
    pub instance: String,
}

impl ServiceSettings {
    /// The replicas' URLs: `urls`, or `url` alone when `urls` is empty.
    pub fn urls(&self) -> Vec<String> {
        if self.urls.is_empty() {
            vec![self.url.clone()]
        } else {
            self.urls.clone()
        }
    }
}

/// `service.urls`: a YAML list, or a comma-separated string (what an environment
/// variable gives); null or empty = no list.
fn url_list<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum UrlList {
        List(Vec<String>),
        Csv(String),
    }
    Ok(match Option::<UrlList>::deserialize(d)? {
        None => Vec::new(),
        Some(UrlList::List(v)) => v,
        Some(UrlList::Csv(s)) => s
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(str::to_owned)
            .collect(),
    })
}

fn default_max_connections() -> usize {
    1024
}
fn default_header_read_timeout_secs() -> u64 {
    10
}
fn default_body_read_timeout_secs() -> u64 {
    10
}
fn default_idle_timeout_secs() -> u64 {
    5
}
fn default_drain_timeout_secs() -> u64 {
    10
}

/// `logging:` section.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LoggingSettings {
    /// Rotated daily files kept per log (default 14).
    pub max_files: usize,
    /// IANA time zone of log timestamps and daily rotation (`Asia/Ho_Chi_Minh`);
    /// absent = the machine's local time.
    #[serde(default)]
    pub timezone: Option<String>,
}

impl Default for LoggingSettings {
    fn default() -> Self {
        LoggingSettings {
            max_files: 14,
            timezone: None,
        }
    }
}

impl LoggingSettings {
    /// The configured time zone, if any (validated at load).
    pub fn tz(&self) -> Option<chrono_tz::Tz> {
        self.timezone.as_deref().and_then(|t| t.parse().ok())
    }
}

/// `locks:` section.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LockSettings {
    /// A pipeline lock held longer than this many hours is stale (default 24).
    pub stale_after_hours: f64,
}

impl Default for LockSettings {
    fn default() -> Self {
        LockSettings {
            stale_after_hours: 24.0,
        }
    }
}

/// `health:` section.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HealthSettings {
    /// Files the data check requires, relative to the home.
    pub required_files: Vec<String>,
}

/// `drift:` section: windows and thresholds of drift detection (spec Component 4).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DriftSettings {
    /// Length of the "new" window, in days before the newest interaction (default 7).
    pub new_window_days: u32,
    /// Length of the "historical" window before it, in days; absent = all earlier data.
    pub historical_days: Option<u32>,
    /// A window with fewer interactions yields `insufficient_data` (default 200).
    pub min_interactions: usize,
    /// Rating drift when a rating's share moves more than this (default 0.1).
    pub rating_threshold: f64,
    /// Size of the popularity top-K (default 100).
    pub top_k: usize,
    /// Popularity shift when the top-K Jaccard similarity falls below this (default 0.8).
    pub jaccard_threshold: f64,
    /// Interaction drift when volume per day or activity per user changes by more than
    /// this fraction (default 0.2).
    pub interaction_change_threshold: f64,
    /// Run the training job when drift severity is high (default false).
    pub retrain_on_drift: bool,
}

impl Default for DriftSettings {
    fn default() -> Self {
        DriftSettings {
            new_window_days: 7,
            historical_days: None,
            min_interactions: 200,
            rating_threshold: 0.1,
            top_k: 100,
            jaccard_threshold: 0.8,
            interaction_change_threshold: 0.2,
            retrain_on_drift: false,
        }
    }
}

impl Validate for RecopsConfig {
    fn problems(&self) -> Vec<(String, String)> {
        let mut p = Vec::new();
        if self.service.host.trim().is_empty() {
            p.push((
                "service.host".into(),
                "expected an address such as 127.0.0.1".into(),
            ));
        }
        if !(self.service.url.starts_with("http://") || self.service.url.starts_with("https://")) {
            p.push((
                "service.url".into(),
                format!(
                    "expected an http:// or https:// URL, got {:?}",
                    self.service.url
                ),
            ));
        }
        let sv = &self.service;
        for (i, u) in sv.urls.iter().enumerate() {
            if !(u.starts_with("http://") || u.starts_with("https://")) {
                p.push((
                    format!("service.urls[{i}]"),
                    format!("expected an http:// or https:// URL, got {u:?}"),
                ));
            } else if sv.urls[..i].contains(u) {
                p.push((
                    format!("service.urls[{i}]"),
                    format!("{u} is listed twice: each replica once"),
                ));
            }
        }
        if sv.max_connections == 0 {
            p.push((
                "service.max_connections".into(),
                "expected at least 1".into(),
            ));
        }
        for (key, v) in [
            (
                "service.header_read_timeout_secs",
                sv.header_read_timeout_secs,
            ),
            ("service.body_read_timeout_secs", sv.body_read_timeout_secs),
            ("service.idle_timeout_secs", sv.idle_timeout_secs),
            ("service.drain_timeout_secs", sv.drain_timeout_secs),
        ] {
            if v == 0 || v > 3600 {
                p.push((key.into(), format!("expected 1 to 3600 seconds, got {v}")));
            }
        }
        if sv.instance.len() > 200 || sv.instance.chars().any(char::is_control) {
            p.push((
                "service.instance".into(),
                "expected a short label value without control characters, such as shop-1:8000"
                    .into(),
            ));
        }
        if sv.idle_timeout_secs > sv.header_read_timeout_secs {
            p.push((
                "service.idle_timeout_secs".into(),
                format!(
                    "expected at most service.header_read_timeout_secs ({}), which also bounds the wait between requests",
                    sv.header_read_timeout_secs
                ),
            ));
        }
        let r = &self.retention;
        for (key, days) in [
            ("retention.service_rollups_days", r.service_rollups_days),
            ("retention.pipeline_runs_days", r.pipeline_runs_days),
            ("retention.training_runs_days", r.training_runs_days),
            ("retention.registry_audit_days", r.registry_audit_days),
            (
                "retention.deployment_history_days",
                r.deployment_history_days,
            ),
        ] {
            if days == 0 {
                p.push((key.into(), "expected at least 1 day".into()));
            }
        }
        if !(r.stale_run_hours.is_finite() && r.stale_run_hours > 0.0) {
            p.push((
                "retention.stale_run_hours".into(),
                "expected a number of hours > 0".into(),
            ));
        }
        if let Some(tz) = &self.logging.timezone
            && tz.parse::<chrono_tz::Tz>().is_err()
        {
            p.push((
                "logging.timezone".into(),
                format!("unknown time zone {tz:?}; expected an IANA name such as Asia/Ho_Chi_Minh"),
            ));
        }
        if self.locks.stale_after_hours.is_nan() || self.locks.stale_after_hours <= 0.0 {
            p.push((
                "locks.stale_after_hours".into(),
                "expected a number of hours > 0".into(),
            ));
        }
        let d = &self.drift;
        if d.new_window_days == 0 {
            p.push((
                "drift.new_window_days".into(),
                "expected at least 1 day".into(),
            ));
        }
        if d.top_k == 0 {
            p.push(("drift.top_k".into(), "expected at least 1".into()));
        }
        for (key, v) in [
            ("drift.rating_threshold", d.rating_threshold),
            ("drift.jaccard_threshold", d.jaccard_threshold),
            (
                "drift.interaction_change_threshold",
                d.interaction_change_threshold,
            ),
        ] {
            if !(0.0..=1.0).contains(&v) {
                p.push((
                    key.into(),
                    format!("expected a fraction between 0 and 1, got {v}"),
                ));
            }
        }
        if let Err(message) = StorageUrl::parse(&self.storage.url) {
            p.push(("storage.url".into(), message));
        }
        for (i, f) in self.health.required_files.iter().enumerate() {
            if f.starts_with('/') || f.split('/').any(|c| c == "..") {
                p.push((
                    format!("health.required_files[{i}]"),
                    format!("expected a path inside the home, got {f:?}"),
                ));
            }
        }
        p
    }
}

impl RecopsConfig {
    /// Loads `config/recops.yaml` of `home`, or the built-in default.
    pub fn load(home: &Home) -> Result<Self> {
        load_config(&home.recops_config(), DEFAULT_RECOPS_CONFIG)
    }

    /// Where the stores of `home` live: `RECOPS_STORAGE_URL` when set and not empty,
    /// else `storage.url` of its `config/recops.yaml`. A bad value is an error naming
    /// the variable or the key.
    pub fn storage(home: &Home) -> Result<StorageUrl> {
        match std::env::var(STORAGE_URL_ENV) {
            Ok(url) if !url.trim().is_empty() => {
                StorageUrl::parse(&url).map_err(|message| crate::Error::Config {
                    file: std::path::PathBuf::from(format!("${STORAGE_URL_ENV}")),
                    key: Some("storage.url".into()),
                    message,
                })
            }
            _ => {
                let cfg = Self::load(home)?;
                // `load` validated it already.
                StorageUrl::parse(&cfg.storage.url).map_err(|message| crate::Error::Config {
                    file: home.recops_config(),
                    key: Some("storage.url".into()),
                    message,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logging_timezone_is_validated() {
        let parse = |text: &str| {
            crate::parse_config::<RecopsConfig>(
                text,
                std::path::Path::new("config/recops.yaml"),
                crate::ConfigFormat::Yaml,
                &std::collections::HashMap::new(),
            )
        };
        let with = |tz: &str| {
            DEFAULT_RECOPS_CONFIG.replace(
                "  # timezone: Asia/Ho_Chi_Minh",
                &format!("  timezone: {tz}"),
            )
        };
        assert!(parse(DEFAULT_RECOPS_CONFIG).unwrap().logging.tz().is_none());
        let ok = parse(&with("Asia/Ho_Chi_Minh")).unwrap();
        assert_eq!(ok.logging.tz(), Some(chrono_tz::Asia::Ho_Chi_Minh));
        let e = parse(&with("Mars/Olympus")).unwrap_err().to_string();
        assert!(e.contains("logging.timezone"), "{e}");
    }
    use crate::config::{ConfigFormat, parse_config};
    use std::collections::HashMap;
    use std::path::Path;

    #[test]
    fn shipped_config_parses_without_environment() {
        let cfg: RecopsConfig = parse_config(
            DEFAULT_RECOPS_CONFIG,
            Path::new("config/recops.yaml"),
            ConfigFormat::Yaml,
            &HashMap::new(),
        )
        .unwrap();
        assert_eq!(cfg.service.port, 8000);
        assert_eq!(cfg.service.host, "127.0.0.1");
        assert_eq!(cfg.locks.stale_after_hours, 24.0);
        assert_eq!(cfg.health.required_files.len(), 4);
    }

    #[test]
    fn environment_overrides_port() {
        let env = HashMap::from([("RECOPS_SERVICE_PORT".to_owned(), "9100".to_owned())]);
        let cfg: RecopsConfig = parse_config(
            DEFAULT_RECOPS_CONFIG,
            Path::new("recops.yaml"),
            ConfigFormat::Yaml,
            &env,
        )
        .unwrap();
        assert_eq!(cfg.service.port, 9100);
    }

    #[test]
    fn service_urls_default_to_url_and_take_a_list_or_the_environment() {
        let parse = |text: &str, env: &[(&str, &str)]| {
            let env: HashMap<String, String> = env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
            parse_config::<RecopsConfig>(text, Path::new("recops.yaml"), ConfigFormat::Yaml, &env)
        };
        let cfg = parse(DEFAULT_RECOPS_CONFIG, &[]).unwrap();
        assert_eq!(cfg.service.urls(), vec!["http://127.0.0.1:8000".to_owned()]);
        let cfg = parse(
            DEFAULT_RECOPS_CONFIG,
            &[("RECOPS_SERVICE_URLS", "http://h1:8000, http://h2:8000")],
        )
        .unwrap();
        assert_eq!(cfg.service.urls(), vec!["http://h1:8000", "http://h2:8000"]);
        let listed = DEFAULT_RECOPS_CONFIG.replace(
            "urls: ${RECOPS_SERVICE_URLS:-}",
            "urls: [http://h1:8000, http://h2:8000]",
        );
        assert_ne!(listed, DEFAULT_RECOPS_CONFIG);
        assert_eq!(
            parse(&listed, &[]).unwrap().service.urls(),
            vec!["http://h1:8000", "http://h2:8000"]
        );
        let e = parse(
            DEFAULT_RECOPS_CONFIG,
            &[(
                "RECOPS_SERVICE_URLS",
                "http://h1:8000,h2:8000,http://h1:8000",
            )],
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("service.urls[1]") && e.contains("service.urls[2]"),
            "{e}"
        );
    }

    #[test]
    fn storage_urls_are_parsed_and_passwords_refused() {
        assert_eq!(StorageUrl::parse("").unwrap(), StorageUrl::Embedded);
        assert_eq!(StorageUrl::parse("embedded").unwrap(), StorageUrl::Embedded);
        assert!(
            StorageUrl::parse("postgres://recops@127.0.0.1:5432/recops")
                .unwrap()
                .is_postgres()
        );
        assert!(StorageUrl::parse("postgresql://db.internal/recops?sslmode=disable").is_ok());
        for (bad, why) in [
            ("mysql://x@h/db", "expected empty"),
            ("postgres://u:secret@h/db", "PGPASSWORD"),
            ("postgres://u@h/db?password=secret", "PGPASSWORD"),
            ("postgres://u@/db", "host"),
            ("postgres://u@h:5432", "database name"),
        ] {
            let e = StorageUrl::parse(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
            assert!(!e.contains("secret"), "{e}");
        }
        let text = DEFAULT_RECOPS_CONFIG.replace("url: \"\"", "url: \"sqlite:///tmp/x\"");
        assert_ne!(text, DEFAULT_RECOPS_CONFIG);
        let err = parse_config::<RecopsConfig>(
            &text,
            Path::new("config/recops.yaml"),
            ConfigFormat::Yaml,
            &HashMap::new(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("storage.url"), "{err}");
    }

    #[test]
    fn bad_values_are_all_reported() {
        let text = DEFAULT_RECOPS_CONFIG
            .replace("stale_after_hours: 24", "stale_after_hours: 0")
            .replace("- data/processed/interactions.parquet", "- ../secret");
        let err = parse_config::<RecopsConfig>(
            &text,
            Path::new("recops.yaml"),
            ConfigFormat::Yaml,
            &HashMap::new(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("locks.stale_after_hours"), "{err}");
        assert!(err.contains("health.required_files[0]"), "{err}");
    }
}
