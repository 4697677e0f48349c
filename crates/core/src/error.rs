use std::path::PathBuf;

/// Errors of recops-core.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file system operation failed on `path`.
    #[error("{action} {path}{hint}", hint = io_hint(source))]
    Io {
        /// What was being done ("cannot create directory", "cannot read", ...).
        action: &'static str,
        /// The file or folder concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// A config file is invalid: it does not parse, has an unknown key, a wrong type,
    /// or a value that fails validation.
    #[error("invalid config {file}{at}: {message}", at = key_suffix(key))]
    Config {
        /// The config file (or `<built-in default>` for the embedded copy).
        file: PathBuf,
        /// Dotted key path of the offending value, when known (`alerts.high_latency.threshold`).
        key: Option<String>,
        /// What is wrong and what was expected.
        message: String,
    },

    /// A `${VAR}` reference in a config file names an environment variable that is not set
    /// and has no default.
    #[error(
        "invalid config {file} line {line}: environment variable {var} is not set \
         (write ${{{var}:-default}} to give a default)"
    )]
    MissingEnvVar {
        /// The config file.
        file: PathBuf,
        /// 1-based line of the reference.
        line: usize,
        /// The variable name.
        var: String,
    },

    /// A name used to build a path (model id, pipeline name, ...) is not a plain name.
    #[error(
        "invalid {what} {value:?}: expected 1 to 128 characters, only lowercase ASCII letters, digits and '_'"
    )]
    InvalidName {
        /// What kind of name it is ("model_id", "pipeline name").
        what: &'static str,
        /// The rejected value.
        value: String,
    },

    /// A value of a small vocabulary (severity, model type) is not one of its words.
    #[error("invalid {what} {value:?}: expected {expected}")]
    InvalidValue {
        /// What kind of value ("severity", "model type").
        what: &'static str,
        /// The rejected text.
        value: String,
        /// What is accepted.
        expected: &'static str,
    },

    /// Telemetry was initialised twice or could not be installed.
    #[error("cannot initialise logging: {0}")]
    Telemetry(String),

    /// The file at `path` exists but is not an SQLite database. It is left untouched.
    #[cfg(feature = "sqlite")]
    #[error(
        "{path} is not an SQLite database (corrupt or another kind of file); it was left \
         untouched: move it aside to let recops create a new one"
    )]
    NotADatabase {
        /// The database path.
        path: PathBuf,
    },

    /// An SQLite operation on the database at `path` failed.
    #[cfg(feature = "sqlite")]
    #[error("database {path}")]
    Sqlite {
        /// The database path.
        path: PathBuf,
        /// The SQLite error.
        #[source]
        source: rusqlite::Error,
    },

    /// The database was written by a newer recops (its schema version is unknown here).
    #[cfg(feature = "sqlite")]
    #[error(
        "database {path} has schema version {found}, newer than this recops understands ({supported}); upgrade recops"
    )]
    DatabaseTooNew {
        /// The database path.
        path: PathBuf,
        /// The version found in the file.
        found: i64,
        /// The newest version this build knows.
        supported: i64,
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

/// An error and its causes as one line, `a: b: c`, for logs, run records and alerts.
///
/// Messages in recops do not repeat their `#[source]`; a cause whose text the line
/// already shows (third-party errors that print their cause) is still left out, so
/// nothing is said twice.
///
/// ```
/// let e = recops_core::Error::io("cannot read", "x.csv", std::io::Error::other("disk full"));
/// assert_eq!(recops_core::error_chain(&e), "cannot read x.csv: disk full");
/// ```
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let part = cause.to_string();
        if !part.is_empty() && !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = cause.source();
    }
    text
}

fn io_hint(source: &std::io::Error) -> &'static str {
    match source.kind() {
        std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem => {
            " (is the recops home read-only? check its permissions or pass another --home)"
        }
        _ => "",
    }
}

fn key_suffix(key: &Option<String>) -> String {
    match key {
        Some(k) if !k.is_empty() && k != "." => format!(" at key `{k}`"),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer step failed")]
    struct Outer(#[source] Error);

    #[derive(Debug, thiserror::Error)]
    #[error("repeats: {0}")]
    struct Repeats(#[source] std::io::Error);

    #[test]
    fn error_chains_are_one_line_without_repeats() {
        let io = || std::io::Error::other("bad sector");
        let e = Outer(Error::io("cannot read", "y", io()));
        assert_eq!(
            error_chain(&e),
            "outer step failed: cannot read y: bad sector"
        );
        assert_eq!(error_chain(&Repeats(io())), "repeats: bad sector");
    }

    #[test]
    fn permission_errors_name_the_path_and_suggest_the_cause() {
        let e = Error::io(
            "cannot create directory",
            "/srv/recops/logs",
            std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        );
        let msg = error_chain(&e);
        assert!(
            msg.starts_with(
                "cannot create directory /srv/recops/logs (is the recops home read-only?"
            ),
            "{msg}"
        );
        assert!(msg.ends_with("): permission denied"), "{msg}");
        let other = Error::io(
            "cannot read",
            "/x",
            std::io::Error::from(std::io::ErrorKind::NotFound),
        );
        assert!(!other.to_string().contains("read-only"));
    }
}
