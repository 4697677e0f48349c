//! `/alerts`: the rules and their state, firing since when, the notification history
//! from `alerts.log`, and the silences in force. States and silences are read
//! through [`recops_alerting::AlertStore`] (the SQLite file read-only, or the
//! PostgreSQL tables without migrating).

use std::io::{Read, Seek, SeekFrom};

use recops_alerting::{AlertStatus, AlertsConfig, Threshold, format_duration};
use serde::Serialize;

use super::{Ctx, When};
use crate::store::{self, Panel};

/// Bytes read from the end of `alerts.log` for the notification history.
const LOG_TAIL_BYTES: u64 = 256 * 1024;
/// Newest log lines shown.
const LOG_LINES: usize = 200;

/// One rule with its state.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct RuleRow {
    pub(crate) alert_name: String,
    pub(crate) condition: String,
    pub(crate) severity: String,
    pub(crate) channels: Vec<String>,
    pub(crate) for_evaluations: u32,
    pub(crate) repeat_interval: String,
    pub(crate) description: Option<String>,
}

/// The stored state of one alert name.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct StateRow {
    pub(crate) alert_name: String,
    pub(crate) status: String,
    pub(crate) severity: String,
    pub(crate) firing_since: Option<When>,
    pub(crate) last_value: Option<f64>,
    pub(crate) last_message: Option<String>,
    pub(crate) last_evaluated_at: Option<When>,
    pub(crate) notification_count: u32,
    pub(crate) resolved_at: Option<When>,
}

/// A silence in force.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct SilenceRow {
    pub(crate) matcher: String,
    pub(crate) until: Option<When>,
    pub(crate) reason: String,
    pub(crate) created_at: Option<When>,
    pub(crate) created_by: Option<String>,
}

/// One line of `alerts.log`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct LogLine {
    pub(crate) time: String,
    pub(crate) level: String,
    pub(crate) message: String,
}

/// Everything `/alerts` shows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct AlertsView {
    pub(crate) rules: Panel<Vec<RuleRow>>,
    pub(crate) states: Panel<Vec<StateRow>>,
    pub(crate) silences: Panel<Vec<SilenceRow>>,
    pub(crate) notifications: Panel<Vec<LogLine>>,
}

/// Reads `/alerts`.
pub(crate) fn load(ctx: &Ctx) -> AlertsView {
    AlertsView {
        rules: rules(ctx),
        states: states(ctx),
        silences: silences(ctx),
        notifications: notifications(ctx),
    }
}

fn rules(ctx: &Ctx) -> Panel<Vec<RuleRow>> {
    let config = match AlertsConfig::load(&ctx.home) {
        Ok(c) => c,
        Err(e) => {
            return Panel::Unavailable {
                message: e.to_string(),
            };
        }
    };
    let rows: Vec<RuleRow> = config
        .alerts
        .iter()
        .map(|(name, rule)| {
            let metric = config.metric_of(name, rule);
            RuleRow {
                alert_name: name.clone(),
                condition: match rule.threshold {
                    Threshold::Number(t) => format!("{metric} {} {t}", rule.comparison()),
                    Threshold::Flag(b) => format!("{metric} is {b}"),
                },
                severity: rule.severity.as_str().to_owned(),
                channels: config
                    .channels_for(name, rule.severity)
                    .iter()
                    .map(|c| c.as_str().to_owned())
                    .collect(),
                for_evaluations: rule.for_evaluations,
                repeat_interval: format_duration(config.repeat_interval(name)),
                description: rule.description.clone(),
            }
        })
        .collect();
    let empty = rows.is_empty();
    Panel::of(
        rows,
        empty,
        "no alert rules: add them to config/alerts_config.yaml",
    )
}

/// Alert states, firing first, then pending, then by name.
pub(crate) fn states(ctx: &Ctx) -> Panel<Vec<StateRow>> {
    let hint = "no alert evaluated yet: health-check and the jobs evaluate the rules";
    store::read_alerts(&ctx.home, hint, Vec::is_empty, |s| {
        let mut states = s.states()?;
        states.sort_by_key(|s| {
            (
                s.status != AlertStatus::Firing,
                s.status != AlertStatus::Pending,
                s.alert_name.clone(),
            )
        });
        Ok(states
            .into_iter()
            .map(|s| StateRow {
                status: s.status.to_string(),
                severity: s.severity.as_str().to_owned(),
                firing_since: s.firing_since.map(|t| ctx.when(t)),
                last_value: s.last_value,
                last_message: s.last_message,
                last_evaluated_at: Some(ctx.when(s.last_evaluated_at)),
                notification_count: s.notification_count,
                resolved_at: s.resolved_at.map(|t| ctx.when(t)),
                alert_name: s.alert_name,
            })
            .collect())
    })
}

/// Silences in force now, ending soonest first.
pub(crate) fn silences(ctx: &Ctx) -> Panel<Vec<SilenceRow>> {
    let hint = "no silences: create one below to hold back e-mail and Slack for an alert";
    let now = ctx.now();
    store::read_alerts(&ctx.home, hint, Vec::is_empty, |s| {
        let mut silences: Vec<_> = s
            .silences()?
            .into_iter()
            .filter(|s| s.is_active(now))
            .collect();
        silences.sort_by_key(|s| s.until);
        Ok(silences
            .into_iter()
            .map(|s| SilenceRow {
                until: Some(ctx.when(s.until)),
                created_at: Some(ctx.when(s.created_at)),
                matcher: s.matcher,
                reason: s.reason,
                created_by: s.created_by,
            })
            .collect())
    })
}

fn notifications(ctx: &Ctx) -> Panel<Vec<LogLine>> {
    let hint = "no notifications yet: alerts are logged to logs/service/alerts.log";
    let path = AlertsConfig::load(&ctx.home)
        .map(|c| c.log_path(&ctx.home))
        .unwrap_or_else(|_| ctx.home.alerts_log());
    match tail(&path) {
        Ok(text) => {
            let lines: Vec<LogLine> = text
                .lines()
                .rev()
                .filter_map(parse_line)
                .take(LOG_LINES)
                .collect();
            let empty = lines.is_empty();
            Panel::of(lines, empty, hint)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Panel::empty(hint),
        Err(e) => Panel::Unavailable {
            message: format!("cannot read {}: {e}", path.display()),
        },
    }
}

fn tail(path: &std::path::Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    let skip = len.saturating_sub(LOG_TAIL_BYTES);
    f.seek(SeekFrom::Start(skip))?;
    let mut bytes = Vec::new();
    f.read_to_end(&mut bytes)?;
    let text = String::from_utf8_lossy(&bytes).into_owned();
    // Drop the partial first line of a cut file.
    Ok(match (skip > 0, text.find('\n')) {
        (true, Some(i)) => text[i + 1..].to_owned(),
        _ => text,
    })
}

/// `2025-01-15 10:30:00 | WARNING | alerting | message`.
fn parse_line(line: &str) -> Option<LogLine> {
    let mut parts = line.splitn(3, " | ");
    let (time, level, rest) = (parts.next()?, parts.next()?, parts.next()?);
    let message = rest.split_once(" | ").map(|(_, m)| m).unwrap_or(rest);
    Some(LogLine {
        time: time.to_owned(),
        level: level.to_owned(),
        message: message.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_lines_parse_with_and_without_a_logger_name() {
        let l =
            parse_line("2025-01-15 10:30:00 | WARNING | alerting | high_latency triggered: a | b")
                .unwrap();
        assert_eq!(
            (l.level.as_str(), l.message.as_str()),
            ("WARNING", "high_latency triggered: a | b")
        );
        assert!(parse_line("garbage").is_none());
    }
}
