//! The small shared vocabulary of recops: how urgent an alert is ([`Severity`]) and
//! which algorithm a model is ([`ModelType`]). One definition each, serialized the
//! spec's way (`warning`, `als`), used by alerting, the scheduler, the jobs, training,
//! the registry and serving.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::logfile::LogLevel;

/// How urgent an alert is: the spec's `info`, `warning`, `critical`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// `info`: for the record (pipeline finished, model deployed).
    #[default]
    Info,
    /// `warning`: someone should look today.
    Warning,
    /// `critical`: someone must act now.
    Critical,
}

impl Severity {
    /// Every severity, mildest first.
    pub const ALL: [Severity; 3] = [Severity::Info, Severity::Warning, Severity::Critical];

    /// The config spelling (`warning`).
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }

    /// The spelling in subjects and Slack messages (`WARNING`).
    pub fn upper(self) -> &'static str {
        match self {
            Severity::Info => "INFO",
            Severity::Warning => "WARNING",
            Severity::Critical => "CRITICAL",
        }
    }

    /// The level of an alert's line in a log file.
    pub fn log_level(self) -> LogLevel {
        match self {
            Severity::Info => LogLevel::Info,
            Severity::Warning => LogLevel::Warning,
            Severity::Critical => LogLevel::Critical,
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl FromStr for Severity {
    type Err = Error;
    /// Case-insensitive, surrounding spaces ignored.
    fn from_str(s: &str) -> Result<Self, Error> {
        Severity::ALL
            .into_iter()
            .find(|v| v.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| Error::InvalidValue {
                what: "severity",
                value: s.to_owned(),
                expected: "one of info, warning, critical",
            })
    }
}

/// The algorithm of a model: `als` or `bpr`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelType {
    /// Alternating least squares.
    Als,
    /// Bayesian personalised ranking.
    Bpr,
}

impl ModelType {
    /// `als` or `bpr`.
    pub fn as_str(self) -> &'static str {
        match self {
            ModelType::Als => "als",
            ModelType::Bpr => "bpr",
        }
    }

    /// `ALS` or `BPR` (log lines).
    pub fn upper(self) -> &'static str {
        match self {
            ModelType::Als => "ALS",
            ModelType::Bpr => "BPR",
        }
    }

    /// Both types, in training order.
    pub fn all() -> [ModelType; 2] {
        [ModelType::Als, ModelType::Bpr]
    }

    /// Columns of the factor matrices for `factors` latent factors (BPR keeps a bias
    /// column).
    pub fn columns(self, factors: usize) -> usize {
        match self {
            ModelType::Als => factors,
            ModelType::Bpr => factors + 1,
        }
    }
}

impl fmt::Display for ModelType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl FromStr for ModelType {
    type Err = Error;
    /// Case-insensitive, surrounding spaces ignored.
    fn from_str(s: &str) -> Result<Self, Error> {
        match s.trim().to_ascii_lowercase().as_str() {
            "als" => Ok(ModelType::Als),
            "bpr" => Ok(ModelType::Bpr),
            _ => Err(Error::InvalidValue {
                what: "model type",
                value: s.to_owned(),
                expected: "als or bpr",
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_case_insensitively_serialize_lowercase_and_reject_unknowns() {
        assert_eq!("CRITICAL".parse::<Severity>().unwrap(), Severity::Critical);
        assert_eq!(" Bpr ".parse::<ModelType>().unwrap(), ModelType::Bpr);
        let e = "urgent".parse::<Severity>().unwrap_err().to_string();
        assert!(
            e.contains("\"urgent\"") && e.contains("info, warning, critical"),
            "{e}"
        );
        assert!("svd".parse::<ModelType>().is_err());
        assert_eq!(
            serde_json::to_string(&Severity::Warning).unwrap(),
            "\"warning\""
        );
        assert_eq!(serde_json::to_string(&ModelType::Als).unwrap(), "\"als\"");
        assert_eq!(format!("{:<8}|", ModelType::Als), "als     |");
        assert!(Severity::Info < Severity::Critical);
    }
}
