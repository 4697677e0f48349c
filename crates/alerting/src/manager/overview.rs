//! `recops alert list`: the overview of channels, rules, states and silences.

use super::*;

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

impl AlertManager {
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
        let am = &self.config.alertmanager;
        channels.insert(
            Channel::Alertmanager,
            match (am.enabled, am.url.trim().is_empty()) {
                (false, _) => "disabled".to_owned(),
                (true, true) => "off: alertmanager.url is empty (set ALERTMANAGER_URL)".to_owned(),
                (true, false) => format!(
                    "ready ({}{}, {})",
                    crate::alertmanager::safe_url(&am.url).trim_end_matches('/'),
                    crate::alertmanager::ALERTS_PATH,
                    if am.all_alerts {
                        "every alert"
                    } else {
                        "rules listing alertmanager"
                    }
                ),
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
