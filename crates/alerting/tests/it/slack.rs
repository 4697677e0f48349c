//! The Slack channel against a local HTTP server standing in for the webhook.

use std::time::Duration;

use recops_alerting::{Channel, Delivery, Severity};
use serde_json::json;

use crate::support::{HttpServer, TestHome, closed_port, lines_with};

const SECRET_PATH: &str = "/services/T000/B000/SeCrEtToKeN42";

fn config(url: &str, extra: &str) -> String {
    format!(
        "slack:
  webhook_url: \"{url}\"
  channel: \"#ml-alerts\"
{extra}
notifications:
  max_attempts: 3
  initial_backoff_secs: 1
  max_backoff_secs: 30
"
    )
}

#[test]
fn the_webhook_receives_the_spec_payload() {
    let hook = HttpServer::start(vec![(200, "ok")]);
    let home = TestHome::new(&config(&hook.url(SECRET_PATH), ""));
    let report = home.manager().send_alert(
        "high_error_rate",
        "error_rate=0.08 > 0.05",
        Severity::Critical,
        Some(&[Channel::Slack, Channel::Log]),
    );
    assert!(report.all_sent(), "{report}");
    assert_eq!(
        report.channels[&Channel::Slack],
        Delivery::Sent {
            attempts: 1,
            to: "#ml-alerts".into()
        }
    );
    let reqs = hook.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].method, "POST");
    assert_eq!(reqs[0].path, SECRET_PATH);
    assert_eq!(reqs[0].content_type.as_deref(), Some("application/json"));
    assert_eq!(
        reqs[0].json(),
        json!({
            "text": ":rotating_light: *CRITICAL* high_error_rate\nerror_rate=0.08 > 0.05",
            "channel": "#ml-alerts"
        })
    );
    let log = home.alerts_log();
    assert_eq!(
        lines_with(&log, "| INFO | alerting | Slack notification sent").len(),
        1,
        "{log}"
    );
    assert!(!log.contains("SeCrEtToKeN42"), "{log}");
}

#[test]
fn each_severity_has_the_spec_emoji() {
    let hook = HttpServer::start(vec![(200, "ok")]);
    let home = TestHome::new(&config(&hook.url("/hook"), ""));
    let alerts = home.manager();
    for sev in [Severity::Info, Severity::Warning, Severity::Critical] {
        assert!(
            alerts
                .send_alert("a", "m", sev, Some(&[Channel::Slack]))
                .all_sent()
        );
    }
    let texts: Vec<String> = hook
        .requests()
        .iter()
        .map(|r| r.json()["text"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        texts,
        vec![
            ":information_source: *INFO* a\nm",
            ":warning: *WARNING* a\nm",
            ":rotating_light: *CRITICAL* a\nm",
        ]
    );
}

#[test]
fn a_500_is_retried_with_backoff_and_the_200_that_follows_counts() {
    let hook = HttpServer::start(vec![(500, "internal_error"), (200, "ok")]);
    let home = TestHome::new(&config(&hook.url(SECRET_PATH), ""));
    let report = home.manager().send_alert(
        "high_latency",
        "x",
        Severity::Warning,
        Some(&[Channel::Slack]),
    );
    assert_eq!(
        report.channels[&Channel::Slack],
        Delivery::Sent {
            attempts: 2,
            to: "#ml-alerts".into()
        }
    );
    assert_eq!(hook.requests().len(), 2);
    assert_eq!(home.sleeper.waits(), vec![Duration::from_secs(1)]);
    assert_eq!(hook.requests()[0].body, hook.requests()[1].body);
}

#[test]
fn a_webhook_that_keeps_failing_gives_false_after_three_tries() {
    let hook = HttpServer::start(vec![(500, "internal_error")]);
    let home = TestHome::new(&config(&hook.url(SECRET_PATH), ""));
    let report = home.manager().send_alert(
        "high_latency",
        "x",
        Severity::Warning,
        Some(&[Channel::Slack, Channel::Log]),
    );
    assert!(!report.success_map()[&Channel::Slack]);
    assert!(report.success_map()[&Channel::Log]);
    let Delivery::Failed { attempts, reason } = &report.channels[&Channel::Slack] else {
        panic!("{report}");
    };
    assert_eq!(*attempts, 3);
    assert!(
        reason.contains("HTTP 500") && reason.contains("internal_error"),
        "{reason}"
    );
    assert_eq!(hook.requests().len(), 3);
    assert_eq!(
        home.sleeper.waits(),
        vec![Duration::from_secs(1), Duration::from_secs(2)]
    );
    let log = home.alerts_log();
    let failed = lines_with(
        &log,
        "| ERROR | alerting | Slack failed for high_latency (after 3 tries): Slack webhook answered HTTP 500",
    );
    assert_eq!(failed.len(), 1, "{log}");
    assert!(!log.contains("SeCrEtToKeN42"), "{log}");
}

#[test]
fn a_404_is_permanent_and_not_retried() {
    let hook = HttpServer::start(vec![(404, "no_team")]);
    let home = TestHome::new(&config(&hook.url(SECRET_PATH), ""));
    let report = home
        .manager()
        .send_alert("x", "y", Severity::Critical, Some(&[Channel::Slack]));
    let Delivery::Failed { attempts, reason } = &report.channels[&Channel::Slack] else {
        panic!("{report}");
    };
    assert_eq!(*attempts, 1);
    assert!(
        reason.contains("404") && reason.contains("no_team"),
        "{reason}"
    );
    assert!(home.sleeper.waits().is_empty());
}

#[test]
fn a_webhook_that_never_answers_times_out() {
    let hook = HttpServer::start(vec![(0, "")]);
    let home = TestHome::new(
        &config(&hook.url(SECRET_PATH), "  timeout_secs: 0.3")
            .replace("max_attempts: 3", "max_attempts: 2"),
    );
    let report = home.manager().send_alert(
        "high_latency",
        "x",
        Severity::Warning,
        Some(&[Channel::Slack]),
    );
    let Delivery::Failed { attempts, reason } = &report.channels[&Channel::Slack] else {
        panic!("{report}");
    };
    assert_eq!(*attempts, 2);
    assert!(reason.contains("timed out after 0.3 s"), "{reason}");
    assert_eq!(hook.requests().len(), 2);
    assert!(!home.alerts_log().contains("SeCrEtToKeN42"));
}

#[test]
fn an_unreachable_webhook_never_shows_its_url() {
    let url = format!("http://127.0.0.1:{}{SECRET_PATH}", closed_port());
    let home = TestHome::new(&config(&url, ""));
    let report = home
        .manager()
        .send_alert("x", "y", Severity::Critical, Some(&[Channel::Slack]));
    let Delivery::Failed { attempts, reason } = &report.channels[&Channel::Slack] else {
        panic!("{report}");
    };
    assert_eq!(*attempts, 3);
    assert!(reason.contains("unreachable"), "{reason}");
    for text in [
        reason.clone(),
        home.alerts_log(),
        format!("{report:?}"),
        serde_json::to_string(&report).unwrap(),
        format!("{:?}", home.manager()),
        home.manager().overview().to_string(),
        serde_json::to_string(&home.manager().overview()).unwrap(),
    ] {
        assert!(!text.contains("SeCrEtToKeN42"), "{text}");
    }
}

#[test]
fn without_settings_email_and_slack_are_not_configured_and_the_log_records() {
    // The shipped config with no environment: e-mail and Slack are skipped with a
    // log line each, the log channel works.
    let home = TestHome::new(recops_alerting::DEFAULT_ALERTS_CONFIG);
    let report = home.manager().send_alert(
        "high_error_rate",
        "error_rate=0.08 > 0.05",
        Severity::Critical,
        None,
    );
    assert_eq!(
        report.success_map().into_iter().collect::<Vec<_>>(),
        vec![
            (Channel::Email, false),
            (Channel::Slack, false),
            (Channel::Log, true)
        ]
    );
    assert!(matches!(
        report.channels[&Channel::Slack],
        Delivery::NotConfigured { .. }
    ));
    let log = home.alerts_log();
    assert_eq!(lines_with(&log, "| WARNING | alerting | Email not configured: email.smtp_server and email.sender are empty").len(), 1, "{log}");
    assert_eq!(lines_with(&log, "| WARNING | alerting | Slack not configured: slack.webhook_url is empty (set SLACK_WEBHOOK_URL); high_error_rate not sent by slack").len(), 1, "{log}");
    assert_eq!(
        lines_with(
            &log,
            "| CRITICAL | alerting | high_error_rate: error_rate=0.08 > 0.05"
        )
        .len(),
        1,
        "{log}"
    );
}

#[test]
fn a_disabled_channel_is_reported_and_not_contacted() {
    let hook = HttpServer::start(vec![(200, "ok")]);
    let home = TestHome::new(&format!(
        "slack:\n  enabled: false\n  webhook_url: \"{}\"\nlogging:\n  enabled: false\n",
        hook.url("/hook")
    ));
    let report = home.manager().send_alert(
        "x",
        "y",
        Severity::Critical,
        Some(&[Channel::Slack, Channel::Log]),
    );
    assert_eq!(report.channels[&Channel::Slack], Delivery::Disabled);
    assert_eq!(report.channels[&Channel::Log], Delivery::Disabled);
    assert!(hook.requests().is_empty());
    assert!(!home.home.alerts_log().exists());
}
