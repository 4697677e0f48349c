//! PostgreSQL plumbing shared by the stores: one pool per URL per process, versioned
//! migrations, and transactions retried on serialization failures and deadlocks.
//!
//! Driver: `postgres` (rust-postgres, the synchronous client over tokio-postgres,
//! maintained with it) and the `r2d2` pool through `r2d2_postgres` (same author). The
//! stores are synchronous like the SQLite ones, so no async runtime leaks into callers.

use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use postgres::error::SqlState;
use postgres::{NoTls, Transaction};
use r2d2_postgres::PostgresConnectionManager;

use crate::error::{Error, Result};

type Pool = r2d2::Pool<PostgresConnectionManager<NoTls>>;

/// The environment variable holding the PostgreSQL password (libpq's own).
pub const PASSWORD_ENV: &str = "PGPASSWORD";

/// How long one attempt to connect to PostgreSQL may take (when the URL sets no
/// `connect_timeout`). The first connection of a pool is tried directly, so an
/// unreachable server is reported after at most this long (at once when the port is
/// closed), with the driver's reason and the URL.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How many times a transaction is tried when PostgreSQL reports a serialization
/// failure or a deadlock.
const ATTEMPTS: u32 = 8;

/// A PostgreSQL database holding the stores: a connection pool shared by every store
/// of this process opened on the same URL. Cheap to clone.
#[derive(Clone)]
pub struct PgDatabase {
    pool: Pool,
    config: Arc<postgres::Config>,
    url: Arc<str>,
    migrated: Arc<Mutex<HashSet<&'static str>>>,
}

impl std::fmt::Debug for PgDatabase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgDatabase")
            .field("url", &self.url)
            .finish()
    }
}

impl PgDatabase {
    /// The pool for `url` (a `postgres://` URL without password, see
    /// [`recops_core::StorageUrl`]), created on first use in this process. The
    /// password, if any, comes from `PGPASSWORD`.
    pub fn connect(url: &str) -> Result<PgDatabase> {
        static POOLS: OnceLock<Mutex<HashMap<String, PgDatabase>>> = OnceLock::new();
        let pools = POOLS.get_or_init(Default::default);
        let mut pools = pools.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(db) = pools.get(url) {
            return Ok(db.clone());
        }
        let db = Self::connect_new(url)?;
        pools.insert(url.to_owned(), db.clone());
        Ok(db)
    }

    /// A new pool for `url`, not shared (tests and `storage migrate`).
    pub fn connect_new(url: &str) -> Result<PgDatabase> {
        let mut config =
            postgres::Config::from_str(url).map_err(|e| Error::Core(bad_url(e.to_string())))?;
        if config.get_password().is_none()
            && let Ok(pw) = std::env::var(PASSWORD_ENV)
        {
            config.password(pw);
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        config.application_name("recops");
        let manager = PostgresConnectionManager::new(config.clone(), NoTls);
        // Fail now, with the URL and the reason, rather than after the pool's checkout
        // timeout (it retries an unreachable server for its whole 15 s).
        {
            use r2d2::ManageConnection;
            drop(manager.connect().map_err(|e| Error::PostgresPool {
                url: url.to_owned(),
                message: recops_core::error_chain(&e),
            })?);
        }
        let pool = r2d2::Pool::builder()
            .max_size(8)
            .min_idle(Some(0))
            .connection_timeout(Duration::from_secs(15))
            // Broken connections are dropped on error; skip the extra round trip.
            .test_on_check_out(false)
            .build_unchecked(manager);
        let db = PgDatabase {
            pool,
            config: Arc::new(config),
            url: Arc::from(url),
            migrated: Arc::default(),
        };
        Ok(db)
    }

    /// The URL (it never holds a password).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A connection from the pool (returned to it on drop), for the stores of other
    /// crates (alert state, scheduler state, registry, deployments); queries take
    /// parameters only.
    pub fn conn(&self) -> Result<r2d2::PooledConnection<PostgresConnectionManager<NoTls>>> {
        self.pool.get().map_err(|e| Error::PostgresPool {
            url: self.url.to_string(),
            message: e.to_string(),
        })
    }

    /// A new connection outside the pool, closed when dropped: for session state that
    /// must live exactly as long as its owner (the advisory lock of a
    /// [`PipelineLock`](crate::PipelineLock)), so a killed owner releases it.
    pub fn dedicated(&self) -> Result<postgres::Client> {
        self.config.connect(NoTls).map_err(self.on())
    }

    /// Maps a driver error.
    pub fn err(&self, e: postgres::Error) -> Error {
        Error::Postgres {
            url: self.url.to_string(),
            source: e,
        }
    }

    /// A closure mapping driver errors of this database.
    pub fn on(&self) -> impl Fn(postgres::Error) -> Error + '_ {
        move |e| self.err(e)
    }

    /// Runs `f` in a transaction, committing when it returns `Ok`; a serialization
    /// failure or deadlock rolls back and runs `f` again (up to 8 times).
    pub fn transaction<T>(&self, f: impl FnMut(&mut Transaction<'_>) -> Result<T>) -> Result<T> {
        self.transaction_of(f, |e| Some(e))
    }

    /// [`PgDatabase::transaction`] for a store of another crate with its own error
    /// type: `database` says which of its errors are this database's (retried when
    /// retryable); any other error of `f` rolls back and is returned unchanged.
    pub fn transaction_of<T, E: From<Error>>(
        &self,
        mut f: impl FnMut(&mut Transaction<'_>) -> std::result::Result<T, E>,
        database: impl Fn(&E) -> Option<&Error>,
    ) -> std::result::Result<T, E> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut conn = self.conn()?;
            let result = conn
                .transaction()
                .map_err(|e| E::from(self.err(e)))
                .and_then(|mut tx| {
                    let value = f(&mut tx)?;
                    tx.commit().map_err(|e| E::from(self.err(e)))?;
                    Ok(value)
                });
            match result {
                Err(e) if attempt < ATTEMPTS && database(&e).is_some_and(is_retryable) => {
                    let e = database(&e).map(ToString::to_string).unwrap_or_default();
                    tracing::debug!(attempt, error = %e, "retrying a PostgreSQL transaction");
                    // Spread the retries of competing writers.
                    let jitter = u64::from(uuid::Uuid::new_v4().as_bytes()[0] % 8);
                    std::thread::sleep(Duration::from_millis((1 << attempt) + jitter));
                }
                other => return other,
            }
        }
    }

    /// Whether the tables of `store` exist, without creating or migrating anything:
    /// false when no migration of it is recorded; [`Error::SchemaTooNew`] when the
    /// database is newer than `migrations`.
    pub fn schema_present(&self, store: &'static str, migrations: &[&str]) -> Result<bool> {
        let newest = i32::try_from(migrations.len()).unwrap_or(i32::MAX);
        let mut conn = self.conn()?;
        let on = self.on();
        let has_table: bool = conn
            .query_one(
                "SELECT to_regclass('recops_schema_migrations') IS NOT NULL",
                &[],
            )
            .map_err(&on)?
            .get(0);
        if !has_table {
            return Ok(false);
        }
        let current: i32 = conn
            .query_one(
                "SELECT COALESCE(MAX(version), 0) FROM recops_schema_migrations WHERE store = $1",
                &[&store],
            )
            .map_err(&on)?
            .get(0);
        if current > newest {
            return Err(Error::SchemaTooNew {
                store,
                found: current,
                known: newest,
            });
        }
        Ok(current > 0)
    }

    /// Brings the tables of `store` to the newest version: `migrations[i]` takes it
    /// from version i to i + 1. Versions are rows of `recops_schema_migrations`;
    /// concurrent openers wait on an advisory lock, so each step runs once.
    pub fn migrate(&self, store: &'static str, migrations: &[&str]) -> Result<()> {
        {
            let done = self.migrated.lock().unwrap_or_else(PoisonError::into_inner);
            if done.contains(store) {
                return Ok(());
            }
        }
        let newest = i32::try_from(migrations.len()).unwrap_or(i32::MAX);
        self.transaction(|tx| {
            let on = self.on();
            tx.execute("SELECT pg_advisory_xact_lock(7262730101)", &[])
                .map_err(&on)?;
            tx.batch_execute(
                "CREATE TABLE IF NOT EXISTS recops_schema_migrations (
                    store TEXT NOT NULL,
                    version INTEGER NOT NULL,
                    applied_at TEXT NOT NULL,
                    PRIMARY KEY (store, version)
                )",
            )
            .map_err(&on)?;
            let current: i32 = tx
                .query_one(
                    "SELECT COALESCE(MAX(version), 0) FROM recops_schema_migrations WHERE store = $1",
                    &[&store],
                )
                .map_err(&on)?
                .get(0);
            if current > newest {
                return Err(Error::SchemaTooNew {
                    store,
                    found: current,
                    known: newest,
                });
            }
            for (i, sql) in migrations.iter().enumerate().skip(current as usize) {
                tx.batch_execute(sql).map_err(&on)?;
                let version = i32::try_from(i + 1).unwrap_or(i32::MAX);
                tx.execute(
                    "INSERT INTO recops_schema_migrations (store, version, applied_at) VALUES ($1, $2, $3)",
                    &[&store, &version, &recops_core::format_timestamp(chrono::Utc::now())],
                )
                .map_err(&on)?;
                tracing::info!(store, version, url = %self.url, "PostgreSQL schema migrated");
            }
            Ok(())
        })?;
        self.migrated
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(store);
        Ok(())
    }
}

fn bad_url(message: String) -> recops_core::Error {
    recops_core::Error::Config {
        file: "storage.url".into(),
        key: Some("storage.url".into()),
        message: format!("not a PostgreSQL URL: {message}"),
    }
}

fn is_retryable(e: &Error) -> bool {
    matches!(e, Error::Postgres { source, .. }
        if source.code() == Some(&SqlState::T_R_SERIALIZATION_FAILURE)
            || source.code() == Some(&SqlState::T_R_DEADLOCK_DETECTED))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreachable_server_is_reported_with_the_url_and_the_reason() {
        // A port nothing listens on: bound, then released.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("postgres://recops@127.0.0.1:{port}/recops");
        let err = PgDatabase::connect_new(&url).unwrap_err();
        let text = recops_core::error_chain(&err);
        assert!(matches!(err, Error::PostgresPool { .. }), "{err:?}");
        assert!(text.contains(&url), "{text}");
        assert!(text.to_lowercase().contains("refused"), "{text}");
        // The direct attempt, not the pool's checkout timeout.
        assert!(!text.contains("timed out waiting for connection"), "{text}");
    }
}
