/// Errors of the automation jobs.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A core problem (paths, config).
    #[error(transparent)]
    Core(#[from] recops_core::Error),
    /// A tracking problem (databases, locks).
    #[error(transparent)]
    Tracking(#[from] recops_tracking::Error),
}

/// `Result` with [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;
