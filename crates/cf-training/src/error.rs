use std::path::PathBuf;

/// Errors of recops-cf-training.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A core problem (paths, config, atomic writes).
    #[error(transparent)]
    Core(#[from] recops_core::Error),

    /// A file could not be read or written.
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

    /// There is nothing to train on.
    #[error("no interactions to train {model_type} on: {detail}")]
    EmptyData {
        /// `als`, `bpr` or `bench`.
        model_type: String,
        /// Which part is empty.
        detail: String,
    },

    /// More factors than items: the factorisation would be degenerate.
    #[error(
        "factors ({factors}) exceeds the number of items ({items}); set model.factors to at most {items}"
    )]
    FactorsExceedItems {
        /// Configured factors.
        factors: usize,
        /// Items in the data.
        items: usize,
    },

    /// Training produced NaN or infinite values; the run stops and no model is written.
    #[error(
        "{model_type} training diverged at iteration {iteration}: {what} became NaN or infinite \
         (lower the learning rate or raise the regularization); the previous model is kept"
    )]
    Diverged {
        /// `als` or `bpr`.
        model_type: String,
        /// 1-based iteration.
        iteration: usize,
        /// What became non-finite (`loss`, `user factors`, `item factors`).
        what: &'static str,
    },

    /// The run was stopped on request after `iteration` (checkpoints stay for `--resume`).
    #[error(
        "training interrupted after iteration {iteration}; run again with --resume to continue"
    )]
    Interrupted {
        /// The last completed iteration.
        iteration: usize,
    },

    /// A value has the wrong shape.
    #[error("{what}: expected {expected}, got {got}")]
    ShapeMismatch {
        /// What was checked.
        what: String,
        /// The expected shape.
        expected: String,
        /// The shape found.
        got: String,
    },

    /// A model or checkpoint file is unreadable or inconsistent.
    #[error("invalid model file {path}: {message}")]
    ModelFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },

    /// The model folder of this id already holds a complete model: a registered model
    /// is never written again.
    #[error("model {model_id} already exists; its folder is never rewritten")]
    ModelExists {
        /// The model id.
        model_id: recops_core::ModelId,
    },

    /// A checkpoint cannot be used to resume.
    #[error("cannot resume from checkpoint {path}: {message}")]
    Checkpoint {
        /// The checkpoint file.
        path: PathBuf,
        /// Why.
        message: String,
    },

    /// A CSV row could not be read.
    #[error("{path} line {line}: {message}")]
    Csv {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong and what was expected.
        message: String,
    },

    /// Invalid input to a function.
    #[error("invalid {what}: {message}")]
    InvalidInput {
        /// What was invalid.
        what: &'static str,
        /// Why.
        message: String,
    },

    /// The thread pool could not be built.
    #[error("cannot start {threads} training threads: {message}")]
    ThreadPool {
        /// Threads asked for.
        threads: usize,
        /// Why.
        message: String,
    },
}

/// `Result` with [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Builds an [`Error::Io`].
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }
}
