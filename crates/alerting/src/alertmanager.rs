//! The Alertmanager channel: `POST <url>/api/v2/alerts` with reqwest.
//!
//! One alert per notice: labels `alertname`, `severity`, `instance`, `pipeline` (when
//! the alert is about one) and `alertmanager.labels`; annotations `summary` (the log
//! line) and `description` (the message); `startsAt` (firing since), `endsAt` (the
//! resolve time for a resolved notice, the expiry of a firing rule alert, none for a
//! one-off alert so that the Alertmanager's `resolve_timeout` applies) and
//! `generatorURL` (the dashboard's alerts page, when `alertmanager.dashboard_url` is
//! set).

use chrono::{DateTime, SecondsFormat, Utc};
use recops_core::error_chain;
use reqwest::Url;
use reqwest::blocking::Client;
use serde_json::{Map, Value, json};

use crate::config::AlertmanagerConfig;
use crate::notice::{Notice, NoticeKind};
use crate::report::Delivery;
use crate::retry::{Attempt, RetryPolicy, Sleeper, with_retries};

/// The path alerts are posted to, below `alertmanager.url`.
pub(crate) const ALERTS_PATH: &str = "/api/v2/alerts";

/// The HTTP client of the channel (timeout from `alertmanager.timeout_secs`).
pub(crate) fn build_client(cfg: &AlertmanagerConfig) -> Result<Client, String> {
    crate::http::client(cfg.timeout_secs)
}

/// True for an `http://` or `https://` URL with a host.
pub(crate) fn is_http_url(url: &str) -> bool {
    Url::parse(url.trim())
        .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
}

/// `url` for messages: user info, query and fragment removed (they may hold secrets).
pub(crate) fn safe_url(url: &str) -> String {
    match Url::parse(url.trim()) {
        Ok(mut u) => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.set_query(None);
            u.set_fragment(None);
            u.to_string()
        }
        Err(_) => "<not a URL>".to_owned(),
    }
}

/// A Prometheus label name: `[a-zA-Z_][a-zA-Z0-9_]*`.
pub(crate) fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The alerts endpoint: `<url>/api/v2/alerts` (a trailing `/` in `url` is fine; a
/// query in `url` is kept, user info too, for basic auth).
pub(crate) fn alerts_endpoint(url: &str) -> Result<Url, String> {
    let mut u = Url::parse(url.trim())
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
        .ok_or_else(|| format!("alertmanager.url is not an http(s) URL: {}", safe_url(url)))?;
    let path = format!("{}{ALERTS_PATH}", u.path().trim_end_matches('/'));
    u.set_path(&path);
    Ok(u)
}

fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The `instance` label: `alertmanager.instance`, else the host name.
pub(crate) fn instance(cfg: &AlertmanagerConfig) -> String {
    let configured = cfg.instance.trim();
    if !configured.is_empty() {
        return configured.to_owned();
    }
    hostname::get()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "unknown".to_owned())
}

/// The API v2 body for `notice` (an array of one alert).
pub(crate) fn payload(cfg: &AlertmanagerConfig, notice: &Notice) -> Value {
    let mut labels = Map::new();
    for (k, v) in &cfg.labels {
        labels.insert(k.clone(), Value::String(v.clone()));
    }
    labels.insert("alertname".into(), notice.alert_name.clone().into());
    labels.insert("severity".into(), notice.severity.as_str().into());
    labels.insert("instance".into(), instance(cfg).into());
    if let Some(p) = &notice.pipeline {
        labels.insert("pipeline".into(), p.clone().into());
    }
    let summary = notice
        .log_line
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned();
    let mut alert = Map::new();
    alert.insert("labels".into(), Value::Object(labels));
    alert.insert(
        "annotations".into(),
        json!({ "summary": summary, "description": notice.text }),
    );
    alert.insert("startsAt".into(), timestamp(notice.starts_at).into());
    let ends_at = match notice.kind {
        NoticeKind::Resolved => Some(notice.at),
        NoticeKind::Alert => notice.expires_at,
    };
    if let Some(end) = ends_at {
        alert.insert("endsAt".into(), timestamp(end).into());
    }
    let dashboard = cfg.dashboard_url.trim().trim_end_matches('/');
    if !dashboard.is_empty() {
        alert.insert("generatorURL".into(), format!("{dashboard}/alerts").into());
    }
    Value::Array(vec![Value::Object(alert)])
}

/// Posts `notice`, retrying timeouts, connection errors, 429 and 5xx.
pub(crate) fn send(
    cfg: &AlertmanagerConfig,
    client: Result<&Client, &String>,
    notice: &Notice,
    policy: &RetryPolicy,
    sleeper: &dyn Sleeper,
) -> Delivery {
    if !cfg.enabled {
        return Delivery::Disabled;
    }
    if cfg.url.trim().is_empty() {
        return Delivery::NotConfigured {
            reason: "alertmanager.url is empty (set ALERTMANAGER_URL)".to_owned(),
        };
    }
    let endpoint = match alerts_endpoint(&cfg.url) {
        Ok(u) => u,
        Err(reason) => {
            return Delivery::Failed {
                attempts: 0,
                reason,
            };
        }
    };
    let client = match client {
        Ok(c) => c,
        Err(reason) => {
            return Delivery::Failed {
                attempts: 0,
                reason: reason.clone(),
            };
        }
    };
    let shown = safe_url(endpoint.as_str());
    let body = payload(cfg, notice);
    let timeout = cfg.timeout_secs;
    let (result, attempts) = with_retries(policy, sleeper, |_| {
        match client.post(endpoint.clone()).json(&body).send() {
            Ok(resp) if resp.status().is_success() => Attempt::Ok(()),
            Ok(resp) => crate::http::refusal(&format!("Alertmanager {shown}"), resp, |s| s),
            Err(e) => {
                let e = e.without_url();
                if e.is_timeout() {
                    Attempt::Transient(format!("Alertmanager {shown} timed out after {timeout} s"))
                } else {
                    Attempt::Transient(format!(
                        "Alertmanager {shown} unreachable: {}",
                        error_chain(&e)
                    ))
                }
            }
        }
    });
    match result {
        Ok(()) => Delivery::Sent {
            attempts,
            to: safe_url(&cfg.url),
        },
        Err(reason) => Delivery::Failed { attempts, reason },
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::model::Severity;

    fn notice(kind: NoticeKind) -> Notice {
        let t0 = Utc.with_ymd_and_hms(2025, 1, 15, 8, 0, 0).unwrap();
        Notice {
            alert_name: "high_error_rate".into(),
            severity: Severity::Critical,
            kind,
            log_line: "high_error_rate triggered: error_rate=0.08 > 0.05".into(),
            text: "high_error_rate triggered: error_rate=0.08 > 0.05\nSeverity: critical".into(),
            at: t0 + chrono::Duration::minutes(30),
            starts_at: t0,
            expires_at: Some(t0 + chrono::Duration::hours(8)),
            pipeline: None,
        }
    }

    fn cfg() -> AlertmanagerConfig {
        AlertmanagerConfig {
            url: "http://127.0.0.1:9093".into(),
            instance: "shop-1".into(),
            dashboard_url: "http://127.0.0.1:8050/".into(),
            labels: [("team".to_owned(), "ml".to_owned())].into(),
            ..AlertmanagerConfig::default()
        }
    }

    #[test]
    fn firing_and_resolved_payloads_follow_api_v2() {
        let firing = payload(&cfg(), &notice(NoticeKind::Alert));
        assert_eq!(
            firing,
            json!([{
                "labels": {"alertname": "high_error_rate", "severity": "critical",
                           "instance": "shop-1", "team": "ml"},
                "annotations": {
                    "summary": "high_error_rate triggered: error_rate=0.08 > 0.05",
                    "description": "high_error_rate triggered: error_rate=0.08 > 0.05\nSeverity: critical"
                },
                "startsAt": "2025-01-15T08:00:00.000Z",
                "endsAt": "2025-01-15T16:00:00.000Z",
                "generatorURL": "http://127.0.0.1:8050/alerts"
            }])
        );
        let resolved = payload(&cfg(), &notice(NoticeKind::Resolved));
        assert_eq!(resolved[0]["endsAt"], "2025-01-15T08:30:00.000Z");
        assert_eq!(resolved[0]["startsAt"], "2025-01-15T08:00:00.000Z");

        let mut one_off = notice(NoticeKind::Alert);
        one_off.expires_at = None;
        one_off.pipeline = Some("data_refresh".into());
        let no_dash = AlertmanagerConfig {
            dashboard_url: String::new(),
            ..cfg()
        };
        let p = payload(&no_dash, &one_off);
        assert!(p[0].get("endsAt").is_none(), "{p}");
        assert!(p[0].get("generatorURL").is_none(), "{p}");
        assert_eq!(p[0]["labels"]["pipeline"], "data_refresh");
    }

    #[test]
    fn urls_are_checked_and_shown_without_secrets() {
        assert!(is_http_url("http://127.0.0.1:9093"));
        assert!(!is_http_url("127.0.0.1:9093"));
        assert!(!is_http_url("ftp://x"));
        assert_eq!(
            safe_url("https://bob:hunter2@am.example.com:9093/base?token=s3cret"),
            "https://am.example.com:9093/base"
        );
        assert_eq!(
            alerts_endpoint("http://127.0.0.1:9093/").unwrap().as_str(),
            "http://127.0.0.1:9093/api/v2/alerts"
        );
        assert_eq!(
            alerts_endpoint("http://127.0.0.1:9093/am")
                .unwrap()
                .as_str(),
            "http://127.0.0.1:9093/am/api/v2/alerts"
        );
        assert_eq!(
            alerts_endpoint("http://u:p@127.0.0.1:9093/?t=1")
                .unwrap()
                .as_str(),
            "http://u:p@127.0.0.1:9093/api/v2/alerts?t=1"
        );
        assert!(is_label_name("team_1") && is_label_name("_x"));
        assert!(!is_label_name("1x") && !is_label_name("a-b") && !is_label_name(""));
    }
}
