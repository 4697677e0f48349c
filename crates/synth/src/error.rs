use std::path::PathBuf;

/// Errors of recops-synth.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A core problem (paths, atomic writes).
    #[error(transparent)]
    Core(#[from] recops_core::Error),

    /// A file system operation failed on `path`.
    #[error("{action} {path}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file or folder concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// A generator setting is out of range.
    #[error("invalid generator setting {field}: {message}")]
    InvalidConfig {
        /// The setting (`users`, `drift.trending_share`, ...).
        field: &'static str,
        /// What was expected.
        message: String,
    },
}

/// `Result` with [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;
