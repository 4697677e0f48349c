use std::path::PathBuf;

/// Errors of recops-deploy. Service failures during a deployment are not errors: they
/// are recorded as a failed deployment. Errors are what prevents recording at all.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A core problem (paths, atomic writes).
    #[error(transparent)]
    Core(#[from] recops_core::Error),

    /// The registry could not be read or written (the deployed-state record).
    #[error(transparent)]
    Registry(#[from] recops_registry::Error),

    /// The deployment history file exists but cannot be read as the spec's format. It
    /// is left untouched.
    #[error(
        "deployment history {path} is not valid ({message}); it was left untouched: fix or move it aside"
    )]
    CorruptHistory {
        /// The history file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },

    /// The HTTP client could not be built.
    #[error("cannot create the HTTP client: {0}")]
    Client(String),

    /// Nothing to roll back to.
    #[error("cannot roll back: {0}")]
    NoRollbackTarget(String),
}

/// `Result` with [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;
