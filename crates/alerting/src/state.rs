//! Alert state and silences: the records and the state machine (pure); where they
//! are stored is [`crate::store`].

use std::fmt;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use crate::model::Severity;

/// Where an alert stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertStatus {
    /// The condition does not hold.
    Ok,
    /// The condition holds but for fewer evaluations than `for_evaluations`.
    Pending,
    /// The condition holds: the alert is active.
    Firing,
}

impl AlertStatus {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            AlertStatus::Ok => "ok",
            AlertStatus::Pending => "pending",
            AlertStatus::Firing => "firing",
        }
    }

    pub(crate) fn parse(s: &str) -> AlertStatus {
        match s {
            "firing" => AlertStatus::Firing,
            "pending" => AlertStatus::Pending,
            _ => AlertStatus::Ok,
        }
    }
}

impl fmt::Display for AlertStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The stored state of one alert name.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertState {
    /// The alert name.
    pub alert_name: String,
    /// Ok, pending or firing.
    pub status: AlertStatus,
    /// Severity of the last evaluation.
    pub severity: Severity,
    /// Breaching evaluations in a row.
    pub consecutive_breaches: u32,
    /// When the current (or last) firing began.
    pub firing_since: Option<DateTime<Utc>>,
    /// The metric value of the last evaluation.
    pub last_value: Option<f64>,
    /// The message of the last breach.
    pub last_message: Option<String>,
    /// When the alert was last evaluated.
    pub last_evaluated_at: DateTime<Utc>,
    /// When the current firing was last notified.
    pub last_notified_at: Option<DateTime<Utc>>,
    /// Notifications sent for the current (or last) firing.
    pub notification_count: u32,
    /// When a due notification was last held back by a silence.
    pub last_suppressed_at: Option<DateTime<Utc>>,
    /// When the last firing cleared.
    pub resolved_at: Option<DateTime<Utc>>,
}

impl AlertState {
    fn new(alert_name: &str, severity: Severity, now: DateTime<Utc>) -> Self {
        AlertState {
            alert_name: alert_name.to_owned(),
            status: AlertStatus::Ok,
            severity,
            consecutive_breaches: 0,
            firing_since: None,
            last_value: None,
            last_message: None,
            last_evaluated_at: now,
            last_notified_at: None,
            notification_count: 0,
            last_suppressed_at: None,
            resolved_at: None,
        }
    }
}

/// A silence: notifications of matching alerts go to the log only until `until`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Silence {
    /// An alert name, or a prefix ending in `*` (`pipeline_data_refresh_*`).
    pub matcher: String,
    /// When the silence ends.
    pub until: DateTime<Utc>,
    /// Why (shown in the log line of every silenced notification).
    pub reason: String,
    /// When it was set.
    pub created_at: DateTime<Utc>,
    /// Who set it (user@host), when known.
    pub created_by: Option<String>,
}

impl Silence {
    /// Whether this silence covers `alert_name`.
    pub fn matches(&self, alert_name: &str) -> bool {
        match self.matcher.strip_suffix('*') {
            Some(prefix) => alert_name.starts_with(prefix),
            None => self.matcher == alert_name,
        }
    }

    /// Whether the silence is in force at `now`.
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        self.until > now
    }
}

/// What the rules of a step decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// Condition false and was not active.
    Ok,
    /// Breaching, not yet for enough evaluations.
    Pending { breaches: u32, needed: u32 },
    /// Notify now (first notification of this firing, or a repeat).
    Notify { repeat: bool },
    /// Firing and notified less than the repeat interval ago.
    Deduplicated { next_at: DateTime<Utc> },
    /// A notification was due but the alert is silenced; `log` says whether this
    /// evaluation writes the log line (once per repeat interval).
    Silenced { log: bool },
    /// Was firing, now clear. `notify` when a firing notification had been sent, the
    /// policy sends resolved notices and no silence holds.
    Resolved { notify: bool },
    /// Was pending, now clear (nothing had been sent).
    Cleared,
}

/// The policy a step follows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Policy {
    pub(crate) for_evaluations: u32,
    pub(crate) repeat_interval: Duration,
    pub(crate) send_resolved: bool,
}

/// One evaluation of a condition.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Observation {
    pub(crate) breached: bool,
    pub(crate) value: Option<f64>,
    pub(crate) severity: Severity,
    pub(crate) message: String,
}

/// The state machine: from the previous state and an observation to the next state
/// and the decision. Pure, so its rules are tested without a database.
pub(crate) fn step(
    alert_name: &str,
    prev: Option<AlertState>,
    obs: &Observation,
    now: DateTime<Utc>,
    policy: &Policy,
    silenced: bool,
) -> (AlertState, Step) {
    let mut s = prev.unwrap_or_else(|| AlertState::new(alert_name, obs.severity, now));
    s.last_evaluated_at = now;
    s.severity = obs.severity;
    if obs.value.is_some() {
        s.last_value = obs.value;
    }
    if !obs.breached {
        s.consecutive_breaches = 0;
        let step = match s.status {
            AlertStatus::Firing => {
                s.resolved_at = Some(now);
                Step::Resolved {
                    notify: s.notification_count > 0 && policy.send_resolved && !silenced,
                }
            }
            AlertStatus::Pending => Step::Cleared,
            AlertStatus::Ok => Step::Ok,
        };
        s.status = AlertStatus::Ok;
        return (s, step);
    }

    s.consecutive_breaches = s.consecutive_breaches.saturating_add(1);
    s.last_message = Some(obs.message.clone());
    if s.status != AlertStatus::Firing {
        let needed = policy.for_evaluations.max(1);
        if s.consecutive_breaches < needed {
            s.status = AlertStatus::Pending;
            return (
                s.clone(),
                Step::Pending {
                    breaches: s.consecutive_breaches,
                    needed,
                },
            );
        }
        s.status = AlertStatus::Firing;
        s.firing_since = Some(now);
        s.last_notified_at = None;
        s.notification_count = 0;
        s.last_suppressed_at = None;
        s.resolved_at = None;
    }
    if let Some(last) = s.last_notified_at {
        let next_at = last + policy.repeat_interval;
        if now < next_at {
            return (s, Step::Deduplicated { next_at });
        }
    }
    if silenced {
        let log = s
            .last_suppressed_at
            .is_none_or(|t| now - t >= policy.repeat_interval);
        if log {
            s.last_suppressed_at = Some(now);
        }
        return (s, Step::Silenced { log });
    }
    let repeat = s.notification_count > 0;
    s.last_notified_at = Some(now);
    s.notification_count = s.notification_count.saturating_add(1);
    (s, Step::Notify { repeat })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;

    fn policy(n: u32) -> Policy {
        Policy {
            for_evaluations: n,
            repeat_interval: Duration::hours(4),
            send_resolved: true,
        }
    }

    fn obs(breached: bool) -> Observation {
        Observation {
            breached,
            value: Some(if breached { 215.3 } else { 150.0 }),
            severity: Severity::Warning,
            message: "high_latency triggered".into(),
        }
    }

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 1, 15, 8, 0, 0).unwrap()
    }

    #[test]
    fn fires_once_repeats_after_the_interval_and_resolves() {
        let p = policy(1);
        let (s, st) = step("a", None, &obs(true), t0(), &p, false);
        assert_eq!(st, Step::Notify { repeat: false });
        let (s, st) = step(
            "a",
            Some(s),
            &obs(true),
            t0() + Duration::hours(1),
            &p,
            false,
        );
        assert_eq!(
            st,
            Step::Deduplicated {
                next_at: t0() + Duration::hours(4)
            }
        );
        let (s, st) = step(
            "a",
            Some(s),
            &obs(true),
            t0() + Duration::hours(4),
            &p,
            false,
        );
        assert_eq!(st, Step::Notify { repeat: true });
        assert_eq!(s.notification_count, 2);
        assert_eq!(s.firing_since, Some(t0()));
        let (s, st) = step(
            "a",
            Some(s),
            &obs(false),
            t0() + Duration::hours(5),
            &p,
            false,
        );
        assert_eq!(st, Step::Resolved { notify: true });
        assert_eq!(s.status, AlertStatus::Ok);
        let (_, st) = step(
            "a",
            Some(s),
            &obs(false),
            t0() + Duration::hours(6),
            &p,
            false,
        );
        assert_eq!(st, Step::Ok);
    }

    #[test]
    fn for_evaluations_needs_consecutive_breaches() {
        let p = policy(3);
        let (s, st) = step("a", None, &obs(true), t0(), &p, false);
        assert_eq!(
            st,
            Step::Pending {
                breaches: 1,
                needed: 3
            }
        );
        let (s, st) = step("a", Some(s), &obs(false), t0(), &p, false);
        assert_eq!(st, Step::Cleared);
        let (s, _) = step("a", Some(s), &obs(true), t0(), &p, false);
        let (s, st) = step("a", Some(s), &obs(true), t0(), &p, false);
        assert_eq!(
            st,
            Step::Pending {
                breaches: 2,
                needed: 3
            }
        );
        let (_, st) = step("a", Some(s), &obs(true), t0(), &p, false);
        assert_eq!(st, Step::Notify { repeat: false });
    }

    #[test]
    fn silenced_alerts_log_once_per_interval_and_notify_when_the_silence_ends() {
        let p = policy(1);
        let (s, st) = step("a", None, &obs(true), t0(), &p, true);
        assert_eq!(st, Step::Silenced { log: true });
        let (s, st) = step(
            "a",
            Some(s),
            &obs(true),
            t0() + Duration::hours(1),
            &p,
            true,
        );
        assert_eq!(st, Step::Silenced { log: false });
        let (s, st) = step(
            "a",
            Some(s),
            &obs(true),
            t0() + Duration::hours(2),
            &p,
            false,
        );
        assert_eq!(st, Step::Notify { repeat: false });
        // Cleared while silenced: no resolved notification.
        let (_, st) = step(
            "a",
            Some(s),
            &obs(false),
            t0() + Duration::hours(3),
            &p,
            true,
        );
        assert_eq!(st, Step::Resolved { notify: false });
    }

    #[test]
    fn a_firing_that_was_never_notified_resolves_quietly() {
        let p = policy(1);
        let (s, _) = step("a", None, &obs(true), t0(), &p, true);
        let (_, st) = step("a", Some(s), &obs(false), t0(), &p, false);
        assert_eq!(st, Step::Resolved { notify: false });
    }

    proptest! {
        /// Whatever the sequence of observations, notifications of one firing are at
        /// least a repeat interval apart, and a resolved notice follows only a
        /// notified firing.
        #[test]
        fn notifications_are_spaced_by_the_repeat_interval(
            seq in proptest::collection::vec((any::<bool>(), 0i64..300), 1..60),
            n in 1u32..4,
        ) {
            let p = Policy { for_evaluations: n, repeat_interval: Duration::minutes(240), send_resolved: true };
            let mut state = None;
            let mut now = t0();
            let mut last_notify: Option<DateTime<Utc>> = None;
            let mut notified_this_firing = false;
            for (breached, gap) in seq {
                now += Duration::minutes(gap);
                let (s, st) = step("a", state.take(), &obs(breached), now, &p, false);
                match st {
                    Step::Notify { .. } => {
                        if let Some(prev) = last_notify {
                            prop_assert!(!notified_this_firing || now - prev >= p.repeat_interval);
                        }
                        last_notify = Some(now);
                        notified_this_firing = true;
                    }
                    Step::Resolved { notify } => {
                        prop_assert_eq!(notify, notified_this_firing);
                        notified_this_firing = false;
                    }
                    _ => {}
                }
                prop_assert!(s.consecutive_breaches == 0 || breached);
                state = Some(s);
            }
        }
    }
}
