//! Opening the SQLite stores (pipeline, training and service metrics, alert state,
//! scheduler state) the same way: WAL, a busy timeout, a header check that never
//! touches a file that is not SQLite, and `user_version` migrations.
//!
//! Enabled by the `sqlite` feature.

use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

pub use rusqlite;
use rusqlite::{Connection, ErrorCode, OpenFlags, TransactionBehavior};

use crate::error::{Error, Result};

/// How long a writer waits for another process's write transaction before failing.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(60);

/// Opens (creating if needed) the database at `path` and brings its schema to the
/// newest version: `migrations[i]` takes it from `user_version` i to i + 1, in one
/// immediate transaction, so concurrent openers migrate once.
///
/// A file that exists but is not SQLite gives [`Error::NotADatabase`] and is never
/// touched; a schema newer than `migrations` gives [`Error::DatabaseTooNew`].
pub fn open(path: &Path, migrations: &[&str]) -> Result<Connection> {
    crate::ensure_parent(path)?;
    check_header(path)?;
    // While several processes open a new database at once, switching it to WAL can
    // report "database is locked" without waiting on the busy handler; retry the
    // set-up with a short backoff until the busy timeout has passed.
    let deadline = Instant::now() + BUSY_TIMEOUT;
    let mut pause = Duration::from_millis(2);
    loop {
        match try_open(path, migrations) {
            Err(Error::Sqlite { source, .. }) if is_busy(&source) && Instant::now() < deadline => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(100));
            }
            other => return other,
        }
    }
}

/// Maps an SQLite error on the database at `path`, recognising "file is not a
/// database".
pub fn error(path: &Path, e: rusqlite::Error) -> Error {
    if let rusqlite::Error::SqliteFailure(f, _) = &e
        && f.code == ErrorCode::NotADatabase
    {
        return Error::NotADatabase {
            path: path.to_path_buf(),
        };
    }
    Error::Sqlite {
        path: path.to_path_buf(),
        source: e,
    }
}

/// True for "database is busy / locked" (another writer holds it).
pub fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _)
        if matches!(f.code, ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked))
}

fn try_open(path: &Path, migrations: &[&str]) -> Result<Connection> {
    let on = |e| error(path, e);
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut conn = Connection::open_with_flags(path, flags).map_err(on)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(on)?;
    // WAL lets readers and one writer work at once across processes; NORMAL sync is
    // durable against process crashes (a power cut may drop the last commits).
    let mode: String = conn
        .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
        .map_err(on)?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(path = %path.display(), mode = %mode, "database is not in WAL mode; concurrent writers will wait longer");
    }
    conn.execute_batch("PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;")
        .map_err(on)?;
    migrate(&mut conn, path, migrations)?;
    Ok(conn)
}

fn check_header(path: &Path) -> Result<()> {
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io("cannot open database", path, e)),
    };
    let mut header = [0u8; 16];
    let mut read = 0;
    while read < header.len() {
        match file.read(&mut header[read..]) {
            Ok(0) => break,
            Ok(n) => read += n,
            Err(e) => return Err(Error::io("cannot read database", path, e)),
        }
    }
    if read == 0 || (read == 16 && &header == b"SQLite format 3\0") {
        Ok(())
    } else {
        Err(Error::NotADatabase {
            path: path.to_path_buf(),
        })
    }
}

fn migrate(conn: &mut Connection, path: &Path, migrations: &[&str]) -> Result<()> {
    let on = |e| error(path, e);
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(on)?;
    let version: i64 = tx
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(on)?;
    let supported = migrations.len() as i64;
    if version > supported {
        return Err(Error::DatabaseTooNew {
            path: path.to_path_buf(),
            found: version,
            supported,
        });
    }
    for (i, sql) in migrations.iter().enumerate().skip(version.max(0) as usize) {
        tx.execute_batch(sql).map_err(on)?;
        tracing::debug!(path = %path.display(), version = i + 1, "database schema migrated");
    }
    if version < supported {
        tx.pragma_update(None, "user_version", supported)
            .map_err(on)?;
    }
    tx.commit().map_err(on)
}

#[cfg(test)]
mod tests {
    use super::*;

    const V1: &str = "CREATE TABLE t (a INTEGER);";
    const V2: &str = "ALTER TABLE t ADD COLUMN b TEXT;";

    #[test]
    fn migrations_run_once_in_order_and_set_user_version() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.db");
        let conn = open(&path, &[V1]).unwrap();
        conn.execute("INSERT INTO t (a) VALUES (1)", []).unwrap();
        drop(conn);
        let conn = open(&path, &[V1, V2]).unwrap();
        let v: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, 2);
        let (a, b): (i64, Option<String>) = conn
            .query_row("SELECT a, b FROM t", [], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap();
        assert_eq!((a, b), (1, None));
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
    }

    #[test]
    fn newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.db");
        drop(open(&path, &[V1, V2]).unwrap());
        let err = open(&path, &[V1]).unwrap_err();
        assert!(
            matches!(
                err,
                Error::DatabaseTooNew {
                    found: 2,
                    supported: 1,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("x.db"), "{err}");
    }

    #[test]
    fn a_file_that_is_not_sqlite_is_refused_and_left_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pipeline_metrics.db");
        let junk = b"this is a CSV file, not a database\n1,2,3\n".repeat(100);
        std::fs::write(&path, &junk).unwrap();
        let err = open(&path, &[V1]).unwrap_err();
        assert!(matches!(err, Error::NotADatabase { .. }), "{err}");
        assert!(err.to_string().contains("pipeline_metrics.db"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), junk);
        // A short file too.
        std::fs::write(&path, b"x").unwrap();
        assert!(matches!(
            open(&path, &[V1]).unwrap_err(),
            Error::NotADatabase { .. }
        ));
        assert_eq!(std::fs::read(&path).unwrap(), b"x");
    }

    #[test]
    fn concurrent_openers_of_a_new_database_all_succeed_and_migrate_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.db");
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| drop(open(&path, &[V1, V2]).unwrap()));
            }
        });
        let conn = open(&path, &[V1, V2]).unwrap();
        let v: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, 2);
    }
}
