//! Reading the stores without ever blocking their writers: SQLite files opened
//! read-only (`mode=ro`) with a short busy timeout, and the result of every read as a
//! [`Panel`]: data, an empty state saying what fills it, a stale notice when the
//! database is busy, or the reason it cannot be read.

use std::path::Path;
use std::time::Duration;

use serde::Serialize;

/// How long a read waits for a writer before the panel is shown as stale.
pub(crate) const READ_BUSY_TIMEOUT: Duration = Duration::from_millis(250);

/// What one panel shows.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub(crate) enum Panel<T> {
    /// The data.
    Ready {
        /// What the panel shows.
        data: T,
    },
    /// Nothing recorded yet; `hint` says what fills it.
    Empty {
        /// "no training runs yet: run model-training".
        hint: String,
    },
    /// The store was busy; the previous content stays on screen.
    Stale {
        /// Why.
        notice: String,
    },
    /// The store cannot be read (corrupt, newer schema, ...).
    Unavailable {
        /// Why.
        message: String,
    },
}

impl<T> Panel<T> {
    /// An empty state with `hint`.
    pub(crate) fn empty(hint: &str) -> Self {
        Panel::Empty {
            hint: hint.to_owned(),
        }
    }

    /// `Ready(data)`, or the empty state when `is_empty`.
    pub(crate) fn of(data: T, is_empty: bool, hint: &str) -> Self {
        if is_empty {
            Panel::empty(hint)
        } else {
            Panel::Ready { data }
        }
    }

    /// The data, when ready.
    pub(crate) fn data(&self) -> Option<&T> {
        match self {
            Panel::Ready { data } => Some(data),
            _ => None,
        }
    }

    /// A panel borrowing the data.
    pub(crate) fn by_ref(&self) -> Panel<&T> {
        match self {
            Panel::Ready { data } => Panel::Ready { data },
            Panel::Empty { hint } => Panel::Empty { hint: hint.clone() },
            Panel::Stale { notice } => Panel::Stale {
                notice: notice.clone(),
            },
            Panel::Unavailable { message } => Panel::Unavailable {
                message: message.clone(),
            },
        }
    }

    /// Maps the data to another panel.
    pub(crate) fn and_then<U>(self, f: impl FnOnce(T) -> Panel<U>) -> Panel<U> {
        match self {
            Panel::Ready { data } => f(data),
            Panel::Empty { hint } => Panel::Empty { hint },
            Panel::Stale { notice } => Panel::Stale { notice },
            Panel::Unavailable { message } => Panel::Unavailable { message },
        }
    }

    /// Maps the data.
    pub(crate) fn map<U>(self, f: impl FnOnce(T) -> U) -> Panel<U> {
        match self {
            Panel::Ready { data } => Panel::Ready { data: f(data) },
            Panel::Empty { hint } => Panel::Empty { hint },
            Panel::Stale { notice } => Panel::Stale { notice },
            Panel::Unavailable { message } => Panel::Unavailable { message },
        }
    }
}

/// `logs/` folders of homes whose tracking stores are in PostgreSQL, with the URL.
static POSTGRES_HOMES: std::sync::Mutex<Vec<(std::path::PathBuf, String)>> =
    std::sync::Mutex::new(Vec::new());

/// Records that the home with this `logs/` folder keeps its stores (pipeline runs,
/// training runs, service rollups, alert state) at `url` (PostgreSQL):
/// [`pipeline_store`], [`training_store`], [`rollup_store`] and [`alert_store`] read
/// them there.
pub(crate) fn mark_postgres(logs_dir: &Path, url: &str) {
    let mut homes = POSTGRES_HOMES
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    homes.retain(|(d, _)| d != logs_dir);
    homes.push((logs_dir.to_path_buf(), url.to_owned()));
}

/// The PostgreSQL URL of the home with this `logs/` folder, when it has one.
pub(crate) fn postgres_url(logs_dir: &Path) -> Option<String> {
    POSTGRES_HOMES
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .iter()
        .find(|(d, _)| d == logs_dir)
        .map(|(_, url)| url.clone())
}

/// How long a failed connection to PostgreSQL is remembered: meanwhile panels say so
/// at once instead of each waiting for the pool's connection timeout.
const PG_RETRY_AFTER: Duration = Duration::from_secs(30);

/// The last failed connection: URL, when, and the error's message.
static PG_DOWN: std::sync::Mutex<Option<(String, std::time::Instant, String)>> =
    std::sync::Mutex::new(None);

/// The shared pool for `url`, or the error of a connection that failed less than
/// [`PG_RETRY_AFTER`] ago.
pub(crate) fn pg_database(url: &str) -> recops_tracking::Result<recops_tracking::PgDatabase> {
    let down = |message: String| recops_tracking::Error::PostgresPool {
        url: url.to_owned(),
        message,
    };
    {
        let last = PG_DOWN
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((u, at, message)) = last.as_ref()
            && u == url
            && at.elapsed() < PG_RETRY_AFTER
        {
            return Err(down(format!(
                "{message} (retried within {} s)",
                PG_RETRY_AFTER.as_secs()
            )));
        }
    }
    recops_tracking::PgDatabase::connect(url).inspect_err(|e| {
        let message = match e {
            recops_tracking::Error::PostgresPool { message, .. } => message.clone(),
            other => other.to_string(),
        };
        *PG_DOWN
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            Some((url.to_owned(), std::time::Instant::now(), message));
    })
}

/// The pipeline runs of `home` through [`recops_tracking::PipelineStore`], opened for
/// reading only: the SQLite file read-only (never created), or the PostgreSQL tables
/// without migrating. `None` when nothing is recorded yet.
pub(crate) fn pipeline_store(
    home: &recops_core::Home,
) -> recops_tracking::Result<Option<Box<dyn recops_tracking::PipelineStore>>> {
    match postgres_url(&home.logs_dir()) {
        Some(url) => {
            let db = pg_database(&url)?;
            Ok(recops_tracking::PgPipelineStore::open_existing(&db)?
                .map(|s| Box::new(s) as Box<dyn recops_tracking::PipelineStore>))
        }
        None => Ok(recops_tracking::SqlitePipelineStore::open_read_only(
            &home.pipeline_db(),
            READ_BUSY_TIMEOUT,
        )?
        .map(|s| Box::new(s) as Box<dyn recops_tracking::PipelineStore>)),
    }
}

/// Reads the pipeline runs of `home` with `f` through the store trait (SQLite or
/// PostgreSQL): see [`read_store`].
pub(crate) fn read_pipelines<T>(
    home: &recops_core::Home,
    hint: &str,
    is_empty: impl FnOnce(&T) -> bool,
    f: impl FnOnce(&dyn recops_tracking::PipelineStore) -> recops_tracking::Result<T>,
) -> Panel<T> {
    read_store(pipeline_store(home), "pipeline runs", hint, is_empty, |s| {
        f(s)
    })
}

/// Reads the training runs of `home` with `f` through the store trait: see
/// [`read_store`].
pub(crate) fn read_training<T>(
    home: &recops_core::Home,
    hint: &str,
    is_empty: impl FnOnce(&T) -> bool,
    f: impl FnOnce(&dyn recops_tracking::TrainingStore) -> recops_tracking::Result<T>,
) -> Panel<T> {
    read_store(training_store(home), "training runs", hint, is_empty, |s| {
        f(s)
    })
}

/// Reads the service rollups of `home` with `f` through the store trait: see
/// [`read_store`].
pub(crate) fn read_rollups<T>(
    home: &recops_core::Home,
    hint: &str,
    is_empty: impl FnOnce(&T) -> bool,
    f: impl FnOnce(&dyn recops_tracking::RollupStore) -> recops_tracking::Result<T>,
) -> Panel<T> {
    read_store(rollup_store(home), "service metrics", hint, is_empty, |s| {
        f(s)
    })
}

/// The service rollups of `home` through [`recops_tracking::RollupStore`], opened for
/// reading only (as [`pipeline_store`]).
pub(crate) fn rollup_store(
    home: &recops_core::Home,
) -> recops_tracking::Result<Option<Box<dyn recops_tracking::RollupStore>>> {
    match postgres_url(&home.logs_dir()) {
        Some(url) => {
            let db = pg_database(&url)?;
            Ok(recops_tracking::PgRollupStore::open_existing(&db)?
                .map(|s| Box::new(s) as Box<dyn recops_tracking::RollupStore>))
        }
        None => Ok(recops_tracking::SqliteRollupStore::open_read_only(
            &home.service_db(),
            READ_BUSY_TIMEOUT,
        )?
        .map(|s| Box::new(s) as Box<dyn recops_tracking::RollupStore>)),
    }
}

/// The alert state and silences of `home` through [`recops_alerting::AlertStore`],
/// opened for reading only (as [`pipeline_store`]).
pub(crate) fn alert_store(
    home: &recops_core::Home,
) -> recops_alerting::Result<Option<Box<dyn recops_alerting::AlertStore>>> {
    match postgres_url(&home.logs_dir()) {
        Some(url) => {
            let db = pg_database(&url)?;
            Ok(recops_alerting::PgAlertStore::open_existing(&db)?
                .map(|s| Box::new(s) as Box<dyn recops_alerting::AlertStore>))
        }
        None => Ok(recops_alerting::SqliteAlertStore::open_read_only(
            &home.alert_state_db(),
            READ_BUSY_TIMEOUT,
        )?
        .map(|s| Box::new(s) as Box<dyn recops_alerting::AlertStore>)),
    }
}

/// Reads the alert state of `home` with `f` through the store trait: see
/// [`read_store`].
pub(crate) fn read_alerts<T>(
    home: &recops_core::Home,
    hint: &str,
    is_empty: impl FnOnce(&T) -> bool,
    f: impl FnOnce(&dyn recops_alerting::AlertStore) -> recops_alerting::Result<T>,
) -> Panel<T> {
    read_store(alert_store(home), "alert state", hint, is_empty, |s| f(s))
}

/// The errors of the store crates, as panels need them.
pub(crate) trait StoreError: std::fmt::Display {
    /// The SQLite error and its file, when it is one (else the error back).
    fn into_sqlite(self) -> Result<(std::path::PathBuf, rusqlite::Error), Self>
    where
        Self: Sized;
}

impl StoreError for recops_tracking::Error {
    fn into_sqlite(self) -> Result<(std::path::PathBuf, rusqlite::Error), Self> {
        match self {
            recops_tracking::Error::Core(recops_core::Error::Sqlite { path, source }) => {
                Ok((path, source))
            }
            other => Err(other),
        }
    }
}

impl StoreError for recops_alerting::Error {
    fn into_sqlite(self) -> Result<(std::path::PathBuf, rusqlite::Error), Self> {
        match self {
            recops_alerting::Error::Core(recops_core::Error::Sqlite { path, source }) => {
                Ok((path, source))
            }
            other => Err(other),
        }
    }
}

/// Reads an opened store with `f`: nothing recorded yet (`None`) is the empty state
/// with `hint`, a busy SQLite file a stale notice, anything else unavailable with the
/// reason.
fn read_store<S: ?Sized, T, E: StoreError>(
    store: Result<Option<Box<S>>, E>,
    what: &str,
    hint: &str,
    is_empty: impl FnOnce(&T) -> bool,
    f: impl FnOnce(&S) -> Result<T, E>,
) -> Panel<T> {
    match store
        .and_then(|s| s.map(|s| f(&*s)).transpose())
        .map_err(StoreError::into_sqlite)
    {
        Ok(None) => Panel::empty(hint),
        Ok(Some(data)) => {
            let empty = is_empty(&data);
            Panel::of(data, empty, hint)
        }
        Err(Ok((path, source))) => classify(&path, source, hint),
        Err(Err(e)) => {
            tracing::warn!(error = %e, "dashboard cannot read {what}");
            Panel::Unavailable {
                message: format!("cannot read {what}: {e}"),
            }
        }
    }
}

/// The training runs of `home` through [`recops_tracking::TrainingStore`], opened for
/// reading only (as [`pipeline_store`]).
pub(crate) fn training_store(
    home: &recops_core::Home,
) -> recops_tracking::Result<Option<Box<dyn recops_tracking::TrainingStore>>> {
    match postgres_url(&home.logs_dir()) {
        Some(url) => {
            let db = pg_database(&url)?;
            Ok(recops_tracking::PgTrainingStore::open_existing(&db)?
                .map(|s| Box::new(s) as Box<dyn recops_tracking::TrainingStore>))
        }
        None => Ok(recops_tracking::SqliteTrainingStore::open_read_only(
            &home.training_db(),
            READ_BUSY_TIMEOUT,
        )?
        .map(|s| Box::new(s) as Box<dyn recops_tracking::TrainingStore>)),
    }
}

pub(crate) fn classify<T>(path: &Path, e: rusqlite::Error, hint: &str) -> Panel<T> {
    let file = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    if recops_core::sqlite::is_busy(&e) {
        return Panel::Stale {
            notice: format!("{file} is busy (a writer holds it): showing the last data read"),
        };
    }
    if matches!(e, rusqlite::Error::QueryReturnedNoRows) {
        return Panel::empty(hint);
    }
    if let rusqlite::Error::SqliteFailure(_, Some(msg)) = &e
        && msg.starts_with("no such table")
    {
        return Panel::empty(hint);
    }
    tracing::warn!(path = %path.display(), error = %e, "dashboard cannot read a store");
    Panel::Unavailable {
        message: format!("cannot read {file}: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::{Connection, OpenFlags};

    /// Opens `path` read-only; `None` when the file does not exist (nothing recorded yet).
    fn open_ro(path: &Path) -> rusqlite::Result<Option<Connection>> {
        if !path.exists() {
            return Ok(None);
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags)?;
        conn.busy_timeout(READ_BUSY_TIMEOUT)?;
        Ok(Some(conn))
    }

    /// Reads `path` with `f`, to check [`classify`] on real SQLite errors: a missing
    /// file or table is the empty state with `hint`, a busy database a stale notice,
    /// anything else unavailable with the reason.
    fn read<T>(
        path: &Path,
        hint: &str,
        is_empty: impl FnOnce(&T) -> bool,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Panel<T> {
        let result = open_ro(path).and_then(|c| c.map(|c| f(&c)).transpose());
        match result {
            Ok(None) => Panel::empty(hint),
            Ok(Some(data)) => {
                let empty = is_empty(&data);
                Panel::of(data, empty, hint)
            }
            Err(e) => classify(path, e, hint),
        }
    }

    #[test]
    fn missing_file_is_empty_and_never_created() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logs/x.db");
        let p: Panel<i64> = read(
            &path,
            "run x",
            |_| false,
            |c| c.query_row("SELECT 1", [], |r| r.get(0)),
        );
        assert_eq!(p, Panel::empty("run x"));
        assert!(!path.exists());
    }

    #[test]
    fn missing_table_is_empty_and_junk_is_unavailable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.db");
        Connection::open(&path)
            .unwrap()
            .execute_batch("CREATE TABLE a (b INT)")
            .unwrap();
        let p: Panel<i64> = read(
            &path,
            "hint",
            |_| false,
            |c| c.query_row("SELECT count(*) FROM t", [], |r| r.get(0)),
        );
        assert_eq!(p, Panel::empty("hint"));
        std::fs::write(&path, b"not a database at all, just text ........").unwrap();
        let p: Panel<i64> = read(
            &path,
            "hint",
            |_| false,
            |c| c.query_row("SELECT count(*) FROM t", [], |r| r.get(0)),
        );
        assert!(matches!(p, Panel::Unavailable { .. }), "{p:?}");
    }

    #[test]
    fn a_database_locked_by_a_writer_gives_a_stale_notice() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("busy.db");
        let writer = Connection::open(&path).unwrap();
        writer
            .execute_batch("CREATE TABLE t (a INT); INSERT INTO t VALUES (1); BEGIN EXCLUSIVE; INSERT INTO t VALUES (2);")
            .unwrap();
        let p: Panel<i64> = read(
            &path,
            "hint",
            |_| false,
            |c| c.query_row("SELECT count(*) FROM t", [], |r| r.get(0)),
        );
        assert!(
            matches!(&p, Panel::Stale { notice } if notice.contains("busy.db")),
            "{p:?}"
        );
        writer.execute_batch("COMMIT").unwrap();
        let p: Panel<i64> = read(
            &path,
            "hint",
            |_| false,
            |c| c.query_row("SELECT count(*) FROM t", [], |r| r.get(0)),
        );
        assert_eq!(p, Panel::Ready { data: 2 });
    }
}
