//! The Alertmanager channel against a real Prometheus Alertmanager (Debian's
//! `prometheus-alertmanager`), started by the test on 127.0.0.1 with a temp config and
//! storage folder, clustering off, and stopped when the test ends.
//!
//! Without the binary the test prints a NOTICE and passes, except under `CI=true` or
//! `RECOPS_REQUIRE_ALERTMANAGER=1` (scripts/test.sh sets it once the package is
//! installed), where it fails.

use chrono::{DurationRound, Utc};
use recops_alerting::{Action, AlertManager, Channel, Delivery, Severity};
use recops_core::FixedClock;
use recops_testkit::RealAlertmanager;
use serde_json::Value;

use crate::support::{TestHome, lines_with};

/// A real Alertmanager with the alert listing parsed.
struct Am(RealAlertmanager);

impl Am {
    fn start() -> Option<Self> {
        RealAlertmanager::start().map(Am)
    }

    fn alerts(&self) -> Vec<Value> {
        let v: Value = serde_json::from_str(&self.0.alerts_json()).unwrap();
        v.as_array().unwrap().clone()
    }

    fn alert(&self, name: &str) -> Option<Value> {
        self.alerts()
            .into_iter()
            .find(|a| a["labels"]["alertname"] == name)
    }
}

fn config(url: &str) -> String {
    format!(
        "alertmanager:
  url: \"{url}\"
  instance: replica-1
  dashboard_url: http://127.0.0.1:8050
  labels:
    team: ml
notifications:
  max_attempts: 1
"
    )
}

fn manager(home: &TestHome, clock: &FixedClock) -> AlertManager {
    AlertManager::builder(&home.home)
        .clock(clock.shared())
        .sleeper(home.sleeper.clone())
        .build()
        .unwrap()
}

#[test]
fn a_rule_alert_fires_in_alertmanager_then_resolves() {
    let Some(am) = Am::start() else {
        return;
    };
    let home = TestHome::new(&config(&am.0.url()));
    // A clock at the real time, a minute back: the Alertmanager judges startsAt and
    // endsAt by its own clock, and a resolve must not end in its future.
    let now = (Utc::now() - chrono::Duration::minutes(1))
        .duration_trunc(chrono::Duration::seconds(1))
        .unwrap();
    let clock = FixedClock::new(now);
    let alerts = manager(&home, &clock);

    let evals = alerts.process(&[("error_rate", 0.08)]);
    let e = evals
        .iter()
        .find(|e| e.alert_name == "high_error_rate")
        .unwrap();
    assert_eq!(e.action, Action::Notified { repeat: false });
    let report = e.delivery.as_ref().unwrap();
    assert!(report.sent(Channel::Alertmanager), "{report}");

    let fired = am.alert("high_error_rate").expect("the alert is listed");
    assert_eq!(fired["status"]["state"], "active", "{fired}");
    assert_eq!(fired["labels"]["severity"], "critical");
    assert_eq!(fired["labels"]["instance"], "replica-1");
    assert_eq!(fired["labels"]["team"], "ml");
    assert_eq!(
        fired["annotations"]["summary"],
        "high_error_rate triggered: error_rate=0.08 > 0.05"
    );
    assert!(
        fired["annotations"]["description"]
            .as_str()
            .unwrap()
            .contains("Severity: critical")
    );
    assert_eq!(fired["generatorURL"], "http://127.0.0.1:8050/alerts");
    let starts: chrono::DateTime<Utc> = fired["startsAt"].as_str().unwrap().parse().unwrap();
    assert_eq!(starts, now);
    let ends: chrono::DateTime<Utc> = fired["endsAt"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        ends,
        now + chrono::Duration::hours(8),
        "twice the 4 h repeat"
    );

    // The condition clears: recops ends the alert and the Alertmanager drops it.
    clock.set(now + chrono::Duration::seconds(1));
    let evals = alerts.process(&[("error_rate", 0.01)]);
    let e = evals
        .iter()
        .find(|e| e.alert_name == "high_error_rate")
        .unwrap();
    assert_eq!(e.action, Action::Resolved { notified: true });
    assert!(
        e.delivery.as_ref().unwrap().sent(Channel::Alertmanager),
        "{:?}",
        e.delivery
    );
    assert!(
        am.alert("high_error_rate").is_none(),
        "resolved alerts are not listed: {:?}",
        am.alerts()
    );
    let log = home.alerts_log();
    assert_eq!(
        lines_with(&log, "Alertmanager notified at http://127.0.0.1:").len(),
        2,
        "{log}"
    );
}

#[test]
fn resolve_reaches_alertmanager_even_without_resolved_notifications() {
    let Some(am) = Am::start() else {
        return;
    };
    let home = TestHome::new(&format!("{}  send_resolved: false\n", config(&am.0.url())));
    let now = (Utc::now() - chrono::Duration::minutes(1))
        .duration_trunc(chrono::Duration::seconds(1))
        .unwrap();
    let clock = FixedClock::new(now);
    let alerts = manager(&home, &clock);
    alerts.process(&[("avg_latency_ms", 250.0)]);
    assert_eq!(
        am.alert("high_latency").unwrap()["labels"]["severity"],
        "warning"
    );
    clock.set(now + chrono::Duration::seconds(1));
    let e = alerts
        .process(&[("avg_latency_ms", 20.0)])
        .into_iter()
        .find(|e| e.alert_name == "high_latency")
        .unwrap();
    assert_eq!(e.action, Action::Resolved { notified: false });
    assert!(am.alert("high_latency").is_none(), "{:?}", am.alerts());
}

#[test]
fn pipeline_and_test_alerts_carry_their_labels() {
    let Some(am) = Am::start() else {
        return;
    };
    let home = TestHome::new(&config(&am.0.url()));
    let clock = FixedClock::new(Utc::now());
    let alerts = manager(&home, &clock);
    let r = alerts.send_pipeline_alert("data_refresh", "failed", "disk full", Severity::Critical);
    assert!(r.sent(Channel::Alertmanager), "{r}");
    let r = alerts.send_test(&[Channel::Alertmanager]);
    assert_eq!(
        r.channels[&Channel::Alertmanager],
        Delivery::Sent {
            attempts: 1,
            to: format!("{}/", am.0.url())
        }
    );
    let p = am.alert("pipeline_data_refresh_failed").unwrap();
    assert_eq!(p["labels"]["pipeline"], "data_refresh");
    assert_eq!(p["labels"]["severity"], "critical");
    // One-off alerts carry no endsAt: the Alertmanager's resolve_timeout ends them.
    assert_eq!(p["status"]["state"], "active");
    let t = am.alert("recops_test").unwrap();
    assert_eq!(t["labels"]["severity"], "info");
    assert!(t["labels"].get("pipeline").is_none());
}

#[test]
fn a_dead_alertmanager_is_reported_with_its_url_and_retried() {
    let port = crate::support::closed_port();
    let home = TestHome::new(&format!(
        "alertmanager:\n  url: \"http://user:pa55w0rd@127.0.0.1:{port}/?token=s3cret\"\nnotifications:\n  max_attempts: 3\n  initial_backoff_secs: 1\n"
    ));
    let report =
        home.manager()
            .send_alert("x", "y", Severity::Critical, Some(&[Channel::Alertmanager]));
    let Delivery::Failed { attempts, reason } = &report.channels[&Channel::Alertmanager] else {
        panic!("{report}");
    };
    assert_eq!(*attempts, 3);
    assert!(
        reason.contains(&format!("http://127.0.0.1:{port}/api/v2/alerts")),
        "{reason}"
    );
    assert!(
        !reason.contains("pa55w0rd") && !reason.contains("s3cret"),
        "{reason}"
    );
    let log = home.alerts_log();
    assert!(
        !log.contains("pa55w0rd") && !log.contains("s3cret"),
        "{log}"
    );
    assert_eq!(
        lines_with(&log, "Alertmanager failed for x").len(),
        1,
        "{log}"
    );
}

#[test]
fn without_url_the_channel_is_off_and_not_added() {
    let home = TestHome::new("alertmanager:\n  url: \"\"\n");
    let alerts = home.manager();
    assert!(
        !alerts
            .config()
            .channels_for("high_error_rate", Severity::Critical)
            .contains(&Channel::Alertmanager)
    );
    let r = alerts.send_test(&[Channel::Alertmanager]);
    assert_eq!(
        r.channels[&Channel::Alertmanager],
        Delivery::NotConfigured {
            reason: "alertmanager.url is empty (set ALERTMANAGER_URL)".into()
        }
    );
}
