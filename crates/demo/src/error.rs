/// Errors of `recops demo` and `recops gen-data`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A core problem (paths, config).
    #[error(transparent)]
    Core(#[from] recops_core::Error),
    /// A job failed.
    #[error(transparent)]
    Automation(#[from] recops_automation::Error),
    /// A tracking problem (the service metrics database).
    #[error(transparent)]
    Tracking(#[from] recops_tracking::Error),
    /// The generator failed.
    #[error(transparent)]
    Generate(#[from] recops_synth::Error),
    /// A step of `recops demo` failed.
    #[error("{0}")]
    Step(String),
}

/// `Result` with [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;
