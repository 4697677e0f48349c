//! Deduplication, repeat, resolve and silences across job runs (each check is a new
//! `AlertManager`, as each hourly health check is a new process), on a fixed clock.

use chrono::Duration;
use recops_alerting::{Action, AlertStatus, Channel, Delivery, Severity};

use crate::support::{HttpServer, SmtpOptions, SmtpServer, TestHome, closed_port, lines_with, t0};

fn config(smtp_port: u16, webhook: &str) -> String {
    format!(
        "alerts:
  high_error_rate:
    metric: error_rate
    threshold: 0.05
    severity: critical
    channels: [log, email, slack]
email:
  smtp_server: 127.0.0.1
  smtp_port: {smtp_port}
  security: none
  sender: recops@example.com
  recipients: [oncall@example.com]
slack:
  webhook_url: \"{webhook}\"
  channel: \"#ml-alerts\"
notifications:
  repeat_interval_hours: 4
"
    )
}

fn action_of(evals: &[recops_alerting::Evaluation], name: &str) -> Action {
    evals
        .iter()
        .find(|e| e.alert_name == name)
        .unwrap()
        .action
        .clone()
}

#[test]
fn ten_checks_within_the_repeat_interval_send_once_then_repeat_then_resolve() {
    let smtp = SmtpServer::start(SmtpOptions::default());
    let hook = HttpServer::start(vec![(200, "ok")]);
    let home = TestHome::new(&config(smtp.port(), &hook.url("/hook")));

    // 10 checks, 20 minutes apart (3 h in all): one notification.
    for i in 0..10 {
        let evals = home.manager().process(&[("error_rate", 0.08)]);
        let action = action_of(&evals, "high_error_rate");
        if i == 0 {
            assert_eq!(action, Action::Notified { repeat: false });
        } else {
            assert_eq!(
                action,
                Action::Deduplicated {
                    next_at: t0() + Duration::hours(4)
                }
            );
        }
        home.clock.advance(Duration::minutes(20));
    }
    assert_eq!(smtp.mails().len(), 1);
    assert_eq!(hook.requests().len(), 1);
    let log = home.alerts_log();
    assert_eq!(
        lines_with(
            &log,
            "| CRITICAL | alerting | high_error_rate triggered: error_rate=0.08 > 0.05"
        )
        .len(),
        1,
        "{log}"
    );

    // After the interval: one more.
    home.clock.set(t0() + Duration::hours(4));
    let evals = home.manager().process(&[("error_rate", 0.09)]);
    assert_eq!(
        action_of(&evals, "high_error_rate"),
        Action::Notified { repeat: true }
    );
    home.clock.advance(Duration::minutes(30));
    let evals = home.manager().process(&[("error_rate", 0.09)]);
    assert!(matches!(
        action_of(&evals, "high_error_rate"),
        Action::Deduplicated { .. }
    ));
    assert_eq!(smtp.mails().len(), 2);
    assert_eq!(hook.requests().len(), 2);
    let repeat = &smtp.mails()[1];
    assert_eq!(
        repeat.header("Subject").unwrap(),
        "[CRITICAL] high_error_rate"
    );
    assert!(
        repeat
            .part("text/plain")
            .unwrap()
            .contains("Notification 2")
    );

    let state = home.manager().states().unwrap();
    assert_eq!(state[0].status, AlertStatus::Firing);
    assert_eq!(state[0].firing_since, Some(t0()));
    assert_eq!(state[0].notification_count, 2);
    assert_eq!(state[0].last_notified_at, Some(t0() + Duration::hours(4)));

    // Clearing: one resolved message on every channel.
    home.clock.advance(Duration::minutes(30));
    let evals = home.manager().process(&[("error_rate", 0.01)]);
    assert_eq!(
        action_of(&evals, "high_error_rate"),
        Action::Resolved { notified: true }
    );
    let evals = home.manager().process(&[("error_rate", 0.01)]);
    assert_eq!(action_of(&evals, "high_error_rate"), Action::Ok);
    assert_eq!(smtp.mails().len(), 3);
    assert_eq!(hook.requests().len(), 3);
    let resolved = &smtp.mails()[2];
    assert_eq!(
        resolved.header("Subject").unwrap(),
        "[RESOLVED] high_error_rate"
    );
    assert!(
        resolved
            .part("text/plain")
            .unwrap()
            .contains("high_error_rate resolved: error_rate=0.01 (threshold > 0.05)")
    );
    let slack = hook.requests()[2].json();
    assert!(
        slack["text"]
            .as_str()
            .unwrap()
            .starts_with(":white_check_mark: *RESOLVED* high_error_rate\n"),
        "{slack}"
    );
    let log = home.alerts_log();
    assert_eq!(
        lines_with(
            &log,
            "| INFO | alerting | high_error_rate resolved: error_rate=0.01 (threshold > 0.05)"
        )
        .len(),
        1,
        "{log}"
    );
    let state = home.manager().states().unwrap();
    assert_eq!(state[0].status, AlertStatus::Ok);
    assert_eq!(state[0].resolved_at, Some(t0() + Duration::hours(5)));

    // A new breach is a new firing: notified at once.
    home.clock.advance(Duration::minutes(10));
    let evals = home.manager().process(&[("error_rate", 0.2)]);
    assert_eq!(
        action_of(&evals, "high_error_rate"),
        Action::Notified { repeat: false }
    );
    assert_eq!(smtp.mails().len(), 4);
}

#[test]
fn a_missing_metric_keeps_the_state() {
    let home = TestHome::new(
        "alerts:\n  high_error_rate:\n    threshold: 0.05\n    severity: critical\n    channels: [log]\n",
    );
    let m = home.manager();
    assert_eq!(
        action_of(&m.process(&[("error_rate", 0.08)]), "high_error_rate"),
        Action::Notified { repeat: false }
    );
    home.clock.advance(Duration::minutes(10));
    assert_eq!(
        action_of(&m.process(&[("avg_latency_ms", 10.0)]), "high_error_rate"),
        Action::NotEvaluated
    );
    assert_eq!(m.states().unwrap()[0].status, AlertStatus::Firing);
}

#[test]
fn a_silence_keeps_email_and_slack_quiet_but_the_log_records_and_it_ends() {
    let smtp = SmtpServer::start(SmtpOptions::default());
    let hook = HttpServer::start(vec![(200, "ok")]);
    let home = TestHome::new(&config(smtp.port(), &hook.url("/hook")));
    let silence = home
        .manager()
        .silence_for(
            "high_error_rate",
            Duration::hours(2),
            "deploying the new model",
        )
        .unwrap();
    assert_eq!(silence.until, t0() + Duration::hours(2));

    let evals = home.manager().process(&[("error_rate", 0.08)]);
    assert_eq!(
        action_of(&evals, "high_error_rate"),
        Action::Silenced {
            until: t0() + Duration::hours(2),
            reason: "deploying the new model".into()
        }
    );
    home.clock.advance(Duration::minutes(30));
    home.manager().process(&[("error_rate", 0.08)]);
    // An ad-hoc alert with the same name is silenced as well.
    let report =
        home.manager()
            .send_alert("high_error_rate", "manual check", Severity::Critical, None);
    assert!(matches!(
        report.channels[&Channel::Email],
        Delivery::Silenced { .. }
    ));
    assert!(report.sent(Channel::Log));
    assert!(smtp.mails().is_empty());
    assert!(hook.requests().is_empty());
    let log = home.alerts_log();
    let silenced = lines_with(&log, "(silenced until");
    assert_eq!(silenced.len(), 2, "{log}");
    assert!(
        silenced[0].contains("high_error_rate triggered: error_rate=0.08 > 0.05 (silenced until")
    );
    assert!(silenced[0].contains("deploying the new model"));
    assert_eq!(
        lines_with(&log, "Silence set: high_error_rate until").len(),
        1
    );

    // `recops alert list` shows it.
    let overview = home.manager().overview();
    assert_eq!(overview.silences.len(), 1);
    assert!(overview.to_string().contains("deploying the new model"));

    // The silence ends while the alert still fires: notified now.
    home.clock
        .set(t0() + Duration::hours(2) + Duration::minutes(1));
    let evals = home.manager().process(&[("error_rate", 0.08)]);
    assert_eq!(
        action_of(&evals, "high_error_rate"),
        Action::Notified { repeat: false }
    );
    assert_eq!(smtp.mails().len(), 1);
    assert_eq!(hook.requests().len(), 1);
    assert!(home.manager().silences().unwrap().is_empty());
}

#[test]
fn prefix_silences_and_unsilence() {
    let home = TestHome::new("alerts: {}\n");
    let m = home.manager();
    m.silence_for(
        "pipeline_data_refresh_*",
        Duration::hours(1),
        "staging bucket migration",
    )
    .unwrap();
    let r = m.send_pipeline_alert("data_refresh", "failed", "disk full", Severity::Critical);
    assert_eq!(r.alert_name, "pipeline_data_refresh_failed");
    assert!(matches!(
        r.channels[&Channel::Email],
        Delivery::Silenced { .. }
    ));
    assert!(m.unsilence("pipeline_data_refresh_*").unwrap());
    assert!(!m.unsilence("pipeline_data_refresh_*").unwrap());
    let r = m.send_pipeline_alert("data_refresh", "failed", "disk full", Severity::Critical);
    assert!(matches!(
        r.channels[&Channel::Email],
        Delivery::NotConfigured { .. }
    ));
    let log = home.alerts_log();
    assert_eq!(
        lines_with(&log, "| CRITICAL | alerting | pipeline_data_refresh_failed: Pipeline: data_refresh\\nStatus: failed\\ndisk full").len(),
        2,
        "{log}"
    );
    // Bad silences are refused with a reason.
    assert!(m.silence_for("bad name", Duration::hours(1), "x").is_err());
    assert!(m.silence_for("ok_name", Duration::hours(1), "  ").is_err());
    assert!(
        m.silence("ok_name", t0() - Duration::hours(1), "x")
            .is_err()
    );
}

#[test]
fn a_delivery_that_reaches_no_channel_is_retried_at_the_next_check() {
    // Nothing answers and the log is off: the notification must not count as sent.
    let port = closed_port();
    let yaml =
        config(port, &format!("http://127.0.0.1:{port}/hook")) + "logging:\n  enabled: false\n";
    let home =
        TestHome::new(&yaml.replace("notifications:\n", "notifications:\n  max_attempts: 1\n"));
    let evals = home.manager().process(&[("error_rate", 0.08)]);
    let e = evals
        .iter()
        .find(|e| e.alert_name == "high_error_rate")
        .unwrap();
    assert_eq!(e.action, Action::Notified { repeat: false });
    assert!(!e.delivery.as_ref().unwrap().any_sent());
    home.clock.advance(Duration::minutes(5));
    let evals = home.manager().process(&[("error_rate", 0.08)]);
    assert_eq!(
        action_of(&evals, "high_error_rate"),
        Action::Notified { repeat: false }
    );
    assert!(!home.home.alerts_log().exists());
}

#[test]
fn observe_applies_the_same_rules_to_conditions_jobs_compute() {
    let home = TestHome::new("alerts: {}\nnotifications:\n  repeat_interval_hours: 1\n");
    let m = home.manager();
    let e = m.observe(
        "scheduler_heartbeat_missing",
        true,
        "no heartbeat for 2h",
        Severity::Critical,
    );
    assert_eq!(e.action, Action::Notified { repeat: false });
    home.clock.advance(Duration::minutes(30));
    let e = m.observe(
        "scheduler_heartbeat_missing",
        true,
        "no heartbeat for 2h30m",
        Severity::Critical,
    );
    assert_eq!(
        e.action,
        Action::Deduplicated {
            next_at: t0() + Duration::hours(1)
        }
    );
    home.clock.advance(Duration::minutes(31));
    let e = m.observe(
        "scheduler_heartbeat_missing",
        true,
        "still none",
        Severity::Critical,
    );
    assert_eq!(e.action, Action::Notified { repeat: true });
    let e = m.observe(
        "scheduler_heartbeat_missing",
        false,
        "heartbeat back",
        Severity::Critical,
    );
    assert_eq!(e.action, Action::Resolved { notified: true });
    let log = home.alerts_log();
    assert_eq!(
        lines_with(&log, "scheduler_heartbeat_missing: no heartbeat for 2h").len(),
        1,
        "{log}"
    );
    assert_eq!(
        lines_with(
            &log,
            "| INFO | alerting | scheduler_heartbeat_missing resolved: heartbeat back"
        )
        .len(),
        1,
        "{log}"
    );
}

#[test]
fn a_broken_state_database_does_not_lose_alerts() {
    let home = TestHome::new(
        "alerts:\n  high_error_rate:\n    threshold: 0.05\n    severity: critical\n    channels: [log]\n",
    );
    std::fs::create_dir_all(home.home.logs_dir()).unwrap();
    std::fs::write(home.home.alert_state_db(), b"this is not sqlite").unwrap();
    let m = home.manager();
    assert!(m.state_error().unwrap().contains("not an SQLite database"));
    let evals = m.process(&[("error_rate", 0.08)]);
    let e = evals
        .iter()
        .find(|e| e.alert_name == "high_error_rate")
        .unwrap();
    assert!(e.delivery.as_ref().unwrap().sent(Channel::Log));
    assert!(m.silence_for("x", Duration::hours(1), "y").is_err());
    assert!(m.overview().state_error.is_some());
    assert_eq!(
        std::fs::read(home.home.alert_state_db()).unwrap(),
        b"this is not sqlite"
    );
    let log = home.alerts_log();
    assert_eq!(
        lines_with(&log, "high_error_rate triggered").len(),
        1,
        "{log}"
    );
    assert_eq!(
        lines_with(&log, "alert state unavailable").len(),
        1,
        "{log}"
    );
}

#[test]
fn concurrent_jobs_notify_a_breach_once() {
    fn shareable<T: Send + Sync>() {}
    shareable::<recops_alerting::AlertManager>();

    let home = TestHome::new(
        "alerts:\n  high_error_rate:\n    threshold: 0.05\n    severity: critical\n    channels: [log]\n",
    );
    let managers: Vec<_> = (0..4).map(|_| home.manager()).collect();
    let actions: Vec<Action> = std::thread::scope(|s| {
        let handles: Vec<_> = managers
            .iter()
            .map(|m| {
                s.spawn(move || action_of(&m.process(&[("error_rate", 0.3)]), "high_error_rate"))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let notified = actions
        .iter()
        .filter(|a| matches!(a, Action::Notified { .. }))
        .count();
    assert_eq!(notified, 1, "{actions:?}");
    assert_eq!(
        lines_with(&home.alerts_log(), "high_error_rate triggered").len(),
        1
    );
}
