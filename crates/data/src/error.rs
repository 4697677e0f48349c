/// Errors of recops-data.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A core problem (paths, config, atomic writes).
    #[error(transparent)]
    Core(#[from] recops_core::Error),
}

/// `Result` with [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;
