use std::path::PathBuf;

/// Errors of recops-scheduler.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A config, path or file problem reported by recops-core (an invalid
    /// `scheduler_config.json` names the file, the key and the reason), or a scheduler
    /// state database problem (see [`recops_core::sqlite`]).
    #[error(transparent)]
    Core(#[from] recops_core::Error),

    /// The pipeline tracker or a lock failed.
    #[error(transparent)]
    Tracking(#[from] recops_tracking::Error),

    /// A job id that the config does not define.
    #[error("unknown job {job:?}: {file} defines {known}")]
    UnknownJob {
        /// The id asked for.
        job: String,
        /// The config file.
        file: PathBuf,
        /// The ids it defines, comma-separated.
        known: String,
    },

    /// Another scheduler already runs on this home.
    #[error(
        "another scheduler is already running on this home (pid {pid} on {host}, since {since}); \
         stop it first, or use `scheduler --run-now JOB` for a one-off run"
    )]
    AlreadyRunning {
        /// Its process id.
        pid: u32,
        /// Its host.
        host: String,
        /// When it started (RFC 3339).
        since: String,
    },

    /// The job is running now (started by the scheduler or another `--run-now`).
    #[error(
        "job {job} is already running (process group {pgid}, run {run_id}); not starting another"
    )]
    JobRunning {
        /// The job id.
        job: String,
        /// Its process group.
        pgid: i64,
        /// Its pipeline run.
        run_id: String,
    },

    /// The job's program could not be started.
    #[error("cannot start job {job} ({binary})")]
    Spawn {
        /// The job id.
        job: String,
        /// The program.
        binary: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },

    /// The leader lease was asked of a store that has none (embedded SQLite is single
    /// host).
    #[error("scheduler failover needs a shared database: set storage.url to PostgreSQL")]
    FailoverUnsupported,

    /// A row of the scheduler state in PostgreSQL could not be read.
    #[error("scheduler state row in {url}")]
    StateRow {
        /// The database (no password).
        url: String,
        /// The driver's error.
        #[source]
        source: postgres::Error,
    },

    /// A file or process operation failed.
    #[error("{action}")]
    Io {
        /// What was being done.
        action: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// `Result` with [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;
