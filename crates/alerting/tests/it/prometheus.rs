//! The shipped Prometheus rules (`config/prometheus/recops_rules.yml`): valid for
//! `promtool check rules`, proved by `promtool test rules` with the shipped
//! `recops_rules_test.yml` (each alert fires just above its threshold, not below),
//! and equivalent to the service rules of the shipped `alerts_config.yaml`.
//!
//! Without `promtool` (Debian's `prometheus` package) the promtool test prints a
//! NOTICE and passes, except under `CI=true` or `RECOPS_REQUIRE_PROMTOOL=1`
//! (scripts/test.sh sets it once the package is installed), where it fails.

use std::path::PathBuf;
use std::process::Command;

use recops_alerting::{AlertsConfig, Comparison, Threshold};
use serde_json::Value;

fn rules_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../config/prometheus")
}

fn promtool() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("promtool"))
        .find(|p| p.is_file())
}

fn required() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
        || std::env::var("RECOPS_REQUIRE_PROMTOOL").is_ok_and(|v| v == "1")
}

fn run(promtool: &PathBuf, args: &[&str]) {
    let out = Command::new(promtool)
        .args(args)
        .current_dir(rules_dir())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?} failed:\n{text}");
    assert!(text.contains("SUCCESS"), "{text}");
}

#[test]
fn promtool_checks_and_unit_tests_the_shipped_rules() {
    let Some(promtool) = promtool() else {
        assert!(
            !required(),
            "promtool is required (CI=true or RECOPS_REQUIRE_PROMTOOL=1) but is not on PATH \
             (apt-get install prometheus)"
        );
        println!("NOTICE: no promtool: the Prometheus rules tests are skipped");
        return;
    };
    run(&promtool, &["check", "rules", "recops_rules.yml"]);
    run(&promtool, &["test", "rules", "recops_rules_test.yml"]);
}

/// The alerting rules of `recops_rules.yml` by name: (expr, severity).
fn prometheus_alerts() -> Vec<(String, String, String)> {
    let text = std::fs::read_to_string(rules_dir().join("recops_rules.yml")).unwrap();
    let v: Value = serde_saphyr::from_str(&text).unwrap();
    let mut out = Vec::new();
    for group in v["groups"].as_array().unwrap() {
        for rule in group["rules"].as_array().unwrap() {
            if let Some(name) = rule["alert"].as_str() {
                out.push((
                    name.to_owned(),
                    rule["expr"].as_str().unwrap().trim().to_owned(),
                    rule["labels"]["severity"].as_str().unwrap().to_owned(),
                ));
            }
        }
    }
    out
}

#[test]
fn the_prometheus_rules_match_the_service_rules_of_alerts_config() {
    let dir = tempfile::tempdir().unwrap();
    let home = recops_core::Home::new(dir.path());
    let config = AlertsConfig::load(&home).unwrap();
    let prom = prometheus_alerts();
    let service_rules = [
        "high_latency",
        "critical_latency",
        "high_error_rate",
        "high_fallback_rate",
    ];
    for name in service_rules {
        let rule = &config.alerts[name];
        let (_, expr, severity) = prom
            .iter()
            .find(|(n, ..)| n == name)
            .unwrap_or_else(|| panic!("no Prometheus alert {name}"));
        assert_eq!(severity, rule.severity.as_str(), "{name}");
        assert_eq!(rule.comparison(), Comparison::Gt, "{name}");
        let Threshold::Number(t) = rule.threshold else {
            panic!("{name}: numeric threshold expected");
        };
        let (recorded, metric) = match config.metric_of(name, rule).as_str() {
            "avg_latency_ms" => ("job:recops_recommend_latency_seconds:mean1h * 1000", t),
            "error_rate" => ("job:recops_recommend_errors:ratio_rate1h", t),
            "fallback_rate" => ("job:recops_recommend_fallbacks:ratio_rate1h", t),
            other => panic!("{name}: no Prometheus equivalent of {other}"),
        };
        assert_eq!(expr, &format!("{recorded} > {metric}"), "{name}");
    }
    for name in ["pipeline_stale", "pipeline_metrics_missing"] {
        assert!(prom.iter().any(|(n, ..)| n == name), "{name}");
    }
}
