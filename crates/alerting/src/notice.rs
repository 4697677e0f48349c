//! The message sent to every channel, rendered for each.

use chrono::{DateTime, Utc};

use crate::model::Severity;

/// Whether a notice announces a problem or its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NoticeKind {
    /// An alert (first or repeated notification, or an ad-hoc alert).
    Alert,
    /// A notified alert has cleared.
    Resolved,
}

/// One notification, channel-independent.
#[derive(Debug, Clone)]
pub(crate) struct Notice {
    pub(crate) alert_name: String,
    pub(crate) severity: Severity,
    pub(crate) kind: NoticeKind,
    /// The line for `alerts.log` (`high_latency triggered: avg_latency_ms=215.3 > 200`).
    pub(crate) log_line: String,
    /// The human message (may span lines).
    pub(crate) text: String,
    pub(crate) at: DateTime<Utc>,
    /// When the condition started (firing since); `at` for one-off alerts.
    pub(crate) starts_at: DateTime<Utc>,
    /// For a firing alert that recops will resolve (a rule or an observed
    /// condition): when the Alertmanager should consider it over if no reminder or
    /// resolve arrives. `None` for one-off alerts (the Alertmanager's
    /// `resolve_timeout` applies).
    pub(crate) expires_at: Option<DateTime<Utc>>,
    /// The pipeline an alert is about (`send_pipeline_alert`), for the `pipeline` label.
    pub(crate) pipeline: Option<String>,
}

impl Notice {
    /// `WARNING`, or `RESOLVED`.
    pub(crate) fn label(&self) -> &'static str {
        match self.kind {
            NoticeKind::Alert => self.severity.upper(),
            NoticeKind::Resolved => "RESOLVED",
        }
    }

    /// The e-mail subject: `[WARNING] high_latency` (the spec's), `[RESOLVED] ...`.
    pub(crate) fn subject(&self) -> String {
        format!("[{}] {}", self.label(), self.alert_name)
    }

    /// The Slack text: the spec's emoji and upper-case severity, then the alert name
    /// and the message.
    pub(crate) fn slack_text(&self) -> String {
        let emoji = match self.kind {
            NoticeKind::Alert => crate::model::slack_emoji(self.severity),
            NoticeKind::Resolved => ":white_check_mark:",
        };
        format!(
            "{emoji} *{}* {}\n{}",
            self.label(),
            self.alert_name,
            self.text
        )
    }

    fn footer(&self) -> String {
        let host = hostname::get()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_else(|_| "unknown host".to_owned());
        format!(
            "Sent by recops on {host} at {}",
            self.at.format("%Y-%m-%d %H:%M:%S UTC")
        )
    }

    /// The plain-text e-mail body.
    pub(crate) fn email_text(&self) -> String {
        format!("{}\n\n-- \n{}\n", self.text, self.footer())
    }

    /// The HTML e-mail body (the spec sends HTML).
    pub(crate) fn email_html(&self) -> String {
        let color = match (self.kind, self.severity) {
            (NoticeKind::Resolved, _) => "#2e7d32",
            (_, Severity::Critical) => "#c62828",
            (_, Severity::Warning) => "#ef6c00",
            (_, Severity::Info) => "#1565c0",
        };
        format!(
            "<!DOCTYPE html>\n<html><body style=\"font-family: sans-serif\">\n\
             <h2 style=\"color: {color}\">{}</h2>\n\
             <pre style=\"font-size: 14px; white-space: pre-wrap\">{}</pre>\n\
             <p style=\"color: #666666; font-size: 12px\">{}</p>\n</body></html>\n",
            escape_html(&self.subject()),
            escape_html(&self.text),
            escape_html(&self.footer()),
        )
    }
}

/// Escapes text for HTML element content and attribute values.
pub(crate) fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notice(kind: NoticeKind) -> Notice {
        Notice {
            alert_name: "high_error_rate".into(),
            severity: Severity::Critical,
            kind,
            log_line: "x".into(),
            text: "error_rate=0.08 > 0.05 <b>".into(),
            at: Utc::now(),
            starts_at: Utc::now(),
            expires_at: None,
            pipeline: None,
        }
    }

    #[test]
    fn subjects_slack_text_and_html_follow_the_spec() {
        let n = notice(NoticeKind::Alert);
        assert_eq!(n.subject(), "[CRITICAL] high_error_rate");
        assert!(
            n.slack_text()
                .starts_with(":rotating_light: *CRITICAL* high_error_rate\n")
        );
        let html = n.email_html();
        assert!(
            html.contains("error_rate=0.08 &gt; 0.05 &lt;b&gt;"),
            "{html}"
        );
        assert!(!html.contains("<b>"));
        let r = notice(NoticeKind::Resolved);
        assert_eq!(r.subject(), "[RESOLVED] high_error_rate");
        assert!(r.slack_text().starts_with(":white_check_mark: *RESOLVED*"));
    }
}
