use std::process::{Command, Output};

use recops_core::Home;
use serde_json::Value;

const ENV: [&str; 10] = [
    "SMTP_SERVER",
    "SMTP_PORT",
    "SMTP_SECURITY",
    "ALERT_EMAIL_SENDER",
    "ALERT_EMAIL_USERNAME",
    "ALERT_EMAIL_PASSWORD",
    "SLACK_WEBHOOK_URL",
    "ALERTMANAGER_URL",
    "RECOPS_DASHBOARD_URL",
    "RECOPS_INSTANCE",
];

fn recops(home: &std::path::Path, args: &[&str], env: &[(&str, String)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_recops"));
    cmd.arg("--home")
        .arg(home)
        .args(args)
        .env_remove("RECOPS_HOME");
    for var in ENV {
        cmd.env_remove(var);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn alert_test_on_the_log_channel_writes_alerts_log() {
    let dir = tempfile::tempdir().unwrap();
    let out = recops(dir.path(), &["alert", "test", "--channel", "log"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("log    sent to"), "{}", text(&out));
    let log = std::fs::read_to_string(Home::new(dir.path()).alerts_log()).unwrap();
    assert!(
        log.contains("| INFO | alerting | recops_test: Test alert from recops"),
        "{log}"
    );
}

#[test]
fn alert_test_without_smtp_settings_fails_and_says_what_to_set() {
    let dir = tempfile::tempdir().unwrap();
    let out = recops(
        dir.path(),
        &["alert", "test", "--channel", "email", "--json"],
        &[],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["channels"]["email"]["status"], "not_configured");
    assert!(
        v["channels"]["email"]["reason"]
            .as_str()
            .unwrap()
            .contains("set SMTP_SERVER, ALERT_EMAIL_SENDER")
    );
}

#[test]
fn alert_test_reads_smtp_settings_from_the_environment_and_hides_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::new(dir.path());
    // The shipped config with one try, so the unreachable server fails fast.
    std::fs::create_dir_all(home.config_dir()).unwrap();
    let config =
        recops_alerting::DEFAULT_ALERTS_CONFIG.replace("max_attempts: 3", "max_attempts: 1");
    std::fs::write(home.alerts_config(), config).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let env = [
        ("SMTP_SERVER", "127.0.0.1".to_owned()),
        ("SMTP_PORT", port.to_string()),
        ("SMTP_SECURITY", "none".to_owned()),
        ("ALERT_EMAIL_SENDER", "recops@example.com".to_owned()),
        ("ALERT_EMAIL_PASSWORD", "Pa55-word-e2e".to_owned()),
    ];
    let out = recops(dir.path(), &["alert", "test", "--channel", "email"], &env);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let all = text(&out);
    assert!(all.contains(&format!("SMTP 127.0.0.1:{port}")), "{all}");
    assert!(all.contains("FAILED after 1 tries"), "{all}");
    assert!(!all.contains("Pa55-word-e2e"), "{all}");
    let log = std::fs::read_to_string(home.alerts_log()).unwrap();
    assert!(
        log.contains("| ERROR | alerting | Email failed for recops_test"),
        "{log}"
    );
    assert!(!log.contains("Pa55-word-e2e"), "{log}");
}

#[test]
fn silence_list_and_unsilence() {
    let dir = tempfile::tempdir().unwrap();
    let out = recops(
        dir.path(),
        &[
            "alert",
            "silence",
            "high_latency",
            "--for",
            "2h",
            "--reason",
            "deploying als",
        ],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("silenced high_latency until"));

    let out = recops(dir.path(), &["alert", "list", "--json"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["silences"][0]["matcher"], "high_latency");
    assert_eq!(v["silences"][0]["reason"], "deploying als");
    assert_eq!(v["rules"].as_array().unwrap().len(), 6);
    assert!(
        v["channels"]["email"]
            .as_str()
            .unwrap()
            .starts_with("not configured")
    );

    let out = recops(dir.path(), &["alert", "list"], &[]);
    let t = text(&out);
    assert!(
        t.contains("high_latency") && t.contains("avg_latency_ms > 200"),
        "{t}"
    );
    assert!(t.contains("deploying als"), "{t}");

    let out = recops(dir.path(), &["alert", "unsilence", "high_latency"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    let out = recops(dir.path(), &["alert", "unsilence", "high_latency"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("no silence named"), "{}", text(&out));
}

#[test]
fn bad_silences_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = recops(
        dir.path(),
        &["alert", "silence", "x", "--for", "2q", "--reason", "y"],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("unknown unit"), "{}", text(&out));
    let out = recops(
        dir.path(),
        &[
            "alert", "silence", "Bad Name", "--for", "1h", "--reason", "y",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("invalid alert name"), "{}", text(&out));
}

#[test]
fn a_bad_alerts_config_is_named_with_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::new(dir.path());
    std::fs::create_dir_all(home.config_dir()).unwrap();
    std::fs::write(
        home.alerts_config(),
        "alerts:\n  high_latency:\n    threshold: 200\n    severity: urgent\n",
    )
    .unwrap();
    let out = recops(dir.path(), &["alert", "list"], &[]);
    assert_eq!(out.status.code(), Some(1));
    let t = text(&out);
    assert!(
        t.contains("alerts_config.yaml") && t.contains("alerts.high_latency.severity"),
        "{t}"
    );
}

#[test]
fn init_writes_the_alerts_config() {
    let dir = tempfile::tempdir().unwrap();
    let out = recops(dir.path(), &["init"], &[]);
    assert!(out.status.success());
    let home = Home::new(dir.path());
    assert_eq!(
        std::fs::read_to_string(home.alerts_config()).unwrap(),
        recops_alerting::DEFAULT_ALERTS_CONFIG
    );
}

#[test]
fn alert_test_on_the_alertmanager_channel_reaches_a_real_alertmanager() {
    let Some(am) = recops_testkit::RealAlertmanager::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // Without ALERTMANAGER_URL the channel is off and the test says what to set.
    let out = recops(
        dir.path(),
        &["alert", "test", "--channel", "alertmanager"],
        &[],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("set ALERTMANAGER_URL"),
        "{}",
        text(&out)
    );

    let env = [
        ("ALERTMANAGER_URL", am.url()),
        ("RECOPS_DASHBOARD_URL", "http://127.0.0.1:8050".to_owned()),
        ("RECOPS_INSTANCE", "e2e-host".to_owned()),
    ];
    let out = recops(
        dir.path(),
        &["alert", "test", "--channel", "alertmanager", "--json"],
        &env,
    );
    assert!(out.status.success(), "{}", text(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["channels"]["alertmanager"]["status"], "sent", "{v}");
    let alerts: Value = serde_json::from_str(&am.alerts_json()).unwrap();
    let test = alerts
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["labels"]["alertname"] == "recops_test")
        .unwrap_or_else(|| panic!("{alerts}"));
    assert_eq!(test["labels"]["instance"], "e2e-host");
    assert_eq!(test["labels"]["severity"], "info");
    assert_eq!(test["generatorURL"], "http://127.0.0.1:8050/alerts");
    assert!(
        test["annotations"]["description"]
            .as_str()
            .unwrap()
            .contains("If you read this, the channel works.")
    );
    // `recops alert list` shows the channel ready, with the endpoint.
    let out = recops(dir.path(), &["alert", "list"], &env);
    assert!(
        text(&out).contains(&format!("{}/api/v2/alerts", am.url())),
        "{}",
        text(&out)
    );
}
