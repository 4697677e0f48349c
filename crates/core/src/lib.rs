//! recops-core: the foundation every recops crate and binary stands on.
//!
//! - [`Home`]: the home folder and every path in it (the only place that knows them).
//! - [`load_config`] / [`parse_config`]: YAML and JSON config with `${VAR}` and
//!   `${VAR:-default}` substitution, unknown-key rejection, and errors that name the
//!   file, the key path and what was expected; [`Validate`] for semantic checks.
//! - [`RecopsConfig`]: `config/recops.yaml` (service address, logging, locks, health).
//! - [`ModelId`]: a model id, validated once where it enters (parse, serde).
//! - [`Clock`], [`SystemClock`], [`FixedClock`]: time as a dependency, so tests never sleep.
//! - [`write_atomic`]: temp file in the same folder, fsync, rename.
//! - [`LogFile`]: spec-format text logs (`YYYY-MM-DD HH:MM:SS | LEVEL | message`),
//!   rotated daily with a bounded number of kept files.
//! - [`telemetry::init`]: the `tracing` subscriber of a binary (stderr + log file).
//! - [`faults::point`]: named fault points that tests arm (`RECOPS_FAULT_POINT`) to
//!   kill or stall a process at an exact step; no-ops otherwise.
//! - [`procid::ProcessIdentity`]: a pid with its boot id and start time, so a reused
//!   pid is never taken for the process recorded.
//! - `sqlite::open` (feature `sqlite`): the SQLite stores opened alike (WAL, busy
//!   timeout, header check, `user_version` migrations).
//!
//! ```
//! use recops_core::{Home, RecopsConfig, write_atomic};
//!
//! let dir = tempfile::tempdir()?;
//! let home = Home::new(dir.path());
//! // No config file in the home: the built-in default applies.
//! let config = RecopsConfig::load(&home)?;
//! assert_eq!(config.service.port, 8000);
//! write_atomic(&home.registry(), br#"{"current_best": null, "models": {}}"#)?;
//! assert!(home.registry().exists());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod clock;
mod config;
mod error;
pub mod faults;
mod fsutil;
mod home;
mod ids;
mod logfile;
mod model_id;
pub mod procid;
mod settings;
#[cfg(feature = "sqlite")]
pub mod sqlite;
pub mod telemetry;
#[cfg(feature = "tls")]
pub mod tls;
mod vocab;

pub use clock::{Clock, FixedClock, SharedClock, SystemClock, format_timestamp, parse_timestamp};
pub use config::{
    ConfigFormat, EnvSource, ProcessEnv, Validate, load_config, load_config_with_env, parse_config,
};
pub use error::{Error, Result, error_chain};
pub use fsutil::{
    commit_temp, ensure_dir, ensure_parent, sync_parent, temp_path_for, validate_name,
    write_atomic, write_atomic_with,
};
pub use home::{HOME_ENV, Home};
pub use ids::absent_id;
pub use logfile::{
    LogFile, LogFileOptions, LogLevel, format_line, format_line_in, rotated_files, set_log_timezone,
};
pub use model_id::ModelId;
pub use settings::{
    DEFAULT_RECOPS_CONFIG, DriftSettings, HealthSettings, LockSettings, LoggingSettings,
    RecopsConfig, RetentionSettings, STORAGE_URL_ENV, ServiceSettings, StorageSettings, StorageUrl,
};
pub use vocab::{ModelType, Severity};
