use std::path::PathBuf;

/// Errors of recops-alerting.
///
/// Delivery failures are never errors: [`AlertManager::send_alert`](crate::AlertManager::send_alert)
/// reports them per channel. Errors are config problems (at load) and alert-state
/// database problems (silences, listing).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A config, path or name problem reported by recops-core (the message names the
    /// file and key).
    #[error(transparent)]
    Core(#[from] recops_core::Error),

    /// The alert state database at `path` exists but is not an SQLite database. It is
    /// left untouched.
    #[error(
        "{path} is not an SQLite database (corrupt or another kind of file); it was left \
         untouched: move it aside to let recops create a new one"
    )]
    NotADatabase {
        /// The database path.
        path: PathBuf,
    },

    /// An SQLite operation on the alert state database failed.
    #[error("alert state database {path}: {source}")]
    Sqlite {
        /// The database path.
        path: PathBuf,
        /// The SQLite error.
        #[source]
        source: rusqlite::Error,
    },

    /// The alert state database was written by a newer recops.
    #[error(
        "alert state database {path} has schema version {found}, newer than this recops \
         understands ({supported}); upgrade recops"
    )]
    SchemaTooNew {
        /// The database path.
        path: PathBuf,
        /// The version found in the file.
        found: i64,
        /// The newest version this build knows.
        supported: i64,
    },

    /// The alert state database could not be opened when the manager was loaded, so
    /// stateful operations (silences, state listing) are unavailable.
    #[error("alert state is unavailable: {reason}")]
    StateUnavailable {
        /// Why the database could not be opened.
        reason: String,
    },

    /// An argument is not acceptable (empty alert name, silence end in the past, bad
    /// duration).
    #[error("invalid {what}: {message}")]
    InvalidInput {
        /// What was wrong ("alert name", "duration", ...).
        what: &'static str,
        /// Why, and what was expected.
        message: String,
    },
}

/// `Result` with [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;
