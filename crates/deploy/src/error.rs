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

    /// The PostgreSQL history could not be reached, read or written.
    #[error(transparent)]
    Storage(Box<recops_tracking::Error>),

    /// `storage migrate` found a destination that is not a copy of the source.
    #[error("cannot copy {table}: {message}")]
    Migration {
        /// `registry_models`, `registry_audit` or `deployment_history`.
        table: &'static str,
        /// What is wrong.
        message: String,
    },

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

impl From<recops_tracking::Error> for Error {
    fn from(e: recops_tracking::Error) -> Self {
        Error::Storage(Box::new(e))
    }
}

/// `Result` with [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;
