use std::path::PathBuf;

/// Errors of recops-tracking.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A problem reported by recops-core: folder creation, a bad name, or a database
    /// (not SQLite, newer schema, an SQLite failure; see [`recops_core::sqlite`]).
    #[error(transparent)]
    Core(#[from] recops_core::Error),

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

    /// A PostgreSQL operation failed (the URL never holds a password).
    #[error("PostgreSQL {url}")]
    Postgres {
        /// The database URL.
        url: String,
        /// The driver's error.
        #[source]
        source: postgres::Error,
    },

    /// No connection to PostgreSQL could be made or taken from the pool.
    #[error("cannot connect to PostgreSQL {url}: {message}")]
    PostgresPool {
        /// The database URL.
        url: String,
        /// The pool's report (timeout and the last connection error).
        message: String,
    },

    /// The PostgreSQL tables of a store were migrated by a newer recops.
    #[error(
        "the PostgreSQL tables of the {store} store are at schema version {found}, newer than \
         this recops knows ({known}); upgrade recops"
    )]
    SchemaTooNew {
        /// The store (`pipeline`, `training`, `service`).
        store: &'static str,
        /// The version in the database.
        found: i32,
        /// The newest version this build knows.
        known: i32,
    },

    /// After a copy between stores, a table differs (count or checksum).
    #[error(
        "verification failed for {table}: {source_rows} source rows, {destination_rows} in the \
         destination, or their checksums differ; the destination holds rows the source lacks \
         or changed during the copy"
    )]
    MigrationMismatch {
        /// The table.
        table: &'static str,
        /// Rows in the source.
        source_rows: usize,
        /// Rows in the destination.
        destination_rows: usize,
    },

    /// A lock file operation failed.
    #[error("lock {path}")]
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
