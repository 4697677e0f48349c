//! Where alert state and silences are kept: the [`AlertStore`] trait, with
//! [`SqliteAlertStore`] (`logs/alert_state.db`, WAL) and
//! [`PgAlertStore`](crate::PgAlertStore) (the same tables in PostgreSQL).
//! [`open_alert_store`] picks the one `storage.url` names.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use chrono::{DateTime, Utc};
use recops_core::{Home, format_timestamp, parse_timestamp};
use recops_tracking::Storage;
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};

use crate::error::{Error, Result};
use crate::model::Severity;
use crate::state::{AlertState, AlertStatus, Silence};

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

/// Where alert states and silences are kept: the `alert_state` and `silences` tables
/// in SQLite ([`SqliteAlertStore`], `logs/alert_state.db`) or PostgreSQL
/// ([`PgAlertStore`](crate::PgAlertStore)). [`AlertManager`](crate::AlertManager)
/// applies the rules; callers use the manager.
pub trait AlertStore: Send + Sync + fmt::Debug {
    /// The file or URL, for messages.
    fn location(&self) -> String;
    /// In one transaction that excludes every other writer of `alert_name` (in any
    /// process): reads its state, lets `next` compute the next one and stores it, so
    /// two processes never both notify. `next` may run again when the transaction is
    /// retried; returns the state stored.
    fn update(
        &self,
        alert_name: &str,
        next: &mut dyn FnMut(Option<AlertState>) -> AlertState,
    ) -> Result<AlertState>;
    /// Undoes a notification claimed at `claimed_at` whose delivery reached no
    /// channel (back to `previous`, one notification fewer), so the next evaluation
    /// tries again instead of waiting a repeat interval.
    fn release_claim(
        &self,
        alert_name: &str,
        claimed_at: DateTime<Utc>,
        previous: Option<DateTime<Utc>>,
    ) -> Result<()>;
    /// Every stored alert state, by name.
    fn states(&self) -> Result<Vec<AlertState>>;
    /// Stores (or replaces) a silence.
    fn put_silence(&self, silence: &Silence) -> Result<()>;
    /// Removes the silence of `matcher`; false when there was none.
    fn remove_silence(&self, matcher: &str) -> Result<bool>;
    /// Every stored silence (active or expired), by matcher.
    fn silences(&self) -> Result<Vec<Silence>>;
    /// Inserts the states whose alert name is not there yet, as they are; returns
    /// how many (for copying a store).
    fn import_states(&self, states: &[AlertState]) -> Result<usize>;
    /// Inserts the silences whose matcher is not there yet; returns how many.
    fn import_silences(&self, silences: &[Silence]) -> Result<usize>;

    /// The active silence covering `alert_name` that lasts longest, if any.
    fn active_silence(&self, alert_name: &str, now: DateTime<Utc>) -> Result<Option<Silence>> {
        Ok(self
            .silences()?
            .into_iter()
            .filter(|s| s.is_active(now) && s.matches(alert_name))
            .max_by_key(|s| s.until))
    }
}

/// The alert store of `home` in the backend `storage.url` / `RECOPS_STORAGE_URL`
/// names: `logs/alert_state.db` by default, else the PostgreSQL tables (created or
/// migrated; no file is written).
pub fn open_alert_store(home: &Home) -> Result<Box<dyn AlertStore>> {
    open_on(home, Storage::of(home)?)
}

/// The alert store of `home` on `storage` (created or migrated).
pub(crate) fn open_on(home: &Home, storage: Storage) -> Result<Box<dyn AlertStore>> {
    Ok(match storage {
        Storage::Embedded => Box::new(SqliteAlertStore::open(&home.alert_state_db())?),
        Storage::Postgres(db) => Box::new(crate::PgAlertStore::open(&db)?),
    })
}

/// [`AlertStore`] in SQLite (`logs/alert_state.db`, WAL mode).
#[derive(Debug)]
pub struct SqliteAlertStore {
    path: PathBuf,
    conn: Mutex<Connection>,
}

const UPSERT_STATE: &str = "INSERT INTO alert_state (alert_name, status, severity, \
    consecutive_breaches, firing_since, last_value, last_message, last_evaluated_at, \
    last_notified_at, notification_count, last_suppressed_at, resolved_at) \
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)";

const ON_CONFLICT_UPDATE: &str = " ON CONFLICT(alert_name) DO UPDATE SET status = excluded.status, \
    severity = excluded.severity, consecutive_breaches = excluded.consecutive_breaches, \
    firing_since = excluded.firing_since, last_value = excluded.last_value, \
    last_message = excluded.last_message, last_evaluated_at = excluded.last_evaluated_at, \
    last_notified_at = excluded.last_notified_at, \
    notification_count = excluded.notification_count, \
    last_suppressed_at = excluded.last_suppressed_at, resolved_at = excluded.resolved_at";

pub(crate) const STATE_COLUMNS: &str = "alert_name, status, severity, consecutive_breaches, \
    firing_since, last_value, last_message, last_evaluated_at, last_notified_at, \
    notification_count, last_suppressed_at, resolved_at";

pub(crate) const SILENCE_COLUMNS: &str = "matcher, until, reason, created_at, created_by";

impl SqliteAlertStore {
    /// Opens (creating or migrating) the database at `path`. A file that is not
    /// SQLite is refused and never touched.
    pub fn open(path: &Path) -> Result<Self> {
        let conn = recops_core::sqlite::open(path, &[ALERT_STATE_SCHEMA])?;
        Ok(SqliteAlertStore {
            path: path.to_path_buf(),
            conn: Mutex::new(conn),
        })
    }

    /// Opens the database at `path` read-only (for readers such as the dashboard: it
    /// never creates, migrates or locks the file, and waits at most `busy` for a
    /// writer). `None` when the file or its table does not exist yet.
    pub fn open_read_only(path: &Path, busy: std::time::Duration) -> Result<Option<Self>> {
        let conn = recops_tracking::open_read_only(path, busy, "alert_state")?;
        Ok(conn.map(|conn| SqliteAlertStore {
            path: path.to_path_buf(),
            conn: Mutex::new(conn),
        }))
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn err(&self, e: rusqlite::Error) -> Error {
        Error::Core(recops_core::sqlite::error(&self.path, e))
    }
}

fn state_params(s: &AlertState) -> [Box<dyn rusqlite::ToSql + '_>; 12] {
    [
        Box::new(&s.alert_name),
        Box::new(s.status.as_str()),
        Box::new(s.severity.as_str()),
        Box::new(s.consecutive_breaches),
        Box::new(s.firing_since.map(format_timestamp)),
        Box::new(s.last_value),
        Box::new(&s.last_message),
        Box::new(format_timestamp(s.last_evaluated_at)),
        Box::new(s.last_notified_at.map(format_timestamp)),
        Box::new(s.notification_count),
        Box::new(s.last_suppressed_at.map(format_timestamp)),
        Box::new(s.resolved_at.map(format_timestamp)),
    ]
}

impl AlertStore for SqliteAlertStore {
    fn location(&self) -> String {
        self.path.display().to_string()
    }

    fn update(
        &self,
        alert_name: &str,
        next: &mut dyn FnMut(Option<AlertState>) -> AlertState,
    ) -> Result<AlertState> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.err(e))?;
        let prev = tx
            .query_row(
                &format!("SELECT {STATE_COLUMNS} FROM alert_state WHERE alert_name = ?1"),
                [alert_name],
                row_to_state,
            )
            .optional()
            .map_err(|e| self.err(e))?;
        let state = next(prev);
        tx.execute(
            &format!("{UPSERT_STATE}{ON_CONFLICT_UPDATE}"),
            rusqlite::params_from_iter(state_params(&state)),
        )
        .map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))?;
        Ok(state)
    }

    fn release_claim(
        &self,
        alert_name: &str,
        claimed_at: DateTime<Utc>,
        previous: Option<DateTime<Utc>>,
    ) -> Result<()> {
        self.conn()
            .execute(
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

    fn states(&self) -> Result<Vec<AlertState>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {STATE_COLUMNS} FROM alert_state ORDER BY alert_name"
            ))
            .map_err(|e| self.err(e))?;
        stmt.query_map([], row_to_state)
            .and_then(|rows| rows.collect())
            .map_err(|e| self.err(e))
    }

    fn put_silence(&self, s: &Silence) -> Result<()> {
        self.conn()
            .execute(
                &format!(
                    "INSERT INTO silences ({SILENCE_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT(matcher) DO UPDATE SET until = excluded.until,
                        reason = excluded.reason, created_at = excluded.created_at,
                        created_by = excluded.created_by"
                ),
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

    fn remove_silence(&self, matcher: &str) -> Result<bool> {
        let n = self
            .conn()
            .execute("DELETE FROM silences WHERE matcher = ?1", [matcher])
            .map_err(|e| self.err(e))?;
        Ok(n > 0)
    }

    fn silences(&self) -> Result<Vec<Silence>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {SILENCE_COLUMNS} FROM silences ORDER BY matcher"
            ))
            .map_err(|e| self.err(e))?;
        stmt.query_map([], |r| {
            Ok(Silence {
                matcher: r.get(0)?,
                until: ts(r, 1)?.unwrap_or(DateTime::<Utc>::MIN_UTC),
                reason: r.get(2)?,
                created_at: ts(r, 3)?.unwrap_or(DateTime::<Utc>::MIN_UTC),
                created_by: r.get(4)?,
            })
        })
        .and_then(|rows| rows.collect())
        .map_err(|e| self.err(e))
    }

    fn import_states(&self, states: &[AlertState]) -> Result<usize> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.err(e))?;
        let mut n = 0;
        for s in states {
            n += tx
                .execute(
                    &format!("{UPSERT_STATE} ON CONFLICT(alert_name) DO NOTHING"),
                    rusqlite::params_from_iter(state_params(s)),
                )
                .map_err(|e| self.err(e))?;
        }
        tx.commit().map_err(|e| self.err(e))?;
        Ok(n)
    }

    fn import_silences(&self, silences: &[Silence]) -> Result<usize> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.err(e))?;
        let mut n = 0;
        for s in silences {
            n += tx
                .execute(
                    &format!(
                        "INSERT INTO silences ({SILENCE_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5) \
                         ON CONFLICT(matcher) DO NOTHING"
                    ),
                    params![
                        s.matcher,
                        format_timestamp(s.until),
                        s.reason,
                        format_timestamp(s.created_at),
                        s.created_by
                    ],
                )
                .map_err(|e| self.err(e))?;
        }
        tx.commit().map_err(|e| self.err(e))?;
        Ok(n)
    }
}

fn ts(r: &Row<'_>, idx: usize) -> rusqlite::Result<Option<DateTime<Utc>>> {
    let s: Option<String> = r.get(idx)?;
    Ok(s.as_deref().and_then(parse_timestamp))
}

fn row_to_state(r: &Row<'_>) -> rusqlite::Result<AlertState> {
    let status: String = r.get(1)?;
    let severity: String = r.get(2)?;
    Ok(AlertState {
        alert_name: r.get(0)?,
        status: AlertStatus::parse(&status),
        severity: severity.parse().unwrap_or(Severity::Warning),
        consecutive_breaches: r.get(3)?,
        firing_since: ts(r, 4)?,
        last_value: r.get(5)?,
        last_message: r.get(6)?,
        last_evaluated_at: ts(r, 7)?.unwrap_or(DateTime::<Utc>::MIN_UTC),
        last_notified_at: ts(r, 8)?,
        notification_count: r.get(9)?,
        last_suppressed_at: ts(r, 10)?,
        resolved_at: ts(r, 11)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{Observation, Policy, Step, step};
    use chrono::{Duration, TimeZone};

    type Fixture = (Box<dyn std::any::Any>, Box<dyn AlertStore>);
    type Maker = fn() -> Fixture;

    fn sqlite() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteAlertStore::open(&dir.path().join("logs/alert_state.db")).unwrap();
        (Box::new(dir), Box::new(store))
    }

    fn postgres() -> Fixture {
        let pg = recops_testkit::PgCluster::shared().unwrap();
        let db = recops_tracking::PgDatabase::connect_new(&pg.fresh_database()).unwrap();
        let store = crate::PgAlertStore::open(&db).unwrap();
        (Box::new(db), Box::new(store))
    }

    recops_testkit::on_both_backends!(
        on_sqlite: sqlite, postgres;
        state_and_silences_round_trip,
        concurrent_updates_of_one_alert_lose_nothing,
        import_keeps_rows_already_there,
    );

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 1, 15, 8, 0, 0).unwrap()
    }

    fn policy() -> Policy {
        Policy {
            for_evaluations: 1,
            repeat_interval: Duration::hours(4),
            send_resolved: true,
        }
    }

    fn breach() -> Observation {
        Observation {
            breached: true,
            value: Some(215.3),
            severity: Severity::Warning,
            message: "high_latency triggered".into(),
        }
    }

    fn silence(matcher: &str, hours: i64) -> Silence {
        Silence {
            matcher: matcher.into(),
            until: t0() + Duration::hours(hours),
            reason: "maintenance".into(),
            created_at: t0(),
            created_by: Some("ops@host".into()),
        }
    }

    fn state_and_silences_round_trip(make: Maker) {
        let (_keep, store) = make();
        let mut decided = None;
        let stored = store
            .update("high_latency", &mut |prev| {
                let (next, d) = step("high_latency", prev, &breach(), t0(), &policy(), false);
                decided = Some(d);
                next
            })
            .unwrap();
        assert_eq!(decided, Some(Step::Notify { repeat: false }));
        let states = store.states().unwrap();
        assert_eq!(states, vec![stored]);
        assert_eq!(states[0].status, AlertStatus::Firing);
        assert_eq!(states[0].last_notified_at, Some(t0()));
        assert_eq!(states[0].firing_since, Some(t0()));
        assert_eq!(states[0].last_value, Some(215.3));
        assert_eq!(states[0].notification_count, 1);
        store.release_claim("high_latency", t0(), None).unwrap();
        let s = &store.states().unwrap()[0];
        assert_eq!((s.last_notified_at, s.notification_count), (None, 0));
        // A claim of another time is not released.
        store
            .update("high_latency", &mut |prev| {
                step("high_latency", prev, &breach(), t0(), &policy(), false).0
            })
            .unwrap();
        store
            .release_claim("high_latency", t0() + Duration::hours(1), None)
            .unwrap();
        assert_eq!(store.states().unwrap()[0].notification_count, 1);

        let wide = silence("pipeline_*", 2);
        store.put_silence(&wide).unwrap();
        store.put_silence(&silence("pipeline_x", 1)).unwrap();
        assert_eq!(
            store
                .active_silence("pipeline_data_refresh_failed", t0())
                .unwrap(),
            Some(wide.clone())
        );
        assert_eq!(store.active_silence("high_latency", t0()).unwrap(), None);
        assert_eq!(
            store
                .active_silence("pipeline_x", t0() + Duration::hours(3))
                .unwrap(),
            None
        );
        // Replacing a silence keeps one row.
        let longer = silence("pipeline_*", 5);
        store.put_silence(&longer).unwrap();
        assert_eq!(
            store.silences().unwrap(),
            vec![longer, silence("pipeline_x", 1)]
        );
        assert!(store.remove_silence("pipeline_*").unwrap());
        assert!(!store.remove_silence("pipeline_*").unwrap());
        assert_eq!(store.silences().unwrap().len(), 1);
    }

    /// Writers of one alert name wait for each other, even before its first row
    /// exists: every increment lands.
    fn concurrent_updates_of_one_alert_lose_nothing(make: Maker) {
        let (_keep, store) = make();
        let store: &dyn AlertStore = store.as_ref();
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    for _ in 0..10 {
                        store
                            .update("queue_depth", &mut |prev| {
                                let mut s = prev.unwrap_or_else(|| {
                                    step("queue_depth", None, &breach(), t0(), &policy(), false).0
                                });
                                s.consecutive_breaches += 1;
                                s
                            })
                            .unwrap();
                    }
                });
            }
        });
        // The first writer's row starts at 1 (its step), then 40 increments.
        assert_eq!(store.states().unwrap()[0].consecutive_breaches, 41);
    }

    fn import_keeps_rows_already_there(make: Maker) {
        let (_keep, store) = make();
        let (a, _) = step("a", None, &breach(), t0(), &policy(), false);
        let (b, _) = step("b", None, &breach(), t0(), &policy(), true);
        store.update("a", &mut |_| a.clone()).unwrap();
        let mut changed = a.clone();
        changed.notification_count = 9;
        assert_eq!(store.import_states(&[changed, b.clone()]).unwrap(), 1);
        assert_eq!(store.states().unwrap(), vec![a, b]);
        store.put_silence(&silence("a", 1)).unwrap();
        assert_eq!(
            store
                .import_silences(&[silence("a", 7), silence("b", 2)])
                .unwrap(),
            1
        );
        assert_eq!(
            store.silences().unwrap(),
            vec![silence("a", 1), silence("b", 2)]
        );
    }

    #[test]
    fn a_file_that_is_not_sqlite_is_refused_and_left_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("alert_state.db");
        std::fs::write(&path, b"not a database at all, some notes\n").unwrap();
        let err = SqliteAlertStore::open(&path).unwrap_err();
        assert!(
            matches!(err, Error::Core(recops_core::Error::NotADatabase { .. })),
            "{err}"
        );
        assert_eq!(
            std::fs::read(&path).unwrap(),
            b"not a database at all, some notes\n"
        );
    }

    #[test]
    fn read_only_opens_never_create_anything() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logs/alert_state.db");
        let busy = std::time::Duration::from_millis(100);
        assert!(
            SqliteAlertStore::open_read_only(&path, busy)
                .unwrap()
                .is_none()
        );
        assert!(!path.exists());
        SqliteAlertStore::open(&path)
            .unwrap()
            .put_silence(&silence("a", 1))
            .unwrap();
        let ro = SqliteAlertStore::open_read_only(&path, busy)
            .unwrap()
            .unwrap();
        assert_eq!(ro.silences().unwrap(), vec![silence("a", 1)]);
        assert!(ro.put_silence(&silence("b", 1)).is_err(), "read-only wrote");

        let Some(pg) = recops_testkit::PgCluster::shared() else {
            return;
        };
        let db = recops_tracking::PgDatabase::connect_new(&pg.fresh_database()).unwrap();
        assert!(crate::PgAlertStore::open_existing(&db).unwrap().is_none());
        let made: bool = db
            .conn()
            .unwrap()
            .query_one(
                "SELECT to_regclass('recops_schema_migrations') IS NOT NULL",
                &[],
            )
            .unwrap()
            .get(0);
        assert!(!made, "a read-only open created the migrations table");
        crate::PgAlertStore::open(&db).unwrap();
        let store = crate::PgAlertStore::open_existing(&db).unwrap().unwrap();
        assert_eq!(store.states().unwrap(), vec![]);
    }
}
