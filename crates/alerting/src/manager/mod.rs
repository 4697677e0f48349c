//! `AlertManager`: rules, channels, state, silences.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use chrono::{DateTime, Duration, Utc};
use recops_core::{
    Home, LogFile, LogFileOptions, LogLevel, SharedClock, SystemClock, Validate, error_chain,
};
use serde::Serialize;

use crate::config::{AlertsConfig, is_plain_name};
use crate::duration::format_duration;
use crate::error::{Error, Result};
use crate::model::{Channel, Severity, Threshold};
use crate::notice::{Notice, NoticeKind};
use crate::report::{Delivery, SendReport};
use crate::retry::{RetryPolicy, SharedSleeper, ThreadSleeper};
use crate::rules::{Metrics, TriggeredAlert, check_rules, describe, round_for_display};
use crate::state::{AlertState, Observation, Policy, Silence, Step, step};
use crate::store::{AlertStore, open_alert_store};
use crate::{alertmanager, email, slack};

mod delivery;
mod overview;
mod rules;
mod silences;

pub use overview::{AlertOverview, RuleSummary};

/// The logger name of every line in `alerts.log` (the spec's `logging.getLogger('alerting')`).
pub const LOGGER_NAME: &str = "alerting";

/// The name of the alert `recops alert test` sends.
pub const TEST_ALERT_NAME: &str = "recops_test";

/// What an evaluation did with an alert.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// The rule's metric was not in the metrics given (or NaN): nothing changed.
    NotEvaluated,
    /// The condition does not hold, and did not before.
    Ok,
    /// The condition holds, but not yet for `for_evaluations` evaluations in a row.
    Pending {
        /// Breaching evaluations so far.
        breaches: u32,
        /// Needed to fire.
        needed: u32,
    },
    /// Notified (`repeat` when it is a reminder after the repeat interval).
    Notified {
        /// True for a repeat notification of an ongoing alert.
        repeat: bool,
    },
    /// Still firing, already notified less than the repeat interval ago.
    Deduplicated {
        /// When the next reminder is due.
        next_at: DateTime<Utc>,
    },
    /// A notification was due but a silence holds (the log records it).
    Silenced {
        /// End of the silence.
        until: DateTime<Utc>,
        /// Its reason.
        reason: String,
    },
    /// The condition cleared after firing; `notified` when a resolved notification
    /// was sent.
    Resolved {
        /// Whether a resolved notification went out.
        notified: bool,
    },
    /// The condition cleared before it fired.
    Cleared,
}

/// One alert after [`AlertManager::process`] or [`AlertManager::observe`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evaluation {
    /// The alert name.
    pub alert_name: String,
    /// The metric read (`None` for [`AlertManager::observe`]).
    pub metric: Option<String>,
    /// Its value (`None` when missing).
    pub value: Option<f64>,
    /// The rule's threshold (`None` for [`AlertManager::observe`]).
    pub threshold: Option<Threshold>,
    /// The severity.
    pub severity: Severity,
    /// Whether the condition holds.
    pub breached: bool,
    /// What was done.
    #[serde(flatten)]
    pub action: Action,
    /// The notification sent, if one was.
    pub delivery: Option<SendReport>,
}

/// Builds an [`AlertManager`] with a given config, clock or sleeper (tests, jobs
/// that already loaded the config).
#[derive(Debug)]
pub struct AlertManagerBuilder {
    home: Home,
    config: Option<AlertsConfig>,
    clock: SharedClock,
    sleeper: SharedSleeper,
}

impl AlertManagerBuilder {
    /// Uses `config` instead of loading `config/alerts_config.yaml`. It is validated.
    pub fn config(mut self, config: AlertsConfig) -> Self {
        self.config = Some(config);
        self
    }

    /// Reads time from `clock` (default: the system clock).
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// Waits between delivery retries with `sleeper` (default: thread sleep).
    pub fn sleeper(mut self, sleeper: SharedSleeper) -> Self {
        self.sleeper = sleeper;
        self
    }

    /// Loads the config (unless given) and opens the alert state database. A state
    /// database that cannot be opened does not fail the build: alerts are then sent
    /// without deduplication and the problem is logged; [`AlertManager::state_error`]
    /// says why.
    pub fn build(self) -> Result<AlertManager> {
        let config = match self.config {
            Some(c) => {
                let problems = c.problems();
                if !problems.is_empty() {
                    return Err(recops_core::Error::Config {
                        file: "<alerts config given in code>".into(),
                        key: None,
                        message: problems
                            .iter()
                            .map(|(k, m)| format!("`{k}`: {m}"))
                            .collect::<Vec<_>>()
                            .join("; "),
                    }
                    .into());
                }
                c
            }
            None => AlertsConfig::load(&self.home)?,
        };
        let state = open_alert_store(&self.home).map_err(|e| error_chain(&e));
        if let Err(reason) = &state {
            tracing::error!(reason = %reason, "alert state database unavailable; alerts are sent without deduplication");
        }
        Ok(AlertManager {
            policy: RetryPolicy::from_settings(&config.notifications),
            log_path: config.log_path(&self.home),
            home: self.home,
            config,
            clock: self.clock,
            sleeper: self.sleeper,
            log: Mutex::new(None),
            state,
            slack_client: OnceLock::new(),
            alertmanager_client: OnceLock::new(),
        })
    }
}

/// Sends alerts by e-mail, Slack and log; evaluates rules with deduplication,
/// repeat, resolve and silences. See the crate docs.
///
/// Cheap to share between threads (`Send + Sync`); every method takes `&self`.
/// Delivery never panics and never returns an error: failures are reported per
/// channel and logged.
#[derive(Debug)]
pub struct AlertManager {
    home: Home,
    config: AlertsConfig,
    clock: SharedClock,
    sleeper: SharedSleeper,
    policy: RetryPolicy,
    log_path: std::path::PathBuf,
    log: Mutex<Option<LogFile>>,
    state: std::result::Result<Box<dyn AlertStore>, String>,
    slack_client: OnceLock<std::result::Result<reqwest::blocking::Client, String>>,
    alertmanager_client: OnceLock<std::result::Result<reqwest::blocking::Client, String>>,
}

impl AlertManager {
    /// Loads `config/alerts_config.yaml` of `home` (or the built-in default) and
    /// opens `logs/alert_state.db`. Config problems are errors naming the file and key.
    pub fn load(home: &Home) -> Result<Self> {
        Self::builder(home).build()
    }

    /// A builder for a manager over `home`.
    pub fn builder(home: &Home) -> AlertManagerBuilder {
        AlertManagerBuilder {
            home: home.clone(),
            config: None,
            clock: SystemClock::shared(),
            sleeper: Arc::new(ThreadSleeper),
        }
    }

    /// The config in force.
    pub fn config(&self) -> &AlertsConfig {
        &self.config
    }

    /// Why the alert state database is unavailable, if it is.
    pub fn state_error(&self) -> Option<&str> {
        self.state.as_ref().err().map(String::as_str)
    }

    /// Sends an alert now on `channels` (default: the channels of the rule of that
    /// name, else of the severity) and returns what happened on each. Silences
    /// apply (e-mail and Slack are skipped, the log records). No deduplication: use
    /// [`AlertManager::observe`] for a condition checked repeatedly.
    ///
    /// The log file records every alert and every delivery outcome, whether or not
    /// `log` is among the channels.
    pub fn send_alert(
        &self,
        alert_name: &str,
        message: &str,
        severity: Severity,
        channels: Option<&[Channel]>,
    ) -> SendReport {
        self.send_one_off(alert_name, message, severity, channels, None)
    }

    fn send_one_off(
        &self,
        alert_name: &str,
        message: &str,
        severity: Severity,
        channels: Option<&[Channel]>,
        pipeline: Option<&str>,
    ) -> SendReport {
        let now = self.clock.now();
        let name = clean_name(alert_name);
        let channels = channels
            .map(<[Channel]>::to_vec)
            .unwrap_or_else(|| self.config.channels_for(&name, severity));
        let silence = self.active_silence(&name, now);
        let notice = Notice {
            log_line: format!("{name}: {}", message.trim_end()),
            text: message.trim_end().to_owned(),
            alert_name: name,
            severity,
            kind: NoticeKind::Alert,
            at: now,
            starts_at: now,
            expires_at: None,
            pipeline: pipeline.map(str::to_owned),
        };
        self.deliver(&notice, &channels, silence.as_ref())
    }

    /// The spec's `send_pipeline_alert`: alert `pipeline_<pipeline>_<status>` with
    /// the message `Pipeline: ...\nStatus: ...\n<message>`.
    pub fn send_pipeline_alert(
        &self,
        pipeline_name: &str,
        status: &str,
        message: &str,
        severity: Severity,
    ) -> SendReport {
        let name = clean_name(&format!("pipeline_{pipeline_name}_{status}"));
        self.send_one_off(
            &name,
            &format!("Pipeline: {pipeline_name}\nStatus: {status}\n{message}"),
            severity,
            None,
            Some(pipeline_name),
        )
    }

    /// Sends a test alert (`recops_test`, info) on `channels`, ignoring silences.
    pub fn send_test(&self, channels: &[Channel]) -> SendReport {
        let now = self.clock.now();
        let host = hostname::get()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_default();
        let text = format!(
            "Test alert from recops on {host} (home {}). If you read this, the channel works.",
            self.home.root().display()
        );
        let notice = Notice {
            alert_name: TEST_ALERT_NAME.to_owned(),
            severity: Severity::Info,
            kind: NoticeKind::Alert,
            log_line: format!("{TEST_ALERT_NAME}: {text}"),
            text,
            at: now,
            starts_at: now,
            expires_at: None,
            pipeline: None,
        };
        self.deliver(&notice, channels, None)
    }

    fn store(&self) -> Result<&dyn AlertStore> {
        self.state
            .as_deref()
            .map_err(|reason| Error::StateUnavailable {
                reason: reason.clone(),
            })
    }
}

/// A usable alert name: lowercase, anything but letters, digits and `_` becomes `_`.
fn clean_name(name: &str) -> String {
    let cleaned: String = name
        .trim()
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if cleaned.is_empty() {
        "unnamed_alert".to_owned()
    } else {
        cleaned
    }
}

fn who() -> Option<String> {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .ok()?;
    let host = hostname::get().ok()?.to_string_lossy().into_owned();
    Some(format!("{user}@{host}"))
}

/// Adapts any metric source to `&dyn Metrics`.
/// The spec's free `send_pipeline_alert` helper: loads the manager of `home` and
/// sends. Never fails: when the config cannot be loaded, it logs a warning (as the
/// spec's helper does) and returns `None`.
pub fn send_pipeline_alert(
    home: &Home,
    pipeline_name: &str,
    status: &str,
    message: &str,
    severity: Severity,
) -> Option<SendReport> {
    match AlertManager::load(home) {
        Ok(m) => Some(m.send_pipeline_alert(pipeline_name, status, message, severity)),
        Err(e) => {
            tracing::warn!(
                pipeline = pipeline_name,
                status,
                "Failed to send pipeline alert: {}",
                error_chain(&e)
            );
            None
        }
    }
}

#[cfg(test)]
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alert_names_are_cleaned() {
        assert_eq!(
            clean_name("pipeline_Data-Refresh_failed"),
            "pipeline_data_refresh_failed"
        );
        assert_eq!(clean_name("  "), "unnamed_alert");
    }
}
