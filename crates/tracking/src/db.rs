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

/// Maps an SQLite error on `path`, recognising "file is not a database".
pub(crate) fn sql_err(path: &Path, e: rusqlite::Error) -> Error {
    Error::Core(recops_core::sqlite::error(path, e))
}

/// A closure mapping SQLite errors of one database.
pub(crate) fn on(path: &Path) -> impl Fn(rusqlite::Error) -> Error + '_ {
    move |e| sql_err(path, e)
}
