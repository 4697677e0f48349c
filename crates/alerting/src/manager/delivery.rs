//! Delivery: e-mail, Slack and the alert log, and the log line of each delivery.

use super::*;

impl AlertManager {
    /// Writes one line to `alerts.log` (when logging is enabled).
    pub(super) fn log(
        &self,
        level: LogLevel,
        message: &str,
    ) -> Option<std::result::Result<(), String>> {
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
    pub(super) fn deliver(
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
                    Channel::Alertmanager => self.send_alertmanager(notice),
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

    /// Posts `notice` to the Alertmanager (client built once).
    pub(super) fn send_alertmanager(&self, notice: &Notice) -> Delivery {
        let cfg = &self.config.alertmanager;
        let client = self
            .alertmanager_client
            .get_or_init(|| alertmanager::build_client(cfg));
        alertmanager::send(
            cfg,
            client.as_ref(),
            notice,
            &self.policy,
            self.sleeper.as_ref(),
        )
    }

    pub(super) fn log_delivery(&self, channel: Channel, alert: &str, d: &Delivery) {
        let what = match channel {
            Channel::Email => "Email",
            Channel::Slack => "Slack",
            Channel::Alertmanager => "Alertmanager",
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
                    Channel::Alertmanager => {
                        format!("Alertmanager notified at {to}{}", tries(*attempts))
                    }
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
