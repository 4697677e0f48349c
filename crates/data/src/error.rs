use std::path::PathBuf;

/// Errors of recops-data.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A core problem (paths, config, atomic writes).
    #[error(transparent)]
    Core(#[from] recops_core::Error),

    /// A file system operation failed on `path`.
    #[error("{action} {path}")]
    Io {
        /// What was being done ("cannot read", "cannot archive", ...).
        action: &'static str,
        /// The file or folder concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// A staging file cannot be ingested at all (not CSV/Parquet, a required column is
    /// missing, unreadable). The file is left where it is.
    #[error("cannot ingest staging file {file}: {reason}")]
    BadStagingFile {
        /// The staging file.
        file: PathBuf,
        /// What is wrong and what was expected.
        reason: String,
    },

    /// One or more staging files cannot be ingested; the refresh changed nothing.
    #[error(
        "{} staging file(s) cannot be ingested, nothing was changed (fix or remove them and run again): {}",
        problems.len(),
        problems.iter().map(|p| format!("{}: {}", p.file.display(), p.reason)).collect::<Vec<_>>().join("; ")
    )]
    BadStagingFiles {
        /// Each unusable file with its reason.
        problems: Vec<FileProblem>,
    },

    /// A Parquet file could not be read or written.
    #[error("parquet {path}")]
    Parquet {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: parquet::errors::ParquetError,
    },

    /// An `.npz` file is not a readable zip archive.
    #[error("npz file {path} is not a readable zip archive")]
    NotZip {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: zip::result::ZipError,
    },

    /// One entry of an `.npz` file cannot be read (decompression, CRC-32, `.npy`
    /// header or values) or written.
    #[error("npz file {path}, entry {entry}")]
    NpzEntry {
        /// The file.
        path: PathBuf,
        /// The entry (`data.npy`, ...).
        entry: String,
        /// The underlying error (`.npy` problems come as its `Io` variant).
        #[source]
        source: zip::result::ZipError,
    },

    /// A processed file exists but does not have the expected content.
    #[error("invalid {what} {path}: {reason}")]
    InvalidFile {
        /// What kind of file ("interactions table", "npz file", "mappings file").
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong and what was expected.
        reason: String,
    },

    /// There is no processed data yet.
    #[error("no processed interactions at {path}: run data-refresh first")]
    NoProcessedData {
        /// The missing `interactions.parquet`.
        path: PathBuf,
    },

    /// The outputs written by a refresh failed the post-write check.
    #[error("output validation failed for {path}: {reason}")]
    Validation {
        /// The output that failed.
        path: PathBuf,
        /// What did not match.
        reason: String,
    },
}

/// One staging file that cannot be ingested, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FileProblem {
    /// The staging file.
    pub file: PathBuf,
    /// What is wrong and what was expected.
    pub reason: String,
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

    pub(crate) fn parquet(path: impl Into<PathBuf>, source: parquet::errors::ParquetError) -> Self {
        Error::Parquet {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn invalid(
        what: &'static str,
        path: impl Into<PathBuf>,
        reason: impl Into<String>,
    ) -> Self {
        Error::InvalidFile {
            what,
            path: path.into(),
            reason: reason.into(),
        }
    }
}
