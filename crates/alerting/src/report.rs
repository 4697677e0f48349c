//! What a notification did on each channel.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::model::{Channel, Severity};

/// What happened on one channel.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Delivery {
    /// Delivered.
    Sent {
        /// Tries it took.
        attempts: u32,
        /// To whom (`team@example.com, oncall@example.com`, `#ml-alerts`, the log path).
        to: String,
    },
    /// Every try failed; `reason` is the last error (secrets redacted).
    Failed {
        /// Tries made.
        attempts: u32,
        /// Why the last try failed.
        reason: String,
    },
    /// The channel lacks settings (no SMTP server, no webhook URL).
    NotConfigured {
        /// What is missing.
        reason: String,
    },
    /// The channel is switched off (`enabled: false`).
    Disabled,
    /// The alert is silenced; e-mail and Slack are not sent (the log still records).
    Silenced {
        /// End of the silence.
        until: DateTime<Utc>,
        /// Why it was silenced.
        reason: String,
    },
}

impl Delivery {
    /// True when the notification reached the channel.
    pub fn is_sent(&self) -> bool {
        matches!(self, Delivery::Sent { .. })
    }
}

impl fmt::Display for Delivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Delivery::Sent { attempts: 1, to } => write!(f, "sent to {to}"),
            Delivery::Sent { attempts, to } => write!(f, "sent to {to} after {attempts} tries"),
            Delivery::Failed { attempts, reason } => {
                write!(f, "FAILED after {attempts} tries: {reason}")
            }
            Delivery::NotConfigured { reason } => write!(f, "not configured: {reason}"),
            Delivery::Disabled => f.write_str("disabled (enabled: false)"),
            Delivery::Silenced { until, reason } => write!(
                f,
                "silenced until {} ({reason})",
                until.format("%Y-%m-%d %H:%M UTC")
            ),
        }
    }
}

/// The result of sending one alert: the spec's `{channel: success}` map, with the
/// details of each channel.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SendReport {
    /// The alert name.
    pub alert_name: String,
    /// Its severity.
    pub severity: Severity,
    /// What happened on each channel asked for.
    pub channels: BTreeMap<Channel, Delivery>,
}

impl SendReport {
    /// The spec's return value: `{channel: success_bool}`.
    pub fn success_map(&self) -> BTreeMap<Channel, bool> {
        self.channels
            .iter()
            .map(|(c, d)| (*c, d.is_sent()))
            .collect()
    }

    /// True when every channel asked for was reached.
    pub fn all_sent(&self) -> bool {
        self.channels.values().all(Delivery::is_sent)
    }

    /// True when at least one channel was reached.
    pub fn any_sent(&self) -> bool {
        self.channels.values().any(Delivery::is_sent)
    }

    /// Whether `channel` was reached (`false` when it was not asked for).
    pub fn sent(&self, channel: Channel) -> bool {
        self.channels.get(&channel).is_some_and(Delivery::is_sent)
    }
}

impl fmt::Display for SendReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "alert {} ({}):", self.alert_name, self.severity)?;
        for (channel, delivery) in &self.channels {
            writeln!(f, "  {channel:<6} {delivery}")?;
        }
        Ok(())
    }
}
