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
    #[error("model {model_id} cannot be loaded")]
    ModelUnavailable {
        /// The id asked for.
        model_id: String,
        /// Why (not in the registry, archived, files missing, ...).
        #[source]
        reason: Unavailable,
    },

    /// The registry could not be read to find the model to start from.
    #[error("cannot read the registry to find the deployed model")]
    Registry(#[source] recops_registry::Error),

    /// The model's files do not load (corrupt, truncated, shapes that disagree).
    #[error("model {model_id} is invalid")]
    ModelFiles {
        /// The model.
        model_id: String,
        /// The load error, naming the file.
        #[source]
        source: recops_cf_training::Error,
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

/// Why a model cannot be served (the source of [`Error::ModelUnavailable`]).
#[derive(Debug, thiserror::Error)]
pub enum Unavailable {
    /// No model with this id is registered.
    #[error("not in the registry")]
    NotRegistered,
    /// The model is archived or rejected in the registry.
    #[error("archived in the registry")]
    Archived,
    /// The registry entry is there but the model's files are not.
    #[error("its files are missing in {0}")]
    MissingFiles(PathBuf),
    /// A file of the model cannot be read or differs from the checksum the registry
    /// recorded at registration (the source names the file, relative to the model
    /// folder).
    #[error("its files do not match the registry")]
    Damaged(#[source] recops_registry::Error),
    /// The registry refuses the model for another reason, or cannot be read.
    #[error("the registry refuses it")]
    Registry(#[source] recops_registry::Error),
    /// Writing the deployment record of a direct reload failed.
    #[error("the deployment record could not be written")]
    Record(#[source] recops_registry::Error),
    /// The blocking task that checks or loads the model failed (panicked or was
    /// cancelled).
    #[error("the {what} task failed")]
    Task {
        /// `servable check` or `loading`.
        what: &'static str,
        /// The join error.
        #[source]
        source: tokio::task::JoinError,
    },
}

/// `Result` with [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;
