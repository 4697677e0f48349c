//! Rule evaluation and alert state: breaches, pending, firing, repeat and resolve.

use super::*;

impl AlertManager {
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
            Ok(store) => {
                let mut decision = None;
                store
                    .update(name, &mut |prev| {
                        let previous_notified = prev.as_ref().and_then(|p| p.last_notified_at);
                        let (next, decided) =
                            step(name, prev, &t.observation, now, &policy, silence.is_some());
                        decision = Some((decided, previous_notified));
                        next
                    })
                    .map_err(|e| error_chain(&e))
                    .and_then(|state| match decision {
                        Some((decided, previous)) => Ok((decided, state, previous)),
                        None => Err("the alert store stored no decision".to_owned()),
                    })
            }
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
                    starts_at: state.firing_since.unwrap_or(now),
                    expires_at: None,
                    pipeline: None,
                };
                if notify {
                    let report = self.deliver(&notice, &t.channels, None);
                    (Action::Resolved { notified: true }, Some(report))
                } else {
                    self.log(LogLevel::Info, &notice.log_line);
                    // The Alertmanager holds the alert as active until told: end it
                    // even when no resolved notification is sent (send_resolved off,
                    // or silenced), as Prometheus does.
                    if state.notification_count > 0 && t.channels.contains(&Channel::Alertmanager) {
                        let d = self.send_alertmanager(&notice);
                        self.log_delivery(Channel::Alertmanager, name, &d);
                    }
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
            starts_at: since,
            // Until the next reminder, with room for one: the Alertmanager keeps the
            // alert active while recops still evaluates it, and lets it lapse if recops
            // stops (a resolve ends it at once).
            expires_at: Some(now + self.config.repeat_interval(t.alert_name) * 2),
            pipeline: None,
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

struct DynMetrics<'a, M: ?Sized>(&'a M);

impl<M: Metrics + ?Sized> Metrics for DynMetrics<'_, M> {
    fn metric(&self, name: &str) -> Option<f64> {
        self.0.metric(name)
    }
}

fn as_dyn<M: Metrics + ?Sized>(m: &M) -> DynMetrics<'_, M> {
    DynMetrics(m)
}
