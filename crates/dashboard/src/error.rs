//! The dashboard's error type.

use std::path::PathBuf;

/// What can go wrong when starting or running the dashboard.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The address could not be bound.
    #[error("cannot listen on {addr}")]
    Bind {
        /// `host:port`.
        addr: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A non-loopback address without an admin token.
    #[error(
        "refusing to listen on {host}: it is not a loopback address and RECOPS_ADMIN_TOKEN \
         is not set (set it, or use --host 127.0.0.1)"
    )]
    NotLoopback {
        /// The host asked for.
        host: String,
    },
    /// The server stopped with an error.
    #[error("the dashboard server failed")]
    Serve {
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A store of the home could not be prepared.
    #[error("cannot read {path}")]
    Store {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: rusqlite::Error,
    },
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
