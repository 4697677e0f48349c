/// Errors of the automation jobs.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A core problem (paths, config).
    #[error(transparent)]
    Core(#[from] recops_core::Error),
    /// A tracking problem (databases, locks).
    #[error(transparent)]
    Tracking(#[from] recops_tracking::Error),
    /// A file or process operation failed.
    #[error("{action}: {path}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file concerned.
        path: std::path::PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// An embeddings problem (model, runtime, catalog, embeddings file).
    #[error(transparent)]
    Embeddings(#[from] recops_embeddings::Error),
}

/// `Result` with [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;
