//! Alert state and silences in `logs/alert_state.db` (SQLite, WAL).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use chrono::{DateTime, Duration, Utc};
use recops_core::{format_timestamp, parse_timestamp};
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::model::Severity;

/// Schema version 1 of `logs/alert_state.db`.
pub const ALERT_STATE_SCHEMA: &str = "\
CREATE TABLE IF NOT EXISTS alert_state (
    alert_name TEXT PRIMARY KEY,
    status TEXT NOT NULL,                -- 'ok', 'pending', 'firing'
    severity TEXT NOT NULL,
    consecutive_breaches INTEGER NOT NULL DEFAULT 0,
    firing_since TEXT,                   -- start of the current (or last) firing
    last_value REAL,
    last_message TEXT,
    last_evaluated_at TEXT NOT NULL,
    last_notified_at TEXT,               -- last notification of the current firing
    notification_count INTEGER NOT NULL DEFAULT 0,  -- notifications of the current firing
    last_suppressed_at TEXT,             -- last time a due notification was silenced
    resolved_at TEXT
);

CREATE TABLE IF NOT EXISTS silences (
    matcher TEXT PRIMARY KEY,            -- an alert name, or a prefix ending in '*'
    until TEXT NOT NULL,
    reason TEXT NOT NULL,
    created_at TEXT NOT NULL,
    created_by TEXT
);
";

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
    fn as_str(self) -> &'static str {
        match self {
            AlertStatus::Ok => "ok",
            AlertStatus::Pending => "pending",
            AlertStatus::Firing => "firing",
        }
    }

    fn parse(s: &str) -> AlertStatus {
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

/// The alert state database.
#[derive(Debug)]
pub(crate) struct StateStore {
    path: PathBuf,
    conn: Mutex<Connection>,
}

impl StateStore {
    /// Opens (creating if needed) the database at `path`.
    pub(crate) fn open(path: &Path) -> Result<Self> {
        let conn = recops_core::sqlite::open(path, &[ALERT_STATE_SCHEMA])?;
        Ok(StateStore {
            path: path.to_path_buf(),
            conn: Mutex::new(conn),
        })
    }

    fn err(&self, e: rusqlite::Error) -> Error {
        sql_err(&self.path, e)
    }

    /// Reads the state of `alert_name`, lets `f` compute the next one, and stores it,
    /// in one immediate transaction (so two processes never both notify).
    pub(crate) fn update<T>(
        &self,
        alert_name: &str,
        f: impl FnOnce(Option<AlertState>) -> (AlertState, T),
    ) -> Result<T> {
        let mut conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| sql_err(&self.path, e))?;
        let prev = tx
            .query_row(
                "SELECT * FROM alert_state WHERE alert_name = ?1",
                [alert_name],
                row_to_state,
            )
            .optional()
            .map_err(|e| sql_err(&self.path, e))?;
        let (next, out) = f(prev);
        tx.execute(
            "INSERT INTO alert_state (alert_name, status, severity, consecutive_breaches,
                firing_since, last_value, last_message, last_evaluated_at, last_notified_at,
                notification_count, last_suppressed_at, resolved_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
             ON CONFLICT(alert_name) DO UPDATE SET status = excluded.status,
                severity = excluded.severity,
                consecutive_breaches = excluded.consecutive_breaches,
                firing_since = excluded.firing_since, last_value = excluded.last_value,
                last_message = excluded.last_message,
                last_evaluated_at = excluded.last_evaluated_at,
                last_notified_at = excluded.last_notified_at,
                notification_count = excluded.notification_count,
                last_suppressed_at = excluded.last_suppressed_at,
                resolved_at = excluded.resolved_at",
            params![
                next.alert_name,
                next.status.as_str(),
                next.severity.as_str(),
                next.consecutive_breaches,
                next.firing_since.map(format_timestamp),
                next.last_value,
                next.last_message,
                format_timestamp(next.last_evaluated_at),
                next.last_notified_at.map(format_timestamp),
                next.notification_count,
                next.last_suppressed_at.map(format_timestamp),
                next.resolved_at.map(format_timestamp),
            ],
        )
        .map_err(|e| sql_err(&self.path, e))?;
        tx.commit().map_err(|e| sql_err(&self.path, e))?;
        Ok(out)
    }

    /// Undoes a notification claimed at `claimed_at` whose delivery reached no channel,
    /// so the next evaluation tries again instead of waiting a repeat interval.
    pub(crate) fn release_claim(
        &self,
        alert_name: &str,
        claimed_at: DateTime<Utc>,
        previous: Option<DateTime<Utc>>,
    ) -> Result<()> {
        let conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        conn.execute(
            "UPDATE alert_state SET last_notified_at = ?3,
                notification_count = MAX(notification_count - 1, 0)
             WHERE alert_name = ?1 AND last_notified_at = ?2",
            params![
                alert_name,
                format_timestamp(claimed_at),
                previous.map(format_timestamp)
            ],
        )
        .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Every stored alert state, by name.
    pub(crate) fn states(&self) -> Result<Vec<AlertState>> {
        let conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        let mut stmt = conn
            .prepare("SELECT * FROM alert_state ORDER BY alert_name")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], row_to_state)
            .map_err(|e| self.err(e))?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.err(e))?;
        Ok(rows)
    }

    /// Stores (or replaces) a silence.
    pub(crate) fn put_silence(&self, s: &Silence) -> Result<()> {
        let conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        conn.execute(
            "INSERT INTO silences (matcher, until, reason, created_at, created_by)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT(matcher) DO UPDATE SET until = excluded.until,
                reason = excluded.reason, created_at = excluded.created_at,
                created_by = excluded.created_by",
            params![
                s.matcher,
                format_timestamp(s.until),
                s.reason,
                format_timestamp(s.created_at),
                s.created_by
            ],
        )
        .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Removes the silence of `matcher`; false when there was none.
    pub(crate) fn remove_silence(&self, matcher: &str) -> Result<bool> {
        let conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        let n = conn
            .execute("DELETE FROM silences WHERE matcher = ?1", [matcher])
            .map_err(|e| self.err(e))?;
        Ok(n > 0)
    }

    /// Every stored silence (active or expired), by matcher.
    pub(crate) fn silences(&self) -> Result<Vec<Silence>> {
        let conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        let mut stmt = conn
            .prepare("SELECT matcher, until, reason, created_at, created_by FROM silences ORDER BY matcher")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok(Silence {
                    matcher: r.get(0)?,
                    until: ts(r, 1)?.unwrap_or(DateTime::<Utc>::MIN_UTC),
                    reason: r.get(2)?,
                    created_at: ts(r, 3)?.unwrap_or(DateTime::<Utc>::MIN_UTC),
                    created_by: r.get(4)?,
                })
            })
            .map_err(|e| self.err(e))?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.err(e))?;
        Ok(rows)
    }

    /// The active silence covering `alert_name` that lasts longest, if any.
    pub(crate) fn active_silence(
        &self,
        alert_name: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Silence>> {
        Ok(self
            .silences()?
            .into_iter()
            .filter(|s| s.is_active(now) && s.matches(alert_name))
            .max_by_key(|s| s.until))
    }
}

fn ts(r: &Row<'_>, idx: usize) -> rusqlite::Result<Option<DateTime<Utc>>> {
    let s: Option<String> = r.get(idx)?;
    Ok(s.as_deref().and_then(parse_timestamp))
}

fn row_to_state(r: &Row<'_>) -> rusqlite::Result<AlertState> {
    let status: String = r.get("status")?;
    let severity: String = r.get("severity")?;
    Ok(AlertState {
        alert_name: r.get("alert_name")?,
        status: AlertStatus::parse(&status),
        severity: severity.parse().unwrap_or(Severity::Warning),
        consecutive_breaches: r.get("consecutive_breaches")?,
        firing_since: ts(r, 4)?,
        last_value: r.get("last_value")?,
        last_message: r.get("last_message")?,
        last_evaluated_at: ts(r, 7)?.unwrap_or(DateTime::<Utc>::MIN_UTC),
        last_notified_at: ts(r, 8)?,
        notification_count: r.get("notification_count")?,
        last_suppressed_at: ts(r, 10)?,
        resolved_at: ts(r, 11)?,
    })
}

/// Maps an SQLite error on the alert state database (see [`recops_core::sqlite::error`]).
fn sql_err(path: &Path, e: rusqlite::Error) -> Error {
    Error::Core(recops_core::sqlite::error(path, e))
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

    #[test]
    fn store_round_trips_state_and_silences() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(&dir.path().join("logs/alert_state.db")).unwrap();
        let p = policy(1);
        let out = store
            .update("high_latency", |prev| {
                step("high_latency", prev, &obs(true), t0(), &p, false)
            })
            .unwrap();
        assert_eq!(out, Step::Notify { repeat: false });
        let states = store.states().unwrap();
        assert_eq!(states.len(), 1);
        assert_eq!(states[0].status, AlertStatus::Firing);
        assert_eq!(states[0].last_notified_at, Some(t0()));
        assert_eq!(states[0].last_value, Some(215.3));
        store.release_claim("high_latency", t0(), None).unwrap();
        let s = &store.states().unwrap()[0];
        assert_eq!((s.last_notified_at, s.notification_count), (None, 0));

        let silence = Silence {
            matcher: "pipeline_*".into(),
            until: t0() + Duration::hours(2),
            reason: "maintenance".into(),
            created_at: t0(),
            created_by: None,
        };
        store.put_silence(&silence).unwrap();
        assert_eq!(
            store
                .active_silence("pipeline_data_refresh_failed", t0())
                .unwrap(),
            Some(silence.clone())
        );
        assert_eq!(store.active_silence("high_latency", t0()).unwrap(), None);
        assert_eq!(
            store
                .active_silence("pipeline_x", t0() + Duration::hours(3))
                .unwrap(),
            None
        );
        assert!(store.remove_silence("pipeline_*").unwrap());
        assert!(!store.remove_silence("pipeline_*").unwrap());
    }

    #[test]
    fn a_file_that_is_not_sqlite_is_refused_and_left_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("alert_state.db");
        std::fs::write(&path, b"not a database at all, some notes\n").unwrap();
        let err = StateStore::open(&path).unwrap_err();
        assert!(
            matches!(err, Error::Core(recops_core::Error::NotADatabase { .. })),
            "{err}"
        );
        assert_eq!(
            std::fs::read(&path).unwrap(),
            b"not a database at all, some notes\n"
        );
    }
}
