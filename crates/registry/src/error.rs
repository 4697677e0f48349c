use std::path::PathBuf;

use recops_core::ModelId;

/// Errors of recops-registry.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A core problem (paths, names, atomic writes).
    #[error(transparent)]
    Core(#[from] recops_core::Error),

    /// The PostgreSQL registry could not be reached, read or written.
    #[error(transparent)]
    Storage(Box<recops_tracking::Error>),

    /// A file of the model differs from the checksum the registry recorded for it:
    /// the replica refuses to serve it. `file` is relative to the model folder.
    #[error(
        "model {model_id}: file {file} differs from the checksum recorded in the registry (a torn copy or a damaged artifacts mount?)"
    )]
    ChecksumMismatch {
        /// The model.
        model_id: ModelId,
        /// The file, relative to the model folder.
        file: String,
    },

    /// A file of the model that the registry's checksum lists cannot be read.
    #[error("model {model_id}: cannot read its file {file}")]
    FileUnreadable {
        /// The model.
        model_id: ModelId,
        /// The file, relative to the model folder.
        file: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// A file operation failed.
    #[error("{action} {path}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// `registry.json` exists but is not a registry; it is left untouched.
    #[error("invalid registry {path}: {message} (the file was not changed; fix or move it)")]
    Corrupt {
        /// The registry file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },

    /// No model with this id is registered.
    #[error("model {model_id} is not in the registry")]
    NotFound {
        /// The id asked for.
        model_id: ModelId,
    },

    /// The id is registered already.
    #[error("model {model_id} is already registered")]
    AlreadyRegistered {
        /// The id.
        model_id: ModelId,
    },

    /// An archived or rejected model cannot be deployed, promoted or served.
    #[error("model {model_id} is archived or rejected in the registry")]
    NotServable {
        /// The id.
        model_id: ModelId,
    },

    /// An archived model cannot become current_best.
    #[error("model {model_id} is archived; only active models can be promoted or deployed")]
    Archived {
        /// The id.
        model_id: ModelId,
    },

    /// The model's folder is gone.
    #[error("model {model_id} has no files at {path}")]
    MissingFiles {
        /// The id.
        model_id: ModelId,
        /// The folder expected.
        path: PathBuf,
    },

    /// The model is in use and cannot be archived.
    #[error(
        "model {model_id} is {role}; it cannot be archived (deploy or promote another model first)"
    )]
    InUse {
        /// The id.
        model_id: ModelId,
        /// `the deployed model` or `the champion (current_best)`.
        role: &'static str,
    },
}

impl From<recops_tracking::Error> for Error {
    fn from(e: recops_tracking::Error) -> Self {
        Error::Storage(Box::new(e))
    }
}

/// `Result` with [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }
}
