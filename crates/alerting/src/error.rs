/// Errors of recops-alerting.
///
/// Delivery failures are never errors: [`AlertManager::send_alert`](crate::AlertManager::send_alert)
/// reports them per channel. Errors are config problems (at load) and alert-state
/// database problems (silences, listing).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A config, path or name problem reported by recops-core (the message names the
    /// file and key), or an alert state database problem (not SQLite, newer schema, an
    /// SQLite failure; see [`recops_core::sqlite`]).
    #[error(transparent)]
    Core(#[from] recops_core::Error),

    /// A PostgreSQL or store-copy problem of the alert store, reported by
    /// recops-tracking (the message names the URL; never a password).
    #[error(transparent)]
    Store(recops_tracking::Error),

    /// The alert state database could not be opened when the manager was loaded, so
    /// stateful operations (silences, state listing) are unavailable.
    #[error("alert state is unavailable: {reason}")]
    StateUnavailable {
        /// Why the database could not be opened.
        reason: String,
    },

    /// An argument is not acceptable (empty alert name, silence end in the past, bad
    /// duration).
    #[error("invalid {what}: {message}")]
    InvalidInput {
        /// What was wrong ("alert name", "duration", ...).
        what: &'static str,
        /// Why, and what was expected.
        message: String,
    },
}

impl From<recops_tracking::Error> for Error {
    /// SQLite and config problems keep their [`Error::Core`] shape.
    fn from(e: recops_tracking::Error) -> Self {
        match e {
            recops_tracking::Error::Core(core) => Error::Core(core),
            other => Error::Store(other),
        }
    }
}

/// `Result` with [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;
