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
