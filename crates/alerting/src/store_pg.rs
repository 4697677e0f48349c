//! [`PgAlertStore`]: alert state and silences in PostgreSQL.

use chrono::{DateTime, Utc};
use postgres::Row;
use postgres::types::ToSql;
use recops_core::{format_timestamp, parse_timestamp};
use recops_tracking::PgDatabase;

use crate::error::Result;
use crate::model::Severity;
use crate::state::{AlertState, AlertStatus, Silence};
use crate::store::{AlertStore, SILENCE_COLUMNS, STATE_COLUMNS};

/// The store name in `recops_schema_migrations`.
const STORE: &str = "alerts";

/// Versioned migrations of the alert store in PostgreSQL: `alert_state` and
/// `silences` with the same names and columns as `logs/alert_state.db` (timestamps
/// as RFC 3339 text in the C collation, so they sort as in SQLite; counters as
/// BIGINT; the value in double precision).
pub const PG_ALERT_MIGRATIONS: &[&str] = &["\
CREATE TABLE IF NOT EXISTS alert_state (
    alert_name TEXT COLLATE \"C\" PRIMARY KEY,
    status TEXT NOT NULL,
    severity TEXT NOT NULL,
    consecutive_breaches BIGINT NOT NULL DEFAULT 0,
    firing_since TEXT COLLATE \"C\",
    last_value DOUBLE PRECISION,
    last_message TEXT,
    last_evaluated_at TEXT COLLATE \"C\" NOT NULL,
    last_notified_at TEXT COLLATE \"C\",
    notification_count BIGINT NOT NULL DEFAULT 0,
    last_suppressed_at TEXT COLLATE \"C\",
    resolved_at TEXT COLLATE \"C\"
);
CREATE TABLE IF NOT EXISTS silences (
    matcher TEXT COLLATE \"C\" PRIMARY KEY,
    until TEXT COLLATE \"C\" NOT NULL,
    reason TEXT NOT NULL,
    created_at TEXT COLLATE \"C\" NOT NULL,
    created_by TEXT
);
"];

/// The first key of the transaction-level advisory lock `update` takes per alert
/// name (the second is the name's hash): writers of one alert name wait for each
/// other, even before its first row exists.
const UPDATE_LOCK_CLASS: i32 = 72_627_302;

const UPSERT_STATE: &str = "INSERT INTO alert_state (alert_name, status, severity, \
    consecutive_breaches, firing_since, last_value, last_message, last_evaluated_at, \
    last_notified_at, notification_count, last_suppressed_at, resolved_at) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)";

const INSERT_SILENCE: &str = "INSERT INTO silences (matcher, until, reason, created_at, created_by) VALUES ($1, $2, $3, $4, $5)";

/// [`AlertStore`] in PostgreSQL.
#[derive(Debug, Clone)]
pub struct PgAlertStore {
    db: PgDatabase,
}

impl PgAlertStore {
    /// Opens the store, creating or migrating its tables.
    pub fn open(db: &PgDatabase) -> Result<Self> {
        db.migrate(STORE, PG_ALERT_MIGRATIONS)?;
        Ok(PgAlertStore { db: db.clone() })
    }

    /// Opens the store for reading only (the dashboard): never creates or migrates
    /// anything. `None` when its tables do not exist yet (nothing recorded); an error
    /// when they are newer than this build knows.
    pub fn open_existing(db: &PgDatabase) -> Result<Option<Self>> {
        Ok(db
            .schema_present(STORE, PG_ALERT_MIGRATIONS)?
            .then(|| PgAlertStore { db: db.clone() }))
    }
}

/// The values of one `alert_state` row, owned so they can be borrowed as parameters.
struct StateValues<'a> {
    s: &'a AlertState,
    labels: (&'static str, &'static str),
    counts: (i64, i64),
    times: [Option<String>; 5],
}

impl<'a> StateValues<'a> {
    fn of(s: &'a AlertState) -> Self {
        StateValues {
            s,
            labels: (s.status.as_str(), s.severity.as_str()),
            counts: (
                i64::from(s.consecutive_breaches),
                i64::from(s.notification_count),
            ),
            times: [
                s.firing_since.map(format_timestamp),
                Some(format_timestamp(s.last_evaluated_at)),
                s.last_notified_at.map(format_timestamp),
                s.last_suppressed_at.map(format_timestamp),
                s.resolved_at.map(format_timestamp),
            ],
        }
    }

    fn params(&self) -> [&(dyn ToSql + Sync); 12] {
        [
            &self.s.alert_name,
            &self.labels.0,
            &self.labels.1,
            &self.counts.0,
            &self.times[0],
            &self.s.last_value,
            &self.s.last_message,
            &self.times[1],
            &self.times[2],
            &self.counts.1,
            &self.times[3],
            &self.times[4],
        ]
    }
}

const ON_CONFLICT_UPDATE: &str = "ON CONFLICT (alert_name) DO UPDATE SET status = excluded.status, \
    severity = excluded.severity, consecutive_breaches = excluded.consecutive_breaches, \
    firing_since = excluded.firing_since, last_value = excluded.last_value, \
    last_message = excluded.last_message, last_evaluated_at = excluded.last_evaluated_at, \
    last_notified_at = excluded.last_notified_at, \
    notification_count = excluded.notification_count, \
    last_suppressed_at = excluded.last_suppressed_at, resolved_at = excluded.resolved_at";

fn silence_times(s: &Silence) -> (String, String) {
    (format_timestamp(s.until), format_timestamp(s.created_at))
}

/// Row-reading errors are recops-tracking's, so readers run inside its transactions.
type RowResult<T> = recops_tracking::Result<T>;

fn row_err(e: postgres::Error) -> recops_tracking::Error {
    recops_tracking::Error::InvalidInput {
        what: "alert store row",
        message: e.to_string(),
    }
}

fn ts(r: &Row, idx: usize) -> RowResult<Option<DateTime<Utc>>> {
    let s: Option<String> = r.try_get(idx).map_err(row_err)?;
    Ok(s.as_deref().and_then(parse_timestamp))
}

fn count(r: &Row, idx: usize) -> RowResult<u32> {
    let n: i64 = r.try_get(idx).map_err(row_err)?;
    Ok(u32::try_from(n.max(0)).unwrap_or(u32::MAX))
}

fn read_state(r: &Row) -> RowResult<AlertState> {
    let status: String = r.try_get(1).map_err(row_err)?;
    let severity: String = r.try_get(2).map_err(row_err)?;
    Ok(AlertState {
        alert_name: r.try_get(0).map_err(row_err)?,
        status: AlertStatus::parse(&status),
        severity: severity.parse().unwrap_or(Severity::Warning),
        consecutive_breaches: count(r, 3)?,
        firing_since: ts(r, 4)?,
        last_value: r.try_get(5).map_err(row_err)?,
        last_message: r.try_get(6).map_err(row_err)?,
        last_evaluated_at: ts(r, 7)?.unwrap_or(DateTime::<Utc>::MIN_UTC),
        last_notified_at: ts(r, 8)?,
        notification_count: count(r, 9)?,
        last_suppressed_at: ts(r, 10)?,
        resolved_at: ts(r, 11)?,
    })
}

fn read_silence(r: &Row) -> RowResult<Silence> {
    Ok(Silence {
        matcher: r.try_get(0).map_err(row_err)?,
        until: ts(r, 1)?.unwrap_or(DateTime::<Utc>::MIN_UTC),
        reason: r.try_get(2).map_err(row_err)?,
        created_at: ts(r, 3)?.unwrap_or(DateTime::<Utc>::MIN_UTC),
        created_by: r.try_get(4).map_err(row_err)?,
    })
}

impl AlertStore for PgAlertStore {
    fn location(&self) -> String {
        self.db.url().to_owned()
    }

    fn update(
        &self,
        alert_name: &str,
        next: &mut dyn FnMut(Option<AlertState>) -> AlertState,
    ) -> Result<AlertState> {
        let state = self.db.transaction(|tx| {
            let on = self.db.on();
            tx.execute(
                "SELECT pg_advisory_xact_lock($1, hashtext($2))",
                &[&UPDATE_LOCK_CLASS, &alert_name],
            )
            .map_err(&on)?;
            let prev = tx
                .query_opt(
                    &format!("SELECT {STATE_COLUMNS} FROM alert_state WHERE alert_name = $1"),
                    &[&alert_name],
                )
                .map_err(&on)?
                .as_ref()
                .map(read_state)
                .transpose()?;
            let state = next(prev);
            let values = StateValues::of(&state);
            tx.execute(
                &format!("{UPSERT_STATE} {ON_CONFLICT_UPDATE}"),
                &values.params(),
            )
            .map_err(&on)?;
            Ok(state)
        })?;
        Ok(state)
    }

    fn release_claim(
        &self,
        alert_name: &str,
        claimed_at: DateTime<Utc>,
        previous: Option<DateTime<Utc>>,
    ) -> Result<()> {
        self.db
            .conn()?
            .execute(
                "UPDATE alert_state SET last_notified_at = $3, \
                 notification_count = GREATEST(notification_count - 1, 0) \
                 WHERE alert_name = $1 AND last_notified_at = $2",
                &[
                    &alert_name,
                    &format_timestamp(claimed_at),
                    &previous.map(format_timestamp),
                ],
            )
            .map_err(self.db.on())?;
        Ok(())
    }

    fn states(&self) -> Result<Vec<AlertState>> {
        self.db
            .conn()?
            .query(
                &format!("SELECT {STATE_COLUMNS} FROM alert_state ORDER BY alert_name"),
                &[],
            )
            .map_err(self.db.on())?
            .iter()
            .map(|r| Ok(read_state(r)?))
            .collect()
    }

    fn put_silence(&self, s: &Silence) -> Result<()> {
        let (until, created_at) = silence_times(s);
        self.db
            .conn()?
            .execute(
                &format!(
                    "{INSERT_SILENCE} ON CONFLICT (matcher) DO UPDATE SET until = excluded.until, \
                     reason = excluded.reason, created_at = excluded.created_at, \
                     created_by = excluded.created_by"
                ),
                &[&s.matcher, &until, &s.reason, &created_at, &s.created_by],
            )
            .map_err(self.db.on())?;
        Ok(())
    }

    fn remove_silence(&self, matcher: &str) -> Result<bool> {
        let n = self
            .db
            .conn()?
            .execute("DELETE FROM silences WHERE matcher = $1", &[&matcher])
            .map_err(self.db.on())?;
        Ok(n > 0)
    }

    fn silences(&self) -> Result<Vec<Silence>> {
        self.db
            .conn()?
            .query(
                &format!("SELECT {SILENCE_COLUMNS} FROM silences ORDER BY matcher"),
                &[],
            )
            .map_err(self.db.on())?
            .iter()
            .map(|r| Ok(read_silence(r)?))
            .collect()
    }

    fn import_states(&self, states: &[AlertState]) -> Result<usize> {
        let n = self.db.transaction(|tx| {
            let mut n = 0;
            for s in states {
                let values = StateValues::of(s);
                n += tx
                    .execute(
                        &format!("{UPSERT_STATE} ON CONFLICT (alert_name) DO NOTHING"),
                        &values.params(),
                    )
                    .map_err(self.db.on())?;
            }
            Ok(n)
        })?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    fn import_silences(&self, silences: &[Silence]) -> Result<usize> {
        let n = self.db.transaction(|tx| {
            let mut n = 0;
            for s in silences {
                let (until, created_at) = silence_times(s);
                n += tx
                    .execute(
                        &format!("{INSERT_SILENCE} ON CONFLICT (matcher) DO NOTHING"),
                        &[&s.matcher, &until, &s.reason, &created_at, &s.created_by],
                    )
                    .map_err(self.db.on())?;
            }
            Ok(n)
        })?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }
}
