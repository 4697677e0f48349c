//! `config/alerts_config.yaml`: rules, channels and notification policy.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Component, Path, PathBuf};

use lettre::message::Mailbox;
use recops_core::{Home, Validate};
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::model::{Channel, Comparison, Secret, Severity, Threshold};

/// The shipped `config/alerts_config.yaml`, used when the home has none.
pub const DEFAULT_ALERTS_CONFIG: &str = include_str!("../../../config/alerts_config.yaml");

/// The Python logging format the spec writes in `logging.format`; the only one
/// supported (lines are `YYYY-MM-DD HH:MM:SS | LEVEL | alerting | message`).
pub const SPEC_LOG_FORMAT: &str = "%(asctime)s | %(levelname)s | %(name)s | %(message)s";

/// `config/alerts_config.yaml`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AlertsConfig {
    /// Alert rules by name. Without this section, the spec's `DEFAULT_ALERTS`
    /// (high_latency, critical_latency, high_error_rate, high_fallback_rate) apply.
    #[serde(default = "default_rules")]
    pub alerts: BTreeMap<String, AlertRule>,
    /// The e-mail channel.
    #[serde(default)]
    pub email: EmailConfig,
    /// The Slack channel.
    #[serde(default)]
    pub slack: SlackConfig,
    /// The log channel (`logs/service/alerts.log`).
    #[serde(default)]
    pub logging: LoggingConfig,
    /// The Alertmanager channel (Prometheus Alertmanager's API v2).
    #[serde(default)]
    pub alertmanager: AlertmanagerConfig,
    /// Repeat, resolve, retry and routing policy (beyond the spec).
    #[serde(default)]
    pub notifications: NotificationSettings,
}

/// One alert rule (`alerts.<name>`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AlertRule {
    /// The metric the rule reads (`avg_latency_ms`). Without it, the spec's
    /// `DEFAULT_ALERTS` mapping applies (`high_latency` and `critical_latency` read
    /// `avg_latency_ms`, `high_error_rate` reads `error_rate`, `high_fallback_rate`
    /// reads `fallback_rate`), else the rule name without `high_` / `critical_`.
    #[serde(default)]
    pub metric: Option<String>,
    /// The value the metric is compared with: a number, or true/false for yes/no
    /// metrics (fires when the metric, non-zero = true, equals it).
    pub threshold: Threshold,
    /// How the metric is compared with a numeric threshold: `>` (default), `>=`,
    /// `<`, `<=`.
    #[serde(default)]
    pub comparison: Option<Comparison>,
    /// `info`, `warning` or `critical`.
    pub severity: Severity,
    /// Channels notified (`[log, email, slack]`); default:
    /// `notifications.severity_channels` of the severity.
    #[serde(default)]
    pub channels: Option<Vec<Channel>>,
    /// Consecutive breaching evaluations before the alert fires (default 1).
    #[serde(default = "one")]
    pub for_evaluations: u32,
    /// Quiet period between repeats of this alert, hours; default
    /// `notifications.repeat_interval_hours`.
    #[serde(default)]
    pub repeat_interval_hours: Option<f64>,
    /// What the alert means or what to do; included in e-mail and Slack messages.
    #[serde(default)]
    pub description: Option<String>,
}

impl AlertRule {
    /// The comparison in force (`>` when not configured).
    pub fn comparison(&self) -> Comparison {
        self.comparison.unwrap_or_default()
    }
}

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    /// Plain connection upgraded with STARTTLS, which is required (the spec's
    /// `server.starttls()`; usually port 587).
    #[default]
    Starttls,
    /// TLS from the first byte (usually port 465).
    Tls,
    /// No encryption: only for a relay on this machine (`localhost`, `127.0.0.1`).
    None,
}

/// `email:` section.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    /// Whether the channel is used (default true). Enabled but without server, sender
    /// or recipients it is "not configured" and skipped with a log line.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// SMTP host name (`${SMTP_SERVER}`).
    #[serde(default)]
    pub smtp_server: String,
    /// SMTP port (default 587).
    #[serde(default = "default_smtp_port")]
    pub smtp_port: u16,
    /// `starttls` (default), `tls` or `none`.
    #[serde(default)]
    pub security: SmtpSecurity,
    /// From address, also the login name unless `username` is set.
    #[serde(default)]
    pub sender: String,
    /// SMTP login name; empty means `sender`.
    #[serde(default)]
    pub username: String,
    /// SMTP password (`${ALERT_EMAIL_PASSWORD}`); empty means no login. Never logged.
    #[serde(default)]
    pub password: Secret,
    /// Who receives the alerts.
    #[serde(default)]
    pub recipients: Vec<String>,
    /// Connection and command timeout, seconds (default 30).
    #[serde(default = "default_smtp_timeout")]
    pub timeout_secs: f64,
    /// Extra CA certificate (PEM file, relative to the home or absolute) trusted for
    /// the server's TLS certificate, for a relay with a private CA.
    #[serde(default)]
    pub ca_cert_path: Option<PathBuf>,
}

impl Default for EmailConfig {
    fn default() -> Self {
        EmailConfig {
            enabled: true,
            smtp_server: String::new(),
            smtp_port: default_smtp_port(),
            security: SmtpSecurity::default(),
            sender: String::new(),
            username: String::new(),
            password: Secret::default(),
            recipients: Vec::new(),
            timeout_secs: default_smtp_timeout(),
            ca_cert_path: None,
        }
    }
}

impl EmailConfig {
    /// Why the channel cannot send (`None` when it can), e.g. "email.smtp_server and
    /// email.sender are empty (set SMTP_SERVER, ALERT_EMAIL_SENDER)".
    pub fn not_configured_reason(&self) -> Option<String> {
        let mut missing = Vec::new();
        let mut vars = Vec::new();
        if self.smtp_server.trim().is_empty() {
            missing.push("email.smtp_server");
            vars.push("SMTP_SERVER");
        }
        if self.sender.trim().is_empty() {
            missing.push("email.sender");
            vars.push("ALERT_EMAIL_SENDER");
        }
        if self.recipients.is_empty() {
            missing.push("email.recipients");
        }
        if missing.is_empty() {
            return None;
        }
        let verb = if missing.len() == 1 { "is" } else { "are" };
        let mut reason = format!("{} {verb} empty", join_and(&missing));
        if !vars.is_empty() {
            reason.push_str(&format!(" (set {})", vars.join(", ")));
        }
        Some(reason)
    }

    /// The login name: `username`, else `sender`.
    pub fn login(&self) -> &str {
        if self.username.trim().is_empty() {
            self.sender.trim()
        } else {
            self.username.trim()
        }
    }
}

/// `slack:` section.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SlackConfig {
    /// Whether the channel is used (default true). Enabled without a webhook URL it is
    /// "not configured" and skipped with a log line.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Incoming-webhook URL (`${SLACK_WEBHOOK_URL}`). A secret: never logged.
    #[serde(default)]
    pub webhook_url: Secret,
    /// Slack channel named in the payload (default `#alerts`, as the spec's code).
    #[serde(default = "default_slack_channel")]
    pub channel: String,
    /// Request timeout, seconds (default 10, as the spec).
    #[serde(default = "default_slack_timeout")]
    pub timeout_secs: f64,
}

impl Default for SlackConfig {
    fn default() -> Self {
        SlackConfig {
            enabled: true,
            webhook_url: Secret::default(),
            channel: default_slack_channel(),
            timeout_secs: default_slack_timeout(),
        }
    }
}

/// `alertmanager:` section: a Prometheus Alertmanager receiving recops alerts.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AlertmanagerConfig {
    /// Whether the channel is used (default true). An empty `url` turns it off.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Base URL of the Alertmanager (`${ALERTMANAGER_URL:-}`, e.g.
    /// `http://127.0.0.1:9093`); alerts go to `<url>/api/v2/alerts`. Empty = off.
    /// User info in the URL (basic auth) is never shown in messages.
    #[serde(default)]
    pub url: String,
    /// Send every alert to the Alertmanager, whatever the rule's or severity's
    /// channel list says (default true): the Alertmanager routes and silences with
    /// its own configuration. When false, only alerts listing `alertmanager` go there.
    #[serde(default = "yes")]
    pub all_alerts: bool,
    /// The `instance` label; default: this machine's host name.
    #[serde(default)]
    pub instance: String,
    /// Extra labels put on every alert (`team: ml`).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// The dashboard's URL (`${RECOPS_DASHBOARD_URL:-}`); alerts link to its
    /// `/alerts` page as `generatorURL`. Empty: no link.
    #[serde(default)]
    pub dashboard_url: String,
    /// Request timeout, seconds (default 10, as Slack).
    #[serde(default = "default_slack_timeout")]
    pub timeout_secs: f64,
}

impl Default for AlertmanagerConfig {
    fn default() -> Self {
        AlertmanagerConfig {
            enabled: true,
            url: String::new(),
            all_alerts: true,
            instance: String::new(),
            labels: BTreeMap::new(),
            dashboard_url: String::new(),
            timeout_secs: default_slack_timeout(),
        }
    }
}

impl AlertmanagerConfig {
    /// True when alerts can be posted (enabled with a URL).
    pub fn is_active(&self) -> bool {
        self.enabled && !self.url.trim().is_empty()
    }
}

/// `logging:` section.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LoggingConfig {
    /// Whether alerts are written to the log file (default true).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// The log file, relative to the home (default `logs/service/alerts.log`).
    #[serde(default = "default_log_path")]
    pub path: PathBuf,
    /// The spec's Python format string; only [`SPEC_LOG_FORMAT`] is supported.
    #[serde(default = "default_log_format")]
    pub format: String,
    /// Rotated daily files kept (default 14).
    #[serde(default = "default_max_files")]
    pub max_files: usize,
}

impl Default for LoggingConfig {
    fn default() -> Self {
        LoggingConfig {
            enabled: true,
            path: default_log_path(),
            format: default_log_format(),
            max_files: default_max_files(),
        }
    }
}

/// `notifications:` section: what on-call people rely on beyond the spec.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NotificationSettings {
    /// A firing alert is notified again only after this many hours (default 4).
    #[serde(default = "default_repeat_hours")]
    pub repeat_interval_hours: f64,
    /// Notify when a notified alert clears (default true).
    #[serde(default = "yes")]
    pub send_resolved: bool,
    /// Tries per e-mail or Slack delivery (default 3).
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// Wait before the second try, seconds; doubled for each later try (default 2).
    #[serde(default = "default_initial_backoff")]
    pub initial_backoff_secs: f64,
    /// Longest wait between tries, seconds (default 30).
    #[serde(default = "default_max_backoff")]
    pub max_backoff_secs: f64,
    /// Channels by severity, for alerts sent without a channel list and rules
    /// without `channels` (default info: [log], warning: [log, email],
    /// critical: [log, email, slack]).
    #[serde(default)]
    pub severity_channels: SeverityChannels,
}

impl Default for NotificationSettings {
    fn default() -> Self {
        NotificationSettings {
            repeat_interval_hours: default_repeat_hours(),
            send_resolved: true,
            max_attempts: default_max_attempts(),
            initial_backoff_secs: default_initial_backoff(),
            max_backoff_secs: default_max_backoff(),
            severity_channels: SeverityChannels::default(),
        }
    }
}

/// `notifications.severity_channels`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SeverityChannels {
    /// Channels of `info` alerts (default `[log]`).
    #[serde(default = "info_channels")]
    pub info: Vec<Channel>,
    /// Channels of `warning` alerts (default `[log, email]`).
    #[serde(default = "warning_channels")]
    pub warning: Vec<Channel>,
    /// Channels of `critical` alerts (default `[log, email, slack]`).
    #[serde(default = "critical_channels")]
    pub critical: Vec<Channel>,
}

impl Default for SeverityChannels {
    fn default() -> Self {
        SeverityChannels {
            info: info_channels(),
            warning: warning_channels(),
            critical: critical_channels(),
        }
    }
}

impl SeverityChannels {
    /// The channels of `severity`.
    pub fn get(&self, severity: Severity) -> &[Channel] {
        match severity {
            Severity::Info => &self.info,
            Severity::Warning => &self.warning,
            Severity::Critical => &self.critical,
        }
    }
}

fn yes() -> bool {
    true
}
fn one() -> u32 {
    1
}
fn default_smtp_port() -> u16 {
    587
}
fn default_smtp_timeout() -> f64 {
    30.0
}
fn default_slack_channel() -> String {
    "#alerts".to_owned()
}
fn default_slack_timeout() -> f64 {
    10.0
}
fn default_log_path() -> PathBuf {
    PathBuf::from("logs/service/alerts.log")
}
fn default_log_format() -> String {
    SPEC_LOG_FORMAT.to_owned()
}
fn default_max_files() -> usize {
    14
}
fn default_repeat_hours() -> f64 {
    4.0
}
fn default_max_attempts() -> u32 {
    3
}
fn default_initial_backoff() -> f64 {
    2.0
}
fn default_max_backoff() -> f64 {
    30.0
}
fn info_channels() -> Vec<Channel> {
    vec![Channel::Log]
}
fn warning_channels() -> Vec<Channel> {
    vec![Channel::Log, Channel::Email]
}
fn critical_channels() -> Vec<Channel> {
    vec![Channel::Log, Channel::Email, Channel::Slack]
}

/// The spec's `DEFAULT_ALERTS`: rule name, metric, threshold, severity.
pub const DEFAULT_ALERTS: [(&str, &str, f64, Severity); 4] = [
    ("high_latency", "avg_latency_ms", 200.0, Severity::Warning),
    (
        "critical_latency",
        "avg_latency_ms",
        500.0,
        Severity::Critical,
    ),
    ("high_error_rate", "error_rate", 0.05, Severity::Critical),
    (
        "high_fallback_rate",
        "fallback_rate",
        0.3,
        Severity::Warning,
    ),
];

fn default_rules() -> BTreeMap<String, AlertRule> {
    DEFAULT_ALERTS
        .iter()
        .map(|(name, metric, threshold, severity)| {
            (
                (*name).to_owned(),
                AlertRule {
                    metric: Some((*metric).to_owned()),
                    threshold: Threshold::Number(*threshold),
                    comparison: None,
                    severity: *severity,
                    channels: None,
                    for_evaluations: 1,
                    repeat_interval_hours: None,
                    description: None,
                },
            )
        })
        .collect()
}

/// The metric a rule named `alert_name` reads when it has no `metric`: the spec's
/// `DEFAULT_ALERTS` mapping, else the name without its `high_` / `critical_` parts
/// (the spec's `check_alert_conditions` rule).
pub fn default_metric_for(alert_name: &str) -> String {
    DEFAULT_ALERTS
        .iter()
        .find(|(name, ..)| *name == alert_name)
        .map(|(_, metric, ..)| (*metric).to_owned())
        .unwrap_or_else(|| alert_name.replace("high_", "").replace("critical_", ""))
}

fn join_and(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// True for an alert or silence name made of lowercase letters, digits and `_`.
pub(crate) fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Labels recops sets itself on Alertmanager alerts.
const RESERVED_LABELS: [&str; 4] = ["alertname", "severity", "instance", "pipeline"];

fn is_loopback_host(host: &str) -> bool {
    let h = host.trim().trim_start_matches('[').trim_end_matches(']');
    h.eq_ignore_ascii_case("localhost")
        || h.parse::<std::net::IpAddr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false)
}

fn positive_secs(p: &mut Vec<(String, String)>, key: &str, v: f64, what: &str) {
    if !(v.is_finite() && v > 0.0) {
        p.push((key.to_owned(), format!("expected {what} > 0, got {v}")));
    }
}

fn check_channel_list(p: &mut Vec<(String, String)>, key: &str, channels: &[Channel]) {
    if channels.is_empty() {
        p.push((
            key.to_owned(),
            "expected at least one of email, slack, log, alertmanager".to_owned(),
        ));
    }
    let mut seen = BTreeSet::new();
    for c in channels {
        if !seen.insert(*c) {
            p.push((key.to_owned(), format!("channel {c} is listed twice")));
        }
    }
}

impl Validate for AlertsConfig {
    fn problems(&self) -> Vec<(String, String)> {
        let mut p = Vec::new();
        for (name, rule) in &self.alerts {
            let key = format!("alerts.{name}");
            if !is_plain_name(name) {
                p.push((
                    key.clone(),
                    "expected a rule name of lowercase letters, digits and '_'".to_owned(),
                ));
            }
            if let Some(metric) = &rule.metric
                && metric.trim().is_empty()
            {
                p.push((format!("{key}.metric"), "expected a metric name".to_owned()));
            }
            match rule.threshold {
                Threshold::Number(t) if !t.is_finite() => p.push((
                    format!("{key}.threshold"),
                    format!("expected a finite number, got {t}"),
                )),
                Threshold::Flag(_) if rule.comparison.is_some() => p.push((
                    format!("{key}.comparison"),
                    "a true/false threshold fires when the metric equals it; remove \
                     `comparison` or use a numeric threshold"
                        .to_owned(),
                )),
                _ => {}
            }
            if rule.for_evaluations == 0 {
                p.push((
                    format!("{key}.for_evaluations"),
                    "expected a number of evaluations >= 1".to_owned(),
                ));
            }
            if let Some(h) = rule.repeat_interval_hours {
                positive_secs(
                    &mut p,
                    &format!("{key}.repeat_interval_hours"),
                    h,
                    "a number of hours",
                );
            }
            if let Some(channels) = &rule.channels {
                check_channel_list(&mut p, &format!("{key}.channels"), channels);
            }
        }

        let e = &self.email;
        if e.smtp_port == 0 {
            p.push(("email.smtp_port".into(), "expected a port 1-65535".into()));
        }
        positive_secs(&mut p, "email.timeout_secs", e.timeout_secs, "seconds");
        if !e.sender.trim().is_empty() && e.sender.trim().parse::<Mailbox>().is_err() {
            p.push((
                "email.sender".into(),
                format!("expected an e-mail address, got {:?}", e.sender),
            ));
        }
        for (i, r) in e.recipients.iter().enumerate() {
            if r.trim().parse::<Mailbox>().is_err() {
                p.push((
                    format!("email.recipients[{i}]"),
                    format!("expected an e-mail address, got {r:?}"),
                ));
            }
        }
        if e.security == SmtpSecurity::None
            && !e.smtp_server.trim().is_empty()
            && !e.password.is_empty()
            && !is_loopback_host(&e.smtp_server)
        {
            p.push((
                "email.security".into(),
                "`none` would send the SMTP password unencrypted to another machine; use \
                 starttls or tls (plain SMTP is only for a relay on localhost)"
                    .into(),
            ));
        }

        let s = &self.slack;
        let url = s.webhook_url.expose().trim();
        if !(url.is_empty() || url.starts_with("https://") || url.starts_with("http://")) {
            p.push((
                "slack.webhook_url".into(),
                "expected an https:// URL (the value is a secret and not shown)".into(),
            ));
        }
        positive_secs(&mut p, "slack.timeout_secs", s.timeout_secs, "seconds");

        let a = &self.alertmanager;
        for (key, url) in [
            ("alertmanager.url", &a.url),
            ("alertmanager.dashboard_url", &a.dashboard_url),
        ] {
            let url = url.trim();
            if !url.is_empty() && !crate::alertmanager::is_http_url(url) {
                p.push((
                    key.into(),
                    format!(
                        "expected an http:// or https:// URL such as http://127.0.0.1:9093, got {:?}",
                        crate::alertmanager::safe_url(url)
                    ),
                ));
            }
        }
        for name in a.labels.keys() {
            if !crate::alertmanager::is_label_name(name) || RESERVED_LABELS.contains(&name.as_str())
            {
                p.push((
                    format!("alertmanager.labels.{name}"),
                    format!(
                        "expected a Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*) other than {}",
                        RESERVED_LABELS.join(", ")
                    ),
                ));
            }
        }
        positive_secs(
            &mut p,
            "alertmanager.timeout_secs",
            a.timeout_secs,
            "seconds",
        );

        let l = &self.logging;
        if l.format != SPEC_LOG_FORMAT {
            p.push((
                "logging.format".into(),
                format!("only the spec's format {SPEC_LOG_FORMAT:?} is supported"),
            ));
        }
        if l.path.as_os_str().is_empty()
            || l.path.is_absolute()
            || l.path.components().any(|c| c == Component::ParentDir)
        {
            p.push((
                "logging.path".into(),
                format!(
                    "expected a path inside the home such as logs/service/alerts.log, got {:?}",
                    l.path.display().to_string()
                ),
            ));
        }
        if l.max_files == 0 {
            p.push(("logging.max_files".into(), "expected at least 1".into()));
        }

        let n = &self.notifications;
        positive_secs(
            &mut p,
            "notifications.repeat_interval_hours",
            n.repeat_interval_hours,
            "a number of hours",
        );
        if !(1..=10).contains(&n.max_attempts) {
            p.push((
                "notifications.max_attempts".into(),
                format!("expected 1 to 10 tries, got {}", n.max_attempts),
            ));
        }
        for (key, v) in [
            ("notifications.initial_backoff_secs", n.initial_backoff_secs),
            ("notifications.max_backoff_secs", n.max_backoff_secs),
        ] {
            if !(v.is_finite() && (0.0..=3600.0).contains(&v)) {
                p.push((key.into(), format!("expected 0 to 3600 seconds, got {v}")));
            }
        }
        if n.initial_backoff_secs > n.max_backoff_secs {
            p.push((
                "notifications.initial_backoff_secs".into(),
                "expected at most notifications.max_backoff_secs".into(),
            ));
        }
        for sev in Severity::ALL {
            check_channel_list(
                &mut p,
                &format!("notifications.severity_channels.{sev}"),
                n.severity_channels.get(sev),
            );
        }
        p
    }
}

impl AlertsConfig {
    /// Loads `config/alerts_config.yaml` of `home` (or the built-in default) with
    /// `${VAR}` substitution from the environment.
    ///
    /// An unset `${VAR}` without a default inside the `email:`, `slack:` or `alertmanager:` section does
    /// not fail the load: that channel is disabled with a warning naming the variable
    /// (the spec's own file writes `"${SMTP_SERVER}"`), so the log channel keeps
    /// working and no alert is lost to a misconfigured channel. Elsewhere it is an
    /// error naming the file, the line and the variable.
    pub fn load(home: &Home) -> Result<Self> {
        let (config, disabled) = Self::load_with_env(home, &recops_core::ProcessEnv)?;
        for d in &disabled {
            tracing::warn!(channel = %d.channel, variable = %d.variable, line = d.line, "{d}");
        }
        Ok(config)
    }

    /// [`AlertsConfig::load`] with variables from `env`; also returns the channels
    /// disabled for an unset variable.
    pub fn load_with_env(
        home: &Home,
        env: &dyn recops_core::EnvSource,
    ) -> Result<(Self, Vec<DisabledChannel>)> {
        let path = home.alerts_config();
        let text = std::fs::read_to_string(&path).unwrap_or_else(|_| DEFAULT_ALERTS_CONFIG.into());
        let mut blanks: HashMap<String, String> = HashMap::new();
        let mut disabled: Vec<DisabledChannel> = Vec::new();
        loop {
            let layered = Layered {
                blanks: &blanks,
                env,
            };
            match recops_core::load_config_with_env::<AlertsConfig>(
                &path,
                DEFAULT_ALERTS_CONFIG,
                &layered,
            ) {
                Ok(mut config) => {
                    for d in &disabled {
                        match d.channel {
                            Channel::Email => config.email.enabled = false,
                            Channel::Slack => config.slack.enabled = false,
                            Channel::Alertmanager => config.alertmanager.enabled = false,
                            Channel::Log => {}
                        }
                    }
                    return Ok((config, disabled));
                }
                Err(recops_core::Error::MissingEnvVar { file, line, var }) => {
                    let channel = match section_of(&text, line) {
                        Some("email") => Channel::Email,
                        Some("slack") => Channel::Slack,
                        Some("alertmanager") => Channel::Alertmanager,
                        _ => {
                            return Err(
                                recops_core::Error::MissingEnvVar { file, line, var }.into()
                            );
                        }
                    };
                    if blanks.insert(var.clone(), String::new()).is_some() {
                        return Err(recops_core::Error::MissingEnvVar { file, line, var }.into());
                    }
                    disabled.push(DisabledChannel {
                        channel,
                        variable: var,
                        line,
                    });
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The fallback when `config/alerts_config.yaml` cannot be used: no rules, e-mail
    /// and Slack off, every severity to the log channel (`logs/service/alerts.log`).
    /// Jobs send through it so that a broken alerts config never loses an alert.
    pub fn log_only() -> Self {
        let log = vec![Channel::Log];
        AlertsConfig {
            alerts: BTreeMap::new(),
            email: EmailConfig {
                enabled: false,
                ..EmailConfig::default()
            },
            slack: SlackConfig {
                enabled: false,
                ..SlackConfig::default()
            },
            alertmanager: AlertmanagerConfig {
                enabled: false,
                ..AlertmanagerConfig::default()
            },
            logging: LoggingConfig::default(),
            notifications: NotificationSettings {
                severity_channels: SeverityChannels {
                    info: log.clone(),
                    warning: log.clone(),
                    critical: log,
                },
                ..NotificationSettings::default()
            },
        }
    }

    /// The metric `rule` (named `name`) reads.
    pub fn metric_of(&self, name: &str, rule: &AlertRule) -> String {
        rule.metric
            .as_deref()
            .map(str::trim)
            .map(str::to_owned)
            .unwrap_or_else(|| default_metric_for(name))
    }

    /// The channels of an alert: those of its rule if it has any, else those of its
    /// severity.
    ///
    /// With an active Alertmanager channel and `alertmanager.all_alerts`, the
    /// Alertmanager is added: it routes and silences by its own configuration.
    pub fn channels_for(&self, alert_name: &str, severity: Severity) -> Vec<Channel> {
        let mut channels = self
            .alerts
            .get(alert_name)
            .and_then(|r| r.channels.clone())
            .unwrap_or_else(|| self.notifications.severity_channels.get(severity).to_vec());
        if self.alertmanager.is_active()
            && self.alertmanager.all_alerts
            && !channels.contains(&Channel::Alertmanager)
        {
            channels.push(Channel::Alertmanager);
        }
        channels
    }

    /// The repeat interval of `alert_name`.
    pub fn repeat_interval(&self, alert_name: &str) -> chrono::Duration {
        let hours = self
            .alerts
            .get(alert_name)
            .and_then(|r| r.repeat_interval_hours)
            .unwrap_or(self.notifications.repeat_interval_hours);
        chrono::Duration::milliseconds((hours * 3_600_000.0).round() as i64)
    }

    /// The log file path inside `home`.
    pub fn log_path(&self, home: &Home) -> PathBuf {
        if self.logging.path == Path::new("logs/service/alerts.log") {
            home.alerts_log()
        } else {
            home.root().join(&self.logging.path)
        }
    }
}

/// A channel turned off at load because a variable it needs is unset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisabledChannel {
    /// `email`, `slack` or `alertmanager`.
    pub channel: Channel,
    /// The unset variable.
    pub variable: String,
    /// Its line in the config file.
    pub line: usize,
}

impl std::fmt::Display for DisabledChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "alerts config: ${{{}}} (line {}) is not set: the {} channel is disabled; set it or write ${{{}:-}} for an empty value",
            self.variable, self.line, self.channel, self.variable
        )
    }
}

/// The environment, with blanks for the variables whose channel is disabled.
struct Layered<'a> {
    blanks: &'a HashMap<String, String>,
    env: &'a dyn recops_core::EnvSource,
}

impl recops_core::EnvSource for Layered<'_> {
    fn var(&self, name: &str) -> Option<String> {
        self.env
            .var(name)
            .or_else(|| self.blanks.get(name).cloned())
    }
}

/// The top-level YAML key whose block holds 1-based `line`.
fn section_of(text: &str, line: usize) -> Option<&str> {
    text.lines()
        .take(line)
        .filter(|l| !l.starts_with([' ', '\t', '#']) && !l.trim().is_empty())
        .filter_map(|l| l.split(':').next())
        .last()
        .map(str::trim)
}

#[cfg(test)]
mod tests {
    use super::*;
    use recops_core::{ConfigFormat, parse_config};

    fn parse(text: &str, env: &[(&str, &str)]) -> recops_core::Result<AlertsConfig> {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        parse_config(
            text,
            Path::new("config/alerts_config.yaml"),
            ConfigFormat::Yaml,
            &env,
        )
    }

    #[test]
    fn shipped_config_loads_without_environment() {
        let cfg = parse(DEFAULT_ALERTS_CONFIG, &[]).unwrap();
        assert_eq!(cfg.alerts.len(), 6);
        let hl = &cfg.alerts["high_latency"];
        assert_eq!(hl.metric.as_deref(), Some("avg_latency_ms"));
        assert_eq!(hl.threshold, Threshold::Number(200.0));
        assert_eq!(hl.severity, Severity::Warning);
        assert_eq!(hl.channels, Some(vec![Channel::Log, Channel::Email]));
        assert_eq!(hl.for_evaluations, 1);
        assert_eq!(cfg.alerts["data_drift"].threshold, Threshold::Flag(true));
        assert_eq!(cfg.email.smtp_port, 587);
        assert_eq!(cfg.email.security, SmtpSecurity::Starttls);
        assert!(cfg.email.password.is_empty());
        assert_eq!(
            cfg.email.not_configured_reason().unwrap(),
            "email.smtp_server and email.sender are empty (set SMTP_SERVER, ALERT_EMAIL_SENDER)"
        );
        assert!(cfg.slack.webhook_url.is_empty());
        assert_eq!(cfg.slack.channel, "#ml-alerts");
        assert_eq!(cfg.slack.timeout_secs, 10.0);
        assert_eq!(cfg.logging.path, Path::new("logs/service/alerts.log"));
        assert_eq!(cfg.notifications.repeat_interval_hours, 4.0);
        assert_eq!(cfg.notifications.max_attempts, 3);
        assert_eq!(
            cfg.repeat_interval("high_latency"),
            chrono::Duration::hours(4)
        );
        // The Alertmanager is off without ALERTMANAGER_URL, and then never routed to.
        assert_eq!(cfg.alertmanager.url, "");
        assert!(cfg.alertmanager.enabled && cfg.alertmanager.all_alerts);
        assert!(!cfg.alertmanager.is_active());
        assert_eq!(
            cfg.channels_for("high_latency", Severity::Warning),
            [Channel::Log, Channel::Email]
        );
    }

    #[test]
    fn alertmanager_url_from_the_environment_routes_every_alert_there() {
        let cfg = parse(
            DEFAULT_ALERTS_CONFIG,
            &[
                ("ALERTMANAGER_URL", "http://127.0.0.1:9093"),
                ("RECOPS_DASHBOARD_URL", "http://127.0.0.1:8050"),
                ("RECOPS_INSTANCE", "shop-1"),
            ],
        )
        .unwrap();
        assert!(cfg.problems().is_empty(), "{:?}", cfg.problems());
        assert_eq!(cfg.alertmanager.url, "http://127.0.0.1:9093");
        assert_eq!(cfg.alertmanager.dashboard_url, "http://127.0.0.1:8050");
        assert_eq!(cfg.alertmanager.instance, "shop-1");
        assert_eq!(
            cfg.channels_for("high_latency", Severity::Warning),
            [Channel::Log, Channel::Email, Channel::Alertmanager]
        );
        assert_eq!(
            cfg.channels_for("pipeline_x_failed", Severity::Info),
            [Channel::Log, Channel::Alertmanager]
        );
        // all_alerts: false routes only the rules that list it.
        let only_listed = AlertsConfig {
            alertmanager: AlertmanagerConfig {
                all_alerts: false,
                ..cfg.alertmanager.clone()
            },
            ..cfg
        };
        assert_eq!(
            only_listed.channels_for("high_latency", Severity::Warning),
            [Channel::Log, Channel::Email]
        );
    }

    #[test]
    fn an_unset_alertmanager_variable_disables_only_that_channel() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::new(dir.path());
        std::fs::create_dir_all(home.alerts_config().parent().unwrap()).unwrap();
        std::fs::write(home.alerts_config(), "alertmanager:\n  url: ${AM_URL}\n").unwrap();
        let env: HashMap<String, String> = HashMap::new();
        let (cfg, disabled) = AlertsConfig::load_with_env(&home, &env).unwrap();
        assert!(!cfg.alertmanager.enabled && cfg.slack.enabled);
        assert_eq!(disabled.len(), 1);
        assert_eq!(disabled[0].channel, Channel::Alertmanager);
        assert_eq!(disabled[0].variable, "AM_URL");
    }

    #[test]
    fn environment_fills_channels_and_secrets_stay_hidden() {
        let cfg = parse(
            DEFAULT_ALERTS_CONFIG,
            &[
                ("SMTP_SERVER", "smtp.example.com"),
                ("SMTP_PORT", "2525"),
                ("ALERT_EMAIL_SENDER", "recops@example.com"),
                ("ALERT_EMAIL_PASSWORD", "s3cr3t-pass"),
                (
                    "SLACK_WEBHOOK_URL",
                    "https://hooks.example.com/T000/B000/XXXX",
                ),
            ],
        )
        .unwrap();
        assert_eq!(cfg.email.smtp_server, "smtp.example.com");
        assert_eq!(cfg.email.smtp_port, 2525);
        assert_eq!(cfg.email.login(), "recops@example.com");
        assert!(cfg.email.not_configured_reason().is_none());
        let debug = format!("{cfg:?}");
        assert!(!debug.contains("s3cr3t-pass"), "{debug}");
        assert!(!debug.contains("XXXX"), "{debug}");
    }

    #[test]
    fn without_alerts_section_the_spec_defaults_apply() {
        let cfg = parse("logging:\n  enabled: true\n", &[]).unwrap();
        assert_eq!(
            cfg.alerts.keys().collect::<Vec<_>>(),
            vec![
                "critical_latency",
                "high_error_rate",
                "high_fallback_rate",
                "high_latency"
            ]
        );
        assert_eq!(cfg.alerts["high_error_rate"].severity, Severity::Critical);
        assert_eq!(
            cfg.channels_for("high_error_rate", Severity::Critical),
            vec![Channel::Log, Channel::Email, Channel::Slack]
        );
        assert_eq!(
            cfg.channels_for("pipeline_x_failed", Severity::Info),
            vec![Channel::Log]
        );
    }

    #[test]
    fn default_metric_mapping_fixes_the_spec_latency_bug() {
        assert_eq!(default_metric_for("high_latency"), "avg_latency_ms");
        assert_eq!(default_metric_for("critical_latency"), "avg_latency_ms");
        assert_eq!(default_metric_for("high_error_rate"), "error_rate");
        assert_eq!(default_metric_for("data_drift"), "data_drift");
        assert_eq!(default_metric_for("high_p95_latency_ms"), "p95_latency_ms");
    }

    fn err(text: &str) -> String {
        parse(text, &[]).unwrap_err().to_string()
    }

    #[test]
    fn unknown_channel_is_rejected_with_file_and_key() {
        let e = err(
            "alerts:\n  high_latency:\n    threshold: 200\n    severity: warning\n    channels: [log, pager]\n",
        );
        assert!(e.contains("config/alerts_config.yaml"), "{e}");
        assert!(e.contains("alerts.high_latency.channels"), "{e}");
        assert!(e.contains("pager"), "{e}");
    }

    #[test]
    fn unknown_severity_is_rejected_with_file_and_key() {
        let e = err("alerts:\n  high_latency:\n    threshold: 200\n    severity: urgent\n");
        assert!(e.contains("alerts.high_latency.severity"), "{e}");
        assert!(e.contains("urgent"), "{e}");
    }

    #[test]
    fn rule_without_threshold_is_rejected_with_file_and_key() {
        let e = err("alerts:\n  high_latency:\n    severity: warning\n");
        assert!(e.contains("config/alerts_config.yaml"), "{e}");
        assert!(e.contains("alerts.high_latency"), "{e}");
        assert!(e.contains("threshold"), "{e}");
    }

    #[test]
    fn every_semantic_problem_is_reported_at_once() {
        let e = err(concat!(
            "alerts:\n",
            "  High-Latency:\n    threshold: 200\n    severity: warning\n",
            "  slow:\n    threshold: 1\n    severity: info\n    for_evaluations: 0\n    channels: [log, log]\n",
            "  drift:\n    threshold: true\n    comparison: '<'\n    severity: warning\n",
            "email:\n  smtp_server: smtp.example.com\n  security: none\n  password: pw123\n  recipients: [not-an-address]\n",
            "slack:\n  webhook_url: ftp://hooks/secret-path\n",
            "alertmanager:\n  url: 'am:9093?token=am-s3cret'\n  dashboard_url: nope\n  labels: {severity: x, bad-name: y}\n  timeout_secs: 0\n",
            "logging:\n  format: '%(message)s'\n  path: ../outside.log\n",
            "notifications:\n  max_attempts: 0\n",
        ));
        for needle in [
            "alerts.High-Latency",
            "alerts.slow.for_evaluations",
            "alerts.slow.channels",
            "alerts.drift.comparison",
            "email.security",
            "email.recipients[0]",
            "slack.webhook_url",
            "alertmanager.url",
            "alertmanager.dashboard_url",
            "alertmanager.labels.severity",
            "alertmanager.labels.bad-name",
            "alertmanager.timeout_secs",
            "logging.format",
            "logging.path",
            "notifications.max_attempts",
        ] {
            assert!(e.contains(needle), "{needle} missing from: {e}");
        }
        assert!(!e.contains("secret-path"), "{e}");
        assert!(!e.contains("pw123"), "{e}");
        assert!(!e.contains("am-s3cret"), "{e}");
    }

    #[test]
    fn plain_smtp_with_a_password_is_allowed_on_localhost_only() {
        let text = "email:\n  smtp_server: 127.0.0.1\n  security: none\n  password: pw\n";
        assert!(parse(text, &[]).is_ok());
        let text = "email:\n  smtp_server: localhost\n  security: none\n  password: pw\n";
        assert!(parse(text, &[]).is_ok());
    }

    /// The spec's alerts_config.yaml verbatim (`"${SMTP_SERVER}"` without default).
    pub(crate) const SPEC_ALERTS_CONFIG: &str = r##"alerts:
  high_latency:
    threshold: 200  # ms
    severity: warning
    channels: [log, email]
  critical_latency:
    threshold: 500  # ms
    severity: critical
    channels: [log, email, slack]
  high_error_rate:
    threshold: 0.05  # 5%
    severity: critical
    channels: [log, email, slack]
  high_fallback_rate:
    threshold: 0.3  # 30%
    severity: warning
    channels: [log, email]
  data_drift:
    threshold: true
    severity: warning
    channels: [log, email]
  model_degradation:
    threshold: 0.1  # 10% drop
    severity: critical
    channels: [log, email, slack]

email:
  enabled: true
  smtp_server: "${SMTP_SERVER}"
  smtp_port: 587
  sender: "${ALERT_EMAIL_SENDER}"
  password: "${ALERT_EMAIL_PASSWORD}"
  recipients:
    - team@example.com
    - oncall@example.com

slack:
  enabled: true
  webhook_url: "${SLACK_WEBHOOK_URL}"
  channel: "#ml-alerts"

logging:
  enabled: true
  path: logs/service/alerts.log
  format: "%(asctime)s | %(levelname)s | %(name)s | %(message)s"
"##;

    #[test]
    fn unset_variables_disable_their_channel_and_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::new(dir.path());
        std::fs::create_dir_all(home.alerts_config().parent().unwrap()).unwrap();
        std::fs::write(home.alerts_config(), SPEC_ALERTS_CONFIG).unwrap();
        let env: HashMap<String, String> = HashMap::new();
        let (cfg, disabled) = AlertsConfig::load_with_env(&home, &env).unwrap();
        assert!(!cfg.email.enabled && !cfg.slack.enabled);
        let vars: Vec<&str> = disabled.iter().map(|d| d.variable.as_str()).collect();
        assert_eq!(
            vars,
            [
                "SMTP_SERVER",
                "ALERT_EMAIL_SENDER",
                "ALERT_EMAIL_PASSWORD",
                "SLACK_WEBHOOK_URL"
            ]
        );
        assert!(
            disabled[0].to_string().contains("${SMTP_SERVER}"),
            "{}",
            disabled[0]
        );
        assert!(
            disabled[0]
                .to_string()
                .contains("email channel is disabled")
        );
        // With the e-mail variables set, only Slack is off.
        let env: HashMap<String, String> = [
            ("SMTP_SERVER", "smtp.example.com"),
            ("ALERT_EMAIL_SENDER", "a@example.com"),
            ("ALERT_EMAIL_PASSWORD", "pw"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let (cfg, disabled) = AlertsConfig::load_with_env(&home, &env).unwrap();
        assert!(cfg.email.enabled && !cfg.slack.enabled);
        assert_eq!(disabled.len(), 1);
        // An unset variable outside a channel section is still an error.
        std::fs::write(
            home.alerts_config(),
            "alerts:\n  high_latency:\n    threshold: ${LAT}\n    severity: warning\n",
        )
        .unwrap();
        let e = AlertsConfig::load_with_env(&home, &HashMap::<String, String>::new())
            .unwrap_err()
            .to_string();
        assert!(e.contains("LAT"), "{e}");
    }

    #[test]
    fn the_spec_alerts_config_without_environment_still_writes_alerts_log() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::new(dir.path());
        std::fs::create_dir_all(home.alerts_config().parent().unwrap()).unwrap();
        std::fs::write(home.alerts_config(), SPEC_ALERTS_CONFIG).unwrap();
        // The variables are absent in CI; when a developer has them set, the channels
        // are enabled and this test has nothing to show.
        if [
            "SMTP_SERVER",
            "ALERT_EMAIL_SENDER",
            "ALERT_EMAIL_PASSWORD",
            "SLACK_WEBHOOK_URL",
        ]
        .iter()
        .any(|v| std::env::var_os(v).is_some())
        {
            return;
        }
        let manager = crate::AlertManager::builder(&home).build().unwrap();
        manager.send_alert("high_latency", "p50 is 900 ms", Severity::Warning, None);
        let log = std::fs::read_to_string(home.alerts_log()).unwrap();
        assert!(log.contains("high_latency: p50 is 900 ms"), "{log}");
    }
}
