/// Errors of recops-health. Checks never fail: a broken component is reported as
/// unhealthy. Errors are for what prevents a report (the home, the config).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A core problem (paths, config).
    #[error(transparent)]
    Core(#[from] recops_core::Error),
}

/// `Result` with [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;
