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
use crate::state::{AlertState, Observation, Policy, Silence, StateStore, Step, step};
use crate::{email, slack};

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

/// Everything `recops alert list` shows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertOverview {
    /// When the overview was taken.
    pub now: DateTime<Utc>,
    /// Channel readiness: `ready`, `disabled` or `not configured: <why>`.
    pub channels: BTreeMap<Channel, String>,
    /// The configured rules.
    pub rules: Vec<RuleSummary>,
    /// Stored alert states (rules and other alert names that were observed).
    pub states: Vec<AlertState>,
    /// Silences in force.
    pub silences: Vec<Silence>,
    /// Why states and silences are missing, when the state database is unavailable.
    pub state_error: Option<String>,
}

/// One configured rule, as listed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleSummary {
    /// Rule name.
    pub alert_name: String,
    /// `avg_latency_ms > 200`.
    pub condition: String,
    /// Severity.
    pub severity: Severity,
    /// Channels notified.
    pub channels: Vec<Channel>,
    /// Consecutive breaches needed.
    pub for_evaluations: u32,
    /// Repeat interval (`4h`).
    pub repeat_interval: String,
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
        let state = StateStore::open(&self.home.alert_state_db()).map_err(|e| error_chain(&e));
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
    state: std::result::Result<StateStore, String>,
    slack_client: OnceLock<std::result::Result<reqwest::blocking::Client, String>>,
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
        self.send_alert(
            &name,
            &format!("Pipeline: {pipeline_name}\nStatus: {status}\n{message}"),
            severity,
            None,
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
        };
        self.deliver(&notice, channels, None)
    }

    /// The spec's `check_alert_conditions`: every rule whose condition holds for
    /// `metrics`, without state and without sending anything. A rule whose metric is
    /// missing is skipped.
    pub fn check_alert_conditions<M: Metrics + ?Sized>(&self, metrics: &M) -> Vec<TriggeredAlert> {
        check_rules(&self.config, &as_dyn(metrics))
            .iter()
            .filter_map(|c| c.triggered())
            .collect()
    }

    /// Evaluates every rule against `metrics` and notifies as on-call people expect:
    /// after `for_evaluations` consecutive breaches; once, then again only after the
    /// repeat interval while it lasts; a resolved notice when it clears; nothing on
    /// e-mail or Slack while silenced. Rules whose metric is missing keep their state.
    pub fn process<M: Metrics + ?Sized>(&self, metrics: &M) -> Vec<Evaluation> {
        let checks = check_rules(&self.config, &as_dyn(metrics));
        checks
            .into_iter()
            .map(|check| {
                let Some(value) = check.value else {
                    return Evaluation {
                        alert_name: check.alert_name,
                        metric: Some(check.metric),
                        value: None,
                        threshold: Some(check.threshold),
                        severity: check.severity,
                        breached: false,
                        action: Action::NotEvaluated,
                        delivery: None,
                    };
                };
                let description = self
                    .config
                    .alerts
                    .get(&check.alert_name)
                    .and_then(|r| r.description.clone());
                let condition = describe(&check.metric, value, check.threshold, check.comparison);
                let firing_line = format!("{} triggered: {condition}", check.alert_name);
                let resolved_line = match check.threshold {
                    Threshold::Number(t) => format!(
                        "{} resolved: {}={} (threshold {} {t})",
                        check.alert_name,
                        check.metric,
                        round_for_display(value),
                        check.comparison
                    ),
                    Threshold::Flag(_) => format!(
                        "{} resolved: {}={}",
                        check.alert_name,
                        check.metric,
                        value != 0.0
                    ),
                };
                let (action, delivery) = self.advance(Transition {
                    alert_name: &check.alert_name,
                    observation: Observation {
                        breached: check.breached,
                        value: Some(value),
                        severity: check.severity,
                        message: firing_line.clone(),
                    },
                    channels: self.config.channels_for(&check.alert_name, check.severity),
                    firing_line,
                    resolved_line,
                    description,
                });
                Evaluation {
                    alert_name: check.alert_name,
                    metric: Some(check.metric),
                    value: Some(value),
                    threshold: Some(check.threshold),
                    severity: check.severity,
                    breached: check.breached,
                    action,
                    delivery,
                }
            })
            .collect()
    }

    /// Like [`AlertManager::process`] for a condition a job computes itself (service
    /// down, scheduler heartbeat missing): `firing` says whether it holds now;
    /// `message` describes it. Deduplication, repeat, resolve and silences apply;
    /// `for_evaluations`, the repeat interval and channels come from the rule of that
    /// name if there is one, else from the defaults and the severity.
    pub fn observe(
        &self,
        alert_name: &str,
        firing: bool,
        message: &str,
        severity: Severity,
    ) -> Evaluation {
        let name = clean_name(alert_name);
        let message = message.trim_end();
        let firing_line = format!("{name}: {message}");
        let resolved_line = if message.is_empty() || firing {
            format!("{name} resolved")
        } else {
            format!("{name} resolved: {message}")
        };
        let description = self
            .config
            .alerts
            .get(&name)
            .and_then(|r| r.description.clone());
        let (action, delivery) = self.advance(Transition {
            alert_name: &name,
            observation: Observation {
                breached: firing,
                value: None,
                severity,
                message: firing_line.clone(),
            },
            channels: self.config.channels_for(&name, severity),
            firing_line,
            resolved_line,
            description,
        });
        Evaluation {
            alert_name: name,
            metric: None,
            value: None,
            threshold: None,
            severity,
            breached: firing,
            action,
            delivery,
        }
    }

    fn policy_for(&self, alert_name: &str) -> Policy {
        Policy {
            for_evaluations: self
                .config
                .alerts
                .get(alert_name)
                .map_or(1, |r| r.for_evaluations),
            repeat_interval: self.config.repeat_interval(alert_name),
            send_resolved: self.config.notifications.send_resolved,
        }
    }

    fn advance(&self, t: Transition<'_>) -> (Action, Option<SendReport>) {
        let now = self.clock.now();
        let name = t.alert_name;
        let policy = self.policy_for(name);
        let silence = self.active_silence(name, now);
        let outcome = match &self.state {
            Ok(store) => store
                .update(name, |prev| {
                    let previous_notified = prev.as_ref().and_then(|p| p.last_notified_at);
                    let (next, decided) =
                        step(name, prev, &t.observation, now, &policy, silence.is_some());
                    let info = (decided, next.clone(), previous_notified);
                    (next, info)
                })
                .map_err(|e| error_chain(&e)),
            Err(reason) => Err(reason.clone()),
        };
        let (decided, state, previous_notified) = match outcome {
            Ok(o) => o,
            Err(reason) => {
                // Without state, never lose an alert: notify every breach.
                self.log(
                    LogLevel::Error,
                    &format!(
                        "alert state unavailable ({reason}); {name} is sent without deduplication"
                    ),
                );
                if !t.observation.breached {
                    return (Action::Ok, None);
                }
                let notice = self.firing_notice(&t, None, 1, now);
                let report = self.deliver(&notice, &t.channels, silence.as_ref());
                return (Action::Notified { repeat: false }, Some(report));
            }
        };
        match decided {
            Step::Ok => (Action::Ok, None),
            Step::Cleared => (Action::Cleared, None),
            Step::Pending { breaches, needed } => {
                tracing::debug!(alert = name, breaches, needed, "alert pending");
                (Action::Pending { breaches, needed }, None)
            }
            Step::Deduplicated { next_at } => (Action::Deduplicated { next_at }, None),
            Step::Silenced { log } => {
                let (until, reason) = silence
                    .map(|s| (s.until, s.reason))
                    .unwrap_or((now, String::new()));
                if log {
                    self.log(
                        t.observation.severity.log_level(),
                        &format!(
                            "{} (silenced until {}: {reason})",
                            t.firing_line,
                            until.format("%Y-%m-%d %H:%M UTC")
                        ),
                    );
                }
                (Action::Silenced { until, reason }, None)
            }
            Step::Notify { repeat } => {
                let notice =
                    self.firing_notice(&t, state.firing_since, state.notification_count, now);
                let report = self.deliver(&notice, &t.channels, None);
                if !report.any_sent()
                    && let Ok(store) = &self.state
                    && let Err(e) = store.release_claim(name, now, previous_notified)
                {
                    tracing::error!(alert = name, error = %error_chain(&e), "cannot record failed delivery");
                }
                (Action::Notified { repeat }, Some(report))
            }
            Step::Resolved { notify } => {
                let notice = Notice {
                    alert_name: name.to_owned(),
                    severity: t.observation.severity,
                    kind: NoticeKind::Resolved,
                    log_line: t.resolved_line.clone(),
                    text: resolved_text(&t.resolved_line, state.firing_since, now),
                    at: now,
                };
                if notify {
                    let report = self.deliver(&notice, &t.channels, None);
                    (Action::Resolved { notified: true }, Some(report))
                } else {
                    self.log(LogLevel::Info, &notice.log_line);
                    (Action::Resolved { notified: false }, None)
                }
            }
        }
    }

    fn firing_notice(
        &self,
        t: &Transition<'_>,
        firing_since: Option<DateTime<Utc>>,
        count: u32,
        now: DateTime<Utc>,
    ) -> Notice {
        let since = firing_since.unwrap_or(now);
        let repeat = format_duration(self.config.repeat_interval(t.alert_name));
        let mut text = format!(
            "{}\nSeverity: {}\nFiring since: {} ({} ago)\nNotification {count}; repeated every {repeat} while it lasts.",
            t.firing_line,
            t.observation.severity,
            since.format("%Y-%m-%d %H:%M:%S UTC"),
            format_duration(now - since),
        );
        if let Some(d) = &t.description {
            text.push_str(&format!("\n\n{d}"));
        }
        Notice {
            alert_name: t.alert_name.to_owned(),
            severity: t.observation.severity,
            kind: NoticeKind::Alert,
            log_line: t.firing_line.clone(),
            text,
            at: now,
        }
    }

    /// Sets (or replaces) a silence: until `until`, alerts named `matcher` (or
    /// starting with it when it ends in `*`) are not sent by e-mail or Slack; the log
    /// still records them.
    pub fn silence(&self, matcher: &str, until: DateTime<Utc>, reason: &str) -> Result<Silence> {
        let matcher = matcher.trim();
        let plain = matcher.strip_suffix('*').unwrap_or(matcher);
        if !(is_plain_name(plain) || (matcher == "*")) {
            return Err(Error::InvalidInput {
                what: "alert name",
                message: format!(
                    "{matcher:?}: expected an alert name of lowercase letters, digits and '_', \
                     optionally ending in '*' to match a prefix"
                ),
            });
        }
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(Error::InvalidInput {
                what: "reason",
                message: "say why the alert is silenced (--reason)".into(),
            });
        }
        let now = self.clock.now();
        if until <= now {
            return Err(Error::InvalidInput {
                what: "silence end",
                message: format!("{until} is not in the future"),
            });
        }
        let store = self.store()?;
        let silence = Silence {
            matcher: matcher.to_owned(),
            until,
            reason: reason.to_owned(),
            created_at: now,
            created_by: who(),
        };
        store.put_silence(&silence)?;
        self.log(
            LogLevel::Info,
            &format!(
                "Silence set: {matcher} until {} ({reason})",
                until.format("%Y-%m-%d %H:%M UTC")
            ),
        );
        Ok(silence)
    }

    /// [`AlertManager::silence`] for `duration` from now.
    pub fn silence_for(&self, matcher: &str, duration: Duration, reason: &str) -> Result<Silence> {
        self.silence(matcher, self.clock.now() + duration, reason)
    }

    /// Ends the silence of `matcher`; false when there was none.
    pub fn unsilence(&self, matcher: &str) -> Result<bool> {
        let removed = self.store()?.remove_silence(matcher.trim())?;
        if removed {
            self.log(
                LogLevel::Info,
                &format!("Silence removed: {}", matcher.trim()),
            );
        }
        Ok(removed)
    }

    /// Silences in force now.
    pub fn silences(&self) -> Result<Vec<Silence>> {
        let now = self.clock.now();
        Ok(self
            .store()?
            .silences()?
            .into_iter()
            .filter(|s| s.is_active(now))
            .collect())
    }

    /// Every stored alert state.
    pub fn states(&self) -> Result<Vec<AlertState>> {
        self.store()?.states()
    }

    /// Rules, channel readiness, states and silences (what `recops alert list` shows).
    /// A broken state database is reported in `state_error`, not as an error.
    pub fn overview(&self) -> AlertOverview {
        let now = self.clock.now();
        let mut channels = BTreeMap::new();
        let email = &self.config.email;
        channels.insert(
            Channel::Email,
            match (email.enabled, email.not_configured_reason()) {
                (false, _) => "disabled".to_owned(),
                (true, Some(r)) => format!("not configured: {r}"),
                (true, None) => format!(
                    "ready ({}:{} {}, to {})",
                    email.smtp_server.trim(),
                    email.smtp_port,
                    match email.security {
                        crate::config::SmtpSecurity::Starttls => "starttls",
                        crate::config::SmtpSecurity::Tls => "tls",
                        crate::config::SmtpSecurity::None => "plain",
                    },
                    email.recipients.join(", ")
                ),
            },
        );
        let slack = &self.config.slack;
        channels.insert(
            Channel::Slack,
            match (slack.enabled, slack.webhook_url.is_empty()) {
                (false, _) => "disabled".to_owned(),
                (true, true) => {
                    "not configured: slack.webhook_url is empty (set SLACK_WEBHOOK_URL)".to_owned()
                }
                (true, false) => format!("ready ({})", slack.channel),
            },
        );
        channels.insert(
            Channel::Log,
            if self.config.logging.enabled {
                format!("ready ({})", self.log_path.display())
            } else {
                "disabled".to_owned()
            },
        );
        let rules = self
            .config
            .alerts
            .iter()
            .map(|(name, rule)| {
                let metric = self.config.metric_of(name, rule);
                RuleSummary {
                    alert_name: name.clone(),
                    condition: match rule.threshold {
                        Threshold::Number(t) => format!("{metric} {} {t}", rule.comparison()),
                        Threshold::Flag(b) => format!("{metric} is {b}"),
                    },
                    severity: rule.severity,
                    channels: self.config.channels_for(name, rule.severity),
                    for_evaluations: rule.for_evaluations,
                    repeat_interval: format_duration(self.config.repeat_interval(name)),
                }
            })
            .collect();
        let (states, silences, state_error) = match (self.states(), self.silences()) {
            (Ok(st), Ok(si)) => (st, si, None),
            (Err(e), _) | (_, Err(e)) => (Vec::new(), Vec::new(), Some(error_chain(&e))),
        };
        AlertOverview {
            now,
            channels,
            rules,
            states,
            silences,
            state_error,
        }
    }

    fn store(&self) -> Result<&StateStore> {
        self.state
            .as_ref()
            .map_err(|reason| Error::StateUnavailable {
                reason: reason.clone(),
            })
    }

    fn active_silence(&self, name: &str, now: DateTime<Utc>) -> Option<Silence> {
        let store = self.state.as_ref().ok()?;
        match store.active_silence(name, now) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(alert = name, error = %error_chain(&e), "cannot read silences; sending anyway");
                None
            }
        }
    }

    /// Writes one line to `alerts.log` (when logging is enabled).
    fn log(&self, level: LogLevel, message: &str) -> Option<std::result::Result<(), String>> {
        if !self.config.logging.enabled {
            return None;
        }
        let mut guard = self.log.lock().unwrap_or_else(PoisonError::into_inner);
        if guard.is_none() {
            match LogFile::open(
                self.log_path.clone(),
                // Lines are stamped and files rotated by the wall clock: the file is
                // real, whatever clock decides alert timing.
                LogFileOptions {
                    max_files: self.config.logging.max_files,
                    clock: SystemClock::shared(),
                },
            ) {
                Ok(f) => *guard = Some(f),
                Err(e) => {
                    tracing::error!(error = %error_chain(&e), line = message, "cannot open the alerts log");
                    return Some(Err(error_chain(&e)));
                }
            }
        }
        let file = guard.as_ref()?;
        Some(
            file.write_line(level, Some(LOGGER_NAME), message)
                .map_err(|e| {
                    tracing::error!(path = %self.log_path.display(), error = %error_chain(&e), line = message, "cannot write the alerts log");
                    format!("cannot write {}: {}", self.log_path.display(), error_chain(&e))
                }),
        )
    }

    /// Sends `notice` on `channels`: the log line first (always, as the record), then
    /// each other channel, then a log line per delivery outcome.
    fn deliver(
        &self,
        notice: &Notice,
        channels: &[Channel],
        silence: Option<&Silence>,
    ) -> SendReport {
        let mut wanted: Vec<Channel> = Vec::new();
        for c in channels {
            if !wanted.contains(c) {
                wanted.push(*c);
            }
        }
        let level = match notice.kind {
            NoticeKind::Alert => notice.severity.log_level(),
            NoticeKind::Resolved => LogLevel::Info,
        };
        let line = match silence {
            Some(s) => format!(
                "{} (silenced until {}: {})",
                notice.log_line,
                s.until.format("%Y-%m-%d %H:%M UTC"),
                s.reason
            ),
            None => notice.log_line.clone(),
        };
        let logged = self.log(level, &line);
        let mut out = BTreeMap::new();
        if wanted.contains(&Channel::Log) {
            out.insert(
                Channel::Log,
                match logged {
                    None => Delivery::Disabled,
                    Some(Ok(())) => Delivery::Sent {
                        attempts: 1,
                        to: self.log_path.display().to_string(),
                    },
                    Some(Err(reason)) => Delivery::Failed {
                        attempts: 1,
                        reason,
                    },
                },
            );
        }
        for channel in wanted.iter().filter(|c| **c != Channel::Log) {
            let delivery = match silence {
                Some(s) => Delivery::Silenced {
                    until: s.until,
                    reason: s.reason.clone(),
                },
                None => match channel {
                    Channel::Email => email::send(
                        &self.config.email,
                        &self.home,
                        notice,
                        &self.policy,
                        self.sleeper.as_ref(),
                    ),
                    Channel::Slack => {
                        let client = self
                            .slack_client
                            .get_or_init(|| slack::build_client(&self.config.slack));
                        slack::send(
                            &self.config.slack,
                            client.as_ref(),
                            notice,
                            &self.policy,
                            self.sleeper.as_ref(),
                        )
                    }
                    Channel::Log => continue,
                },
            };
            self.log_delivery(*channel, &notice.alert_name, &delivery);
            out.insert(*channel, delivery);
        }
        SendReport {
            alert_name: notice.alert_name.clone(),
            severity: notice.severity,
            channels: out,
        }
    }

    fn log_delivery(&self, channel: Channel, alert: &str, d: &Delivery) {
        let what = match channel {
            Channel::Email => "Email",
            Channel::Slack => "Slack",
            Channel::Log => return,
        };
        let tries = |n: u32| {
            if n > 1 {
                format!(" (after {n} tries)")
            } else {
                String::new()
            }
        };
        match d {
            Delivery::Sent { attempts, to } => {
                let line = match channel {
                    Channel::Email => format!("Email sent to {to}{}", tries(*attempts)),
                    _ => format!("Slack notification sent{}", tries(*attempts)),
                };
                tracing::debug!(alert, "{line}");
                self.log(LogLevel::Info, &line);
            }
            Delivery::Failed { attempts, reason } => {
                tracing::warn!(alert, attempts, "{what} notification failed: {reason}");
                self.log(
                    LogLevel::Error,
                    &format!("{what} failed for {alert}{}: {reason}", tries(*attempts)),
                );
            }
            Delivery::NotConfigured { reason } => {
                tracing::debug!(alert, "{what} not configured: {reason}");
                self.log(
                    LogLevel::Warning,
                    &format!("{what} not configured: {reason}; {alert} not sent by {channel}"),
                );
            }
            Delivery::Disabled | Delivery::Silenced { .. } => {}
        }
    }
}

/// What [`AlertManager::advance`] needs to know about one condition.
struct Transition<'a> {
    alert_name: &'a str,
    observation: Observation,
    channels: Vec<Channel>,
    firing_line: String,
    resolved_line: String,
    description: Option<String>,
}

fn resolved_text(line: &str, since: Option<DateTime<Utc>>, now: DateTime<Utc>) -> String {
    match since {
        Some(since) => format!(
            "{line}\nFired from {} to {} ({}).",
            since.format("%Y-%m-%d %H:%M:%S UTC"),
            now.format("%Y-%m-%d %H:%M:%S UTC"),
            format_duration(now - since)
        ),
        None => line.to_owned(),
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
struct DynMetrics<'a, M: ?Sized>(&'a M);

impl<M: Metrics + ?Sized> Metrics for DynMetrics<'_, M> {
    fn metric(&self, name: &str) -> Option<f64> {
        self.0.metric(name)
    }
}

fn as_dyn<M: Metrics + ?Sized>(m: &M) -> DynMetrics<'_, M> {
    DynMetrics(m)
}

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

fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|i| {
            rows.iter()
                .map(|r| r.get(i).map_or(0, |c| c.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::from(" ");
        for (i, cell) in row.iter().enumerate() {
            line.push(' ');
            line.push_str(cell);
            if i + 1 < row.len() {
                let pad = widths[i].saturating_sub(cell.chars().count()) + 1;
                line.push_str(&" ".repeat(pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn when(t: Option<DateTime<Utc>>) -> String {
    t.map_or_else(
        || "-".to_owned(),
        |t| t.format("%Y-%m-%d %H:%M UTC").to_string(),
    )
}

impl std::fmt::Display for AlertOverview {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "Channels")?;
        for (c, status) in &self.channels {
            writeln!(f, "  {:<6} {status}", c.as_str())?;
        }
        writeln!(f, "\nRules")?;
        let mut rows = vec![
            ["NAME", "CONDITION", "SEVERITY", "CHANNELS", "FOR", "REPEAT"]
                .map(String::from)
                .to_vec(),
        ];
        for r in &self.rules {
            rows.push(vec![
                r.alert_name.clone(),
                r.condition.clone(),
                r.severity.to_string(),
                r.channels
                    .iter()
                    .map(|c| c.as_str())
                    .collect::<Vec<_>>()
                    .join(","),
                r.for_evaluations.to_string(),
                r.repeat_interval.clone(),
            ]);
        }
        f.write_str(&table(&rows))?;
        writeln!(f, "\nState")?;
        if let Some(e) = &self.state_error {
            writeln!(f, "  unavailable: {e}")?;
        } else if self.states.is_empty() {
            writeln!(f, "  no alert evaluated yet")?;
        } else {
            let mut rows = vec![
                [
                    "NAME",
                    "STATUS",
                    "FIRING SINCE",
                    "LAST NOTIFIED",
                    "SENT",
                    "LAST VALUE",
                    "RESOLVED",
                ]
                .map(String::from)
                .to_vec(),
            ];
            for s in &self.states {
                let firing = s.status != crate::state::AlertStatus::Ok;
                rows.push(vec![
                    s.alert_name.clone(),
                    s.status.to_string(),
                    if firing {
                        when(s.firing_since)
                    } else {
                        "-".into()
                    },
                    when(s.last_notified_at),
                    s.notification_count.to_string(),
                    s.last_value
                        .map_or_else(|| "-".into(), |v| round_for_display(v).to_string()),
                    when(s.resolved_at),
                ]);
            }
            f.write_str(&table(&rows))?;
        }
        writeln!(f, "\nSilences")?;
        if self.state_error.is_none() && self.silences.is_empty() {
            writeln!(f, "  none")?;
        } else if !self.silences.is_empty() {
            let mut rows = vec![
                ["MATCHER", "UNTIL", "REASON", "BY"]
                    .map(String::from)
                    .to_vec(),
            ];
            for s in &self.silences {
                rows.push(vec![
                    s.matcher.clone(),
                    when(Some(s.until)),
                    s.reason.clone(),
                    s.created_by.clone().unwrap_or_else(|| "-".into()),
                ]);
            }
            f.write_str(&table(&rows))?;
        }
        Ok(())
    }
}

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
