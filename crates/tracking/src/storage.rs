//! [`Storage`]: which backend the stores of a home use (`storage.url`).

use recops_core::{Home, RecopsConfig, StorageUrl};

use crate::error::Result;
use crate::pg::PgDatabase;

/// The backend of a home's stores, from `RECOPS_STORAGE_URL` or `storage.url` of
/// `config/recops.yaml`.
#[derive(Debug, Clone)]
pub enum Storage {
    /// SQLite files under `logs/` (the default).
    Embedded,
    /// A PostgreSQL database (its pool is shared by the stores of this process).
    Postgres(PgDatabase),
}

impl Storage {
    /// Resolves and, for PostgreSQL, connects (once per process and URL).
    pub fn of(home: &Home) -> Result<Storage> {
        Self::from_url(&RecopsConfig::storage(home)?)
    }

    /// The backend of a parsed URL.
    pub fn from_url(url: &StorageUrl) -> Result<Storage> {
        Ok(match url {
            StorageUrl::Embedded => Storage::Embedded,
            StorageUrl::Postgres(url) => Storage::Postgres(PgDatabase::connect(url)?),
        })
    }

    /// The database for messages: `embedded` or the URL (never a password).
    pub fn describe(&self) -> String {
        match self {
            Storage::Embedded => "embedded".into(),
            Storage::Postgres(db) => db.url().to_owned(),
        }
    }
}
