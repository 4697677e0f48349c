use std::path::PathBuf;

/// Errors of recops-drift.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A core problem (paths, atomic writes).
    #[error(transparent)]
    Core(#[from] recops_core::Error),

    /// A report could not be produced.
    #[error("cannot write drift report {path}: {message}")]
    Report {
        /// The report file.
        path: PathBuf,
        /// Why.
        message: String,
    },
}

/// `Result` with [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;
