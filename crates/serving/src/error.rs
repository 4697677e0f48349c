use std::path::PathBuf;

/// Errors of recops-serving.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A core problem (paths, config).
    #[error(transparent)]
    Core(#[from] recops_core::Error),

    /// A tracking problem (the service metrics database).
    #[error(transparent)]
    Tracking(#[from] recops_tracking::Error),

    /// The model id is not a registered, loadable model.
    #[error("model {model_id} cannot be loaded: {reason}")]
    ModelUnavailable {
        /// The id asked for.
        model_id: String,
        /// Why (not in the registry, archived, files missing, ...).
        reason: String,
    },

    /// The model files load but the model is not fit to serve.
    #[error("model {model_id} is invalid: {reason}")]
    InvalidModel {
        /// The model.
        model_id: String,
        /// What is wrong.
        reason: String,
    },

    /// The service could not bind or serve.
    #[error("cannot serve on {addr}")]
    Bind {
        /// The address.
        addr: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },

    /// The service would listen beyond this machine with `/reload_model` open.
    #[error(
        "refusing to serve on {addr} without an admin token: set RECOPS_ADMIN_TOKEN, bind a loopback address, or pass --allow-unauthenticated"
    )]
    Unauthenticated {
        /// The non-loopback address.
        addr: String,
    },

    /// A file could not be read.
    #[error("cannot read {path}: {message}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
}

/// `Result` with [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;
