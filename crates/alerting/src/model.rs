//! The small vocabulary types: severities, channels, comparisons, thresholds, secrets.

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::Error;

/// How urgent an alert is: the one [`recops_core::Severity`] of recops.
pub use recops_core::Severity;

/// The spec's Slack emoji for a severity.
pub(crate) fn slack_emoji(severity: Severity) -> &'static str {
    match severity {
        Severity::Info => ":information_source:",
        Severity::Warning => ":warning:",
        Severity::Critical => ":rotating_light:",
    }
}

/// Where a notification goes: the spec's `email`, `slack`, `log`, and
/// `alertmanager` (a Prometheus Alertmanager's API v2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    /// E-mail over SMTP to `email.recipients`.
    Email,
    /// A Slack incoming webhook.
    Slack,
    /// A line in `logs/service/alerts.log`.
    Log,
    /// A Prometheus Alertmanager (`POST /api/v2/alerts`), which routes, groups and
    /// silences with the team's own receivers.
    Alertmanager,
}

impl Channel {
    /// Every channel.
    pub const ALL: [Channel; 4] = [
        Channel::Email,
        Channel::Slack,
        Channel::Log,
        Channel::Alertmanager,
    ];

    /// The config spelling (`slack`).
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Slack => "slack",
            Channel::Log => "log",
            Channel::Alertmanager => "alertmanager",
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl FromStr for Channel {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Channel::ALL
            .into_iter()
            .find(|v| v.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| Error::InvalidInput {
                what: "channel",
                message: format!("{s:?}: expected one of email, slack, log, alertmanager"),
            })
    }
}

/// How a rule compares the metric with its threshold (default `>`, as the spec).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum Comparison {
    /// `>`: fires when the value is above the threshold.
    #[default]
    #[serde(rename = ">")]
    Gt,
    /// `>=`
    #[serde(rename = ">=")]
    Ge,
    /// `<`: fires when the value is below the threshold (hit rate, recall).
    #[serde(rename = "<")]
    Lt,
    /// `<=`
    #[serde(rename = "<=")]
    Le,
}

impl Comparison {
    /// The operator as written in config and log lines.
    pub fn as_str(self) -> &'static str {
        match self {
            Comparison::Gt => ">",
            Comparison::Ge => ">=",
            Comparison::Lt => "<",
            Comparison::Le => "<=",
        }
    }

    /// Whether `value <op> threshold` holds. NaN never breaches.
    pub fn breached(self, value: f64, threshold: f64) -> bool {
        match self {
            Comparison::Gt => value > threshold,
            Comparison::Ge => value >= threshold,
            Comparison::Lt => value < threshold,
            Comparison::Le => value <= threshold,
        }
    }
}

impl fmt::Display for Comparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A rule's threshold: a number (`threshold: 200`) or a flag (`threshold: true`, for
/// metrics that are yes/no such as `data_drift`; the rule fires when the metric, read
/// as non-zero = true, equals the flag).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Threshold {
    /// Compare the metric with this number.
    Number(f64),
    /// Fire when the metric's truth equals this flag.
    Flag(bool),
}

impl Threshold {
    /// Whether `value` breaches this threshold under `comparison`.
    pub fn breached(self, comparison: Comparison, value: f64) -> bool {
        match self {
            Threshold::Number(t) => comparison.breached(value, t),
            Threshold::Flag(flag) => (value != 0.0 && !value.is_nan()) == flag,
        }
    }
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Threshold::Number(n) => write!(f, "{n}"),
            Threshold::Flag(b) => write!(f, "{b}"),
        }
    }
}

impl Serialize for Threshold {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Threshold::Number(n) => s.serialize_f64(*n),
            Threshold::Flag(b) => s.serialize_bool(*b),
        }
    }
}

impl<'de> Deserialize<'de> for Threshold {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Threshold;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number (200, 0.05) or true/false")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Threshold, E> {
                Ok(Threshold::Flag(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Threshold, E> {
                Ok(Threshold::Number(v as f64))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Threshold, E> {
                Ok(Threshold::Number(v as f64))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Threshold, E> {
                Ok(Threshold::Number(v))
            }
        }
        d.deserialize_any(V)
    }
}

/// A secret config value (SMTP password, Slack webhook URL). Its `Debug` and
/// `Display` never show the value, so it cannot leak into logs, errors or reports.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// True when no value is set (an unset `${VAR:-}`).
    pub fn is_empty(&self) -> bool {
        self.0.trim().is_empty()
    }

    /// The value, for the code that must use it (the SMTP login, the webhook request).
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            f.write_str("Secret(<empty>)")
        } else {
            f.write_str("Secret(<redacted>)")
        }
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.is_empty() {
            "<empty>"
        } else {
            "<redacted>"
        })
    }
}

/// Replaces every occurrence of each non-empty secret in `text` with `<redacted>`.
/// Applied to every error text from a transport before it is logged or returned.
pub(crate) fn redact(text: &str, secrets: &[&Secret]) -> String {
    let mut out = text.to_owned();
    for s in secrets {
        let v = s.expose();
        if v.len() >= 3 {
            out = out.replace(v, "<redacted>");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_show_in_debug_or_display_and_are_scrubbed() {
        let s = Secret::new("hunter2-very-secret");
        assert_eq!(format!("{s:?}"), "Secret(<redacted>)");
        assert_eq!(s.to_string(), "<redacted>");
        assert!(Secret::new("  ").is_empty());
        assert_eq!(
            redact("login hunter2-very-secret failed", &[&s]),
            "login <redacted> failed"
        );
    }

    #[test]
    fn comparisons_and_flags() {
        assert!(Comparison::Gt.breached(215.3, 200.0));
        assert!(!Comparison::Gt.breached(200.0, 200.0));
        assert!(Comparison::Ge.breached(200.0, 200.0));
        assert!(Comparison::Lt.breached(0.01, 0.05));
        assert!(!Comparison::Le.breached(f64::NAN, 1.0));
        assert!(Threshold::Flag(true).breached(Comparison::Gt, 1.0));
        assert!(!Threshold::Flag(true).breached(Comparison::Gt, 0.0));
        assert!(Threshold::Flag(false).breached(Comparison::Gt, 0.0));
        assert_eq!(Threshold::Number(200.0).to_string(), "200");
        assert_eq!(Threshold::Number(0.05).to_string(), "0.05");
    }

    #[test]
    fn names_parse_case_insensitively_and_reject_unknowns() {
        assert_eq!("Slack".parse::<Channel>().unwrap(), Channel::Slack);
        assert_eq!("CRITICAL".parse::<Severity>().unwrap(), Severity::Critical);
        let e = "pager".parse::<Channel>().unwrap_err().to_string();
        assert!(
            e.contains("expected one of email, slack, log, alertmanager"),
            "{e}"
        );
        assert!("urgent".parse::<Severity>().is_err());
    }
}
