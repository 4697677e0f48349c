use std::path::PathBuf;

/// Errors of recops-tracking.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A path or name problem reported by recops-core (folder creation, bad name, ...).
    #[error(transparent)]
    Core(#[from] recops_core::Error),

    /// The file at `path` exists but is not an SQLite database. It is left untouched.
    #[error(
        "{path} is not an SQLite database (corrupt or another kind of file); it was left \
         untouched: move it aside to let recops create a new one"
    )]
    NotADatabase {
        /// The database path.
        path: PathBuf,
    },

    /// An SQLite operation on the database at `path` failed.
    #[error("database {path}: {source}")]
    Sqlite {
        /// The database path.
        path: PathBuf,
        /// The SQLite error.
        #[source]
        source: rusqlite::Error,
    },

    /// The database was written by a newer recops (its schema version is unknown here).
    #[error(
        "database {path} has schema version {found}, newer than this recops understands ({supported}); upgrade recops"
    )]
    SchemaTooNew {
        /// The database path.
        path: PathBuf,
        /// The version found in the file.
        found: i64,
        /// The newest version this build knows.
        supported: i64,
    },

    /// No run has this id.
    #[error("run {run_id} does not exist")]
    RunNotFound {
        /// The id asked for.
        run_id: String,
    },

    /// The run is no longer running, so it cannot be completed, failed or cancelled again.
    #[error("run {run_id} is already finished with status {status}")]
    RunAlreadyFinished {
        /// The run id.
        run_id: String,
        /// Its final status.
        status: String,
    },

    /// An argument is not acceptable (empty pipeline name, metadata that is not an object).
    #[error("invalid {what}: {message}")]
    InvalidInput {
        /// What was wrong.
        what: &'static str,
        /// Why.
        message: String,
    },

    /// A lock file operation failed.
    #[error("lock {path}: {source}")]
    Lock {
        /// The lock file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

/// `Result` with [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;
