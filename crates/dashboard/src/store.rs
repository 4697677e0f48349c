//! Reading the stores without ever blocking their writers: SQLite files opened
//! read-only (`mode=ro`) with a short busy timeout, and the result of every read as a
//! [`Panel`]: data, an empty state saying what fills it, a stale notice when the
//! database is busy, or the reason it cannot be read.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
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

/// Column `i` of `r` as a count (SQLite integers are signed; NULL is 0).
pub(crate) fn count(r: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<u64> {
    Ok(r.get::<_, Option<i64>>(i)?.unwrap_or(0).max(0) as u64)
}

/// `logs/` folders of homes whose tracking stores are in PostgreSQL, with the URL.
static POSTGRES_HOMES: std::sync::Mutex<Vec<(std::path::PathBuf, String)>> =
    std::sync::Mutex::new(Vec::new());

/// The files whose records live in PostgreSQL when `storage.url` names it.
const TRACKING_FILES: [&str; 3] = [
    "pipeline_metrics.db",
    "training_metrics.db",
    "service_metrics.db",
];

/// Records that the home with this `logs/` folder keeps its tracking stores at `url`
/// (PostgreSQL): their panels say so instead of showing an empty state.
pub(crate) fn mark_postgres(logs_dir: &Path, url: &str) {
    let mut homes = POSTGRES_HOMES
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    homes.retain(|(d, _)| d != logs_dir);
    homes.push((logs_dir.to_path_buf(), url.to_owned()));
}

/// The PostgreSQL URL holding what the SQLite file `path` would hold, if any.
fn in_postgres(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    if !TRACKING_FILES.contains(&name) {
        return None;
    }
    let dir = path.parent()?;
    POSTGRES_HOMES
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .iter()
        .find(|(d, _)| d == dir)
        .map(|(_, url)| url.clone())
}

/// Opens `path` read-only; `None` when the file does not exist (nothing recorded yet).
pub(crate) fn open_ro(path: &Path) -> rusqlite::Result<Option<Connection>> {
    if !path.exists() {
        return Ok(None);
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(READ_BUSY_TIMEOUT)?;
    Ok(Some(conn))
}

/// Reads `path` with `f`: a missing file or a missing table is the empty state with
/// `hint`, a busy database a stale notice, anything else unavailable with the reason.
pub(crate) fn read<T>(
    path: &Path,
    hint: &str,
    is_empty: impl FnOnce(&T) -> bool,
    f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
) -> Panel<T> {
    if let Some(url) = in_postgres(path) {
        return Panel::Unavailable {
            message: format!(
                "this home keeps its runs and service metrics in PostgreSQL ({url}); the \
                 dashboard does not read PostgreSQL yet (docs/storage.md): use recops runs \
                 list, recops training list and health-check"
            ),
        };
    }
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

fn classify<T>(path: &Path, e: rusqlite::Error, hint: &str) -> Panel<T> {
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

    #[test]
    fn tracking_panels_of_a_postgres_home_say_where_the_data_is() {
        let pg = tempfile::tempdir().unwrap();
        let other = tempfile::tempdir().unwrap();
        mark_postgres(&pg.path().join("logs"), "postgres://recops@db:5432/recops");
        let read_one = |path: &Path| -> Panel<i64> {
            read(
                path,
                "hint",
                |_| false,
                |c| c.query_row("SELECT 1", [], |r| r.get(0)),
            )
        };
        for file in TRACKING_FILES {
            match read_one(&pg.path().join("logs").join(file)) {
                Panel::Unavailable { message } => {
                    assert!(
                        message.contains("postgres://recops@db:5432/recops"),
                        "{message}"
                    )
                }
                p => panic!("{file}: {p:?}"),
            }
            assert_eq!(
                read_one(&other.path().join("logs").join(file)),
                Panel::empty("hint")
            );
        }
        assert_eq!(
            read_one(&pg.path().join("logs/alert_state.db")),
            Panel::empty("hint")
        );
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
