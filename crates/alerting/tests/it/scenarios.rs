//! Rule scenarios from YAML files in `tests/scenarios/`: a config, then steps of
//! metrics with the alerts `check_alert_conditions` must report, what `process` must
//! do with each rule, and lines `alerts.log` must then hold.

use std::collections::BTreeMap;
use std::path::PathBuf;

use chrono::Duration;
use recops_alerting::{Action, Severity, Threshold};
use serde::Deserialize;

use crate::support::TestHome;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Scenario {
    description: String,
    config: String,
    steps: Vec<Step>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Step {
    /// Minutes the clock moves before this step.
    #[serde(default)]
    advance_minutes: i64,
    metrics: BTreeMap<String, f64>,
    /// What `check_alert_conditions` returns, in rule-name order.
    triggered: Vec<Expected>,
    /// What `process` does per rule (only the rules named are checked).
    #[serde(default)]
    actions: BTreeMap<String, String>,
    /// Substrings that must each appear on exactly `count` new lines of alerts.log.
    #[serde(default)]
    log: Vec<ExpectedLine>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expected {
    alert_name: String,
    metric: String,
    value: f64,
    threshold: Threshold,
    severity: Severity,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpectedLine {
    line: String,
    #[serde(default = "one")]
    count: usize,
}

fn one() -> usize {
    1
}

fn action_name(a: &Action) -> &'static str {
    match a {
        Action::NotEvaluated => "not_evaluated",
        Action::Ok => "ok",
        Action::Pending { .. } => "pending",
        Action::Notified { repeat: false } => "notified",
        Action::Notified { repeat: true } => "repeated",
        Action::Deduplicated { .. } => "deduplicated",
        Action::Silenced { .. } => "silenced",
        Action::Resolved { notified: true } => "resolved",
        Action::Resolved { notified: false } => "resolved_quietly",
        Action::Cleared => "cleared",
    }
}

fn scenario_files() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

#[test]
fn rule_scenarios() {
    let files = scenario_files();
    assert!(files.len() >= 4, "scenario files missing: {files:?}");
    for file in files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&file).unwrap();
        let scenario: Scenario = serde_saphyr::from_str(&text)
            .unwrap_or_else(|e| panic!("{name}: bad scenario file: {e}"));
        let home = TestHome::new(&scenario.config);
        let mut seen_log = 0usize;
        for (i, step) in scenario.steps.iter().enumerate() {
            let ctx = format!("{name} step {} ({})", i + 1, scenario.description);
            home.clock.advance(Duration::minutes(step.advance_minutes));
            let alerts = home.manager();

            let triggered = alerts.check_alert_conditions(&step.metrics);
            let got: Vec<(String, String, f64, Threshold, Severity)> = triggered
                .iter()
                .map(|t| {
                    (
                        t.alert_name.clone(),
                        t.metric.clone(),
                        t.value,
                        t.threshold,
                        t.severity,
                    )
                })
                .collect();
            let want: Vec<(String, String, f64, Threshold, Severity)> = step
                .triggered
                .iter()
                .map(|t| {
                    (
                        t.alert_name.clone(),
                        t.metric.clone(),
                        t.value,
                        t.threshold,
                        t.severity,
                    )
                })
                .collect();
            assert_eq!(got, want, "{ctx}: triggered alerts");

            let evals = alerts.process(&step.metrics);
            for (rule, want) in &step.actions {
                let e = evals
                    .iter()
                    .find(|e| &e.alert_name == rule)
                    .unwrap_or_else(|| panic!("{ctx}: no rule {rule}"));
                assert_eq!(
                    action_name(&e.action),
                    want,
                    "{ctx}: action of {rule}: {e:?}"
                );
            }

            let log = home.alerts_log();
            let new: Vec<&str> = log.lines().skip(seen_log).collect();
            for expected in &step.log {
                let n = new.iter().filter(|l| l.contains(&expected.line)).count();
                assert_eq!(
                    n,
                    expected.count,
                    "{ctx}: lines with {:?} in\n{}",
                    expected.line,
                    new.join("\n")
                );
            }
            seen_log = log.lines().count();
        }
        for line in home.alerts_log().lines() {
            assert_spec_line(line);
        }
    }
}

/// `YYYY-MM-DD HH:MM:SS | LEVEL | alerting | message`, the spec's alerts.log format.
fn assert_spec_line(line: &str) {
    let parts: Vec<&str> = line.splitn(4, " | ").collect();
    assert_eq!(parts.len(), 4, "{line}");
    assert!(
        chrono::NaiveDateTime::parse_from_str(parts[0], "%Y-%m-%d %H:%M:%S").is_ok(),
        "{line}"
    );
    assert!(
        ["INFO", "WARNING", "ERROR", "CRITICAL"].contains(&parts[1]),
        "{line}"
    );
    assert_eq!(parts[2], "alerting", "{line}");
    assert!(!parts[3].is_empty(), "{line}");
}
