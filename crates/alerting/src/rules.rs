//! Rule evaluation: the spec's `check_alert_conditions`.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use crate::config::AlertsConfig;
use crate::model::{Comparison, Severity, Threshold};

/// Named metric values that alert rules read (`avg_latency_ms`, `error_rate`, ...).
///
/// Implemented for maps from `String` or `&str` to `f64`, for arrays and slices of
/// `(&str, f64)` pairs, and for a JSON object (numbers, and booleans as 1 / 0).
pub trait Metrics {
    /// The value of `name`, or `None` when the metric is not present.
    fn metric(&self, name: &str) -> Option<f64>;
}

impl Metrics for BTreeMap<String, f64> {
    fn metric(&self, name: &str) -> Option<f64> {
        self.get(name).copied()
    }
}

impl Metrics for BTreeMap<&str, f64> {
    fn metric(&self, name: &str) -> Option<f64> {
        self.get(name).copied()
    }
}

impl<S: std::hash::BuildHasher> Metrics for HashMap<String, f64, S> {
    fn metric(&self, name: &str) -> Option<f64> {
        self.get(name).copied()
    }
}

impl<S: std::hash::BuildHasher> Metrics for HashMap<&str, f64, S> {
    fn metric(&self, name: &str) -> Option<f64> {
        self.get(name).copied()
    }
}

impl Metrics for [(&str, f64)] {
    fn metric(&self, name: &str) -> Option<f64> {
        self.iter().rev().find(|(k, _)| *k == name).map(|(_, v)| *v)
    }
}

impl<const N: usize> Metrics for [(&str, f64); N] {
    fn metric(&self, name: &str) -> Option<f64> {
        self.as_slice().metric(name)
    }
}

impl Metrics for serde_json::Map<String, serde_json::Value> {
    fn metric(&self, name: &str) -> Option<f64> {
        match self.get(name)? {
            serde_json::Value::Number(n) => n.as_f64(),
            serde_json::Value::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
            _ => None,
        }
    }
}

impl Metrics for serde_json::Value {
    fn metric(&self, name: &str) -> Option<f64> {
        self.as_object()?.metric(name)
    }
}

/// A rule whose condition holds for the given metrics (the spec's dict: alert_name,
/// metric, value, threshold, severity; plus the comparison).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TriggeredAlert {
    /// The rule name (`high_latency`).
    pub alert_name: String,
    /// The metric it read (`avg_latency_ms`).
    pub metric: String,
    /// The metric's value.
    pub value: f64,
    /// The rule's threshold.
    pub threshold: Threshold,
    /// How value and threshold were compared.
    pub comparison: Comparison,
    /// The rule's severity.
    pub severity: Severity,
}

impl TriggeredAlert {
    /// The spec's log message: `high_latency triggered: avg_latency_ms=215.3 > 200`
    /// (`data_drift triggered: data_drift=true` for a true/false rule).
    pub fn message(&self) -> String {
        format!("{} triggered: {}", self.alert_name, self.condition())
    }

    /// `avg_latency_ms=215.3 > 200`
    pub fn condition(&self) -> String {
        describe(&self.metric, self.value, self.threshold, self.comparison)
    }
}

/// `metric=value op threshold`, or `metric=true` for a flag threshold.
pub(crate) fn describe(metric: &str, value: f64, threshold: Threshold, cmp: Comparison) -> String {
    match threshold {
        Threshold::Number(t) => format!("{metric}={} {cmp} {t}", round_for_display(value)),
        Threshold::Flag(_) => format!("{metric}={}", value != 0.0),
    }
}

/// Values as people read them: at most 4 decimals, no trailing zeros
/// (`215.3`, `0.0833`, `200`).
pub(crate) fn round_for_display(v: f64) -> f64 {
    if v.is_finite() && v.abs() < 1e12 {
        (v * 10_000.0).round() / 10_000.0
    } else {
        v
    }
}

/// One rule evaluated against the metrics.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RuleCheck {
    pub(crate) alert_name: String,
    pub(crate) metric: String,
    /// `None` when the metric is missing or NaN: the rule is not evaluated.
    pub(crate) value: Option<f64>,
    pub(crate) threshold: Threshold,
    pub(crate) comparison: Comparison,
    pub(crate) severity: Severity,
    pub(crate) breached: bool,
}

impl RuleCheck {
    pub(crate) fn triggered(&self) -> Option<TriggeredAlert> {
        match (self.breached, self.value) {
            (true, Some(value)) => Some(TriggeredAlert {
                alert_name: self.alert_name.clone(),
                metric: self.metric.clone(),
                value,
                threshold: self.threshold,
                comparison: self.comparison,
                severity: self.severity,
            }),
            _ => None,
        }
    }
}

/// Evaluates every rule of `config` against `metrics`, in rule-name order.
pub(crate) fn check_rules(config: &AlertsConfig, metrics: &dyn Metrics) -> Vec<RuleCheck> {
    config
        .alerts
        .iter()
        .map(|(name, rule)| {
            let metric = config.metric_of(name, rule);
            let value = metrics.metric(&metric).filter(|v| !v.is_nan());
            let comparison = rule.comparison();
            let breached = value.is_some_and(|v| rule.threshold.breached(comparison, v));
            RuleCheck {
                alert_name: name.clone(),
                metric,
                value,
                threshold: rule.threshold,
                comparison,
                severity: rule.severity,
                breached,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_sources_agree() {
        let arr = [("error_rate", 0.08), ("avg_latency_ms", 215.3)];
        let map: BTreeMap<String, f64> = arr.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        let json = serde_json::json!({"error_rate": 0.08, "data_drift": true, "note": "x"});
        assert_eq!(arr.metric("avg_latency_ms"), Some(215.3));
        assert_eq!(map.metric("error_rate"), Some(0.08));
        assert_eq!(json.metric("error_rate"), Some(0.08));
        assert_eq!(json.metric("data_drift"), Some(1.0));
        assert_eq!(json.metric("note"), None);
        assert_eq!(arr.metric("missing"), None);
    }

    #[test]
    fn messages_read_like_the_spec() {
        let t = TriggeredAlert {
            alert_name: "high_latency".into(),
            metric: "avg_latency_ms".into(),
            value: 215.3,
            threshold: Threshold::Number(200.0),
            comparison: Comparison::Gt,
            severity: Severity::Warning,
        };
        assert_eq!(
            t.message(),
            "high_latency triggered: avg_latency_ms=215.3 > 200"
        );
        let d = TriggeredAlert {
            alert_name: "data_drift".into(),
            metric: "data_drift".into(),
            value: 1.0,
            threshold: Threshold::Flag(true),
            comparison: Comparison::Gt,
            severity: Severity::Warning,
        };
        assert_eq!(d.message(), "data_drift triggered: data_drift=true");
        assert_eq!(round_for_display(0.083_333_333), 0.0833);
    }
}
