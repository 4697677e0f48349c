//! The tracking databases are opened through [`recops_core::sqlite`] (WAL, busy
//! timeout, header check, migrations); SQLite errors become [`Error::Core`].

use std::path::Path;

use rusqlite::Connection;

use crate::error::{Error, Result};

/// Opens (creating if needed) the database at `path` and brings its schema to the
/// newest version. `migrations[i]` takes the schema from `user_version` i to i + 1.
/// A file that is not SQLite is refused and never touched.
pub(crate) fn open(path: &Path, migrations: &[&str]) -> Result<Connection> {
    Ok(recops_core::sqlite::open(path, migrations)?)
}

/// Opens the database at `path` read-only, for readers such as the dashboard: it
/// never creates, migrates or locks the file, and waits at most `busy` for a writer.
/// `None` when the file or its `table` does not exist yet.
pub fn open_read_only(
    path: &Path,
    busy: std::time::Duration,
    table: &str,
) -> Result<Option<Connection>> {
    if !path.exists() {
        return Ok(None);
    }
    let flags =
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(on(path))?;
    conn.busy_timeout(busy).map_err(on(path))?;
    let has_table: bool = conn
        .query_row(
            "SELECT EXISTS(SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1)",
            [table],
            |r| r.get(0),
        )
        .map_err(on(path))?;
    Ok(has_table.then_some(conn))
}

/// Maps an SQLite error on `path`, recognising "file is not a database".
pub(crate) fn sql_err(path: &Path, e: rusqlite::Error) -> Error {
    Error::Core(recops_core::sqlite::error(path, e))
}

/// A closure mapping SQLite errors of one database.
pub(crate) fn on(path: &Path) -> impl Fn(rusqlite::Error) -> Error + '_ {
    move |e| sql_err(path, e)
}
