/// Errors of the automation jobs.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A core problem (paths, config).
    #[error(transparent)]
    Core(#[from] recops_core::Error),
    /// A tracking problem (databases, locks).
    #[error(transparent)]
    Tracking(#[from] recops_tracking::Error),
    /// A data problem (staging files, processed data).
    #[error(transparent)]
    Data(#[from] recops_data::Error),

    /// A tracked job run failed; the run is recorded as failed and an alert was sent.
    #[error("{pipeline} run {} failed", run_id.as_deref().unwrap_or("(not recorded)"))]
    JobFailed {
        /// The pipeline (`data_refresh`, ...).
        pipeline: &'static str,
        /// The run id in `logs/pipeline_metrics.db` (none when it could not be recorded).
        run_id: Option<String>,
        /// Why.
        #[source]
        source: Box<Error>,
    },

    /// The job was skipped where a result was needed.
    #[error("{message}")]
    Skipped {
        /// The skip message.
        message: String,
    },

    /// A training problem (data, config, divergence, model files).
    #[error(transparent)]
    Training(#[from] recops_cf_training::Error),
    /// A drift detection problem (processed data, report).
    #[error(transparent)]
    Drift(#[from] recops_drift::Error),
    /// A registry problem.
    #[error(transparent)]
    Registry(#[from] recops_registry::Error),
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
    /// A deployment problem (service, history file).
    #[error(transparent)]
    Deploy(#[from] recops_deploy::Error),
    /// The registry has no `current_best` model to deploy.
    #[error("the registry has no current_best model: run model-training first")]
    NoCurrentBest,
    /// The model to deploy is not in the registry.
    #[error("model {model_id} is not in the registry")]
    ModelNotRegistered {
        /// The model id asked for.
        model_id: recops_core::ModelId,
    },
    /// The model to deploy is archived in the registry.
    #[error("model {model_id} is archived in the registry")]
    ModelArchived {
        /// The model id asked for.
        model_id: recops_core::ModelId,
    },
    /// No pipeline or training run has this id.
    #[error("no run {run_id} in {store}")]
    RunNotFound {
        /// The id asked for.
        run_id: String,
        /// The database searched (file or URL).
        store: String,
    },
    /// A command-line value is not usable.
    #[error("invalid {what}: {message}")]
    InvalidArgument {
        /// The option.
        what: &'static str,
        /// What is wrong and what is expected.
        message: String,
    },
    /// An embeddings problem (model, runtime, catalog, embeddings file).
    #[error(transparent)]
    Embeddings(#[from] recops_embeddings::Error),
}

/// `Result` with [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;
