/// Errors of the automation jobs.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A core problem (paths, config).
    #[error(transparent)]
    Core(#[from] recops_core::Error),
    /// A tracking problem (databases, locks).
    #[error(transparent)]
    Tracking(#[from] recops_tracking::Error),
    /// A training problem (data, config, divergence, model files).
    #[error(transparent)]
    Training(#[from] recops_cf_training::Error),
    /// A registry problem.
    #[error(transparent)]
    Registry(#[from] recops_registry::Error),
    /// The training data could not be loaded.
    #[error("cannot load the training data: {0}")]
    Data(String),
    /// A request the job cannot honour.
    #[error("{0}")]
    Unsupported(String),
}

/// `Result` with [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;
