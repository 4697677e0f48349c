//! [`PipelineLock`](crate::PipelineLock) in PostgreSQL mode: a session-level advisory
//! lock (`pg_try_advisory_lock`) held on a connection of its own for the lock's
//! lifetime, so jobs on different hosts sharing the database exclude each other, and a
//! killed holder releases it when its connection closes. Who holds it is recorded in
//! `pipeline_lock_holders`, trusted only while that backend still holds the lock.

use postgres::Client;

use crate::error::Result;
use crate::lock::LockHolder;
use crate::pg::PgDatabase;

/// Versioned migrations of the lock store (store `locks` in
/// `recops_schema_migrations`): the holder record of each pipeline lock.
pub const PG_LOCK_MIGRATIONS: &[&str] = &["\
CREATE TABLE IF NOT EXISTS pipeline_lock_holders (
    pipeline TEXT PRIMARY KEY,
    holder TEXT NOT NULL,           -- LockHolder as JSON
    backend_pid INTEGER NOT NULL    -- pg_backend_pid() of the connection holding the lock
);
"];

/// The first key of every recops pipeline lock among the database's advisory locks
/// (ASCII `rcpl`), so other applications' advisory locks never collide with ours.
pub const PG_LOCK_NAMESPACE: i32 = 0x7263_706c;

/// The second key: the pipeline name hashed (xxh3) to 31 bits.
pub fn pg_lock_key(pipeline: &str) -> i32 {
    (xxhash_rust::xxh3::xxh3_64(pipeline.as_bytes()) & 0x7fff_ffff) as i32
}

/// A held advisory lock: its connection, unlocked and closed on drop.
pub(crate) struct PgHeld {
    client: Client,
    pipeline: String,
    key: i32,
}

impl std::fmt::Debug for PgHeld {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgHeld")
            .field("pipeline", &self.pipeline)
            .field("key", &self.key)
            .finish()
    }
}

impl Drop for PgHeld {
    fn drop(&mut self) {
        // Errors only mean the connection is gone, which releases the lock as well.
        let _ = self.client.execute(
            "DELETE FROM pipeline_lock_holders WHERE pipeline = $1 AND backend_pid = pg_backend_pid()",
            &[&self.pipeline],
        );
        let _ = self.client.execute(
            "SELECT pg_advisory_unlock($1, $2)",
            &[&PG_LOCK_NAMESPACE, &self.key],
        );
    }
}

/// Tries the lock of `pipeline` for `me`: the held lock, or the current holder when
/// another session has it (when its record can be read).
pub(crate) fn try_acquire(
    db: &PgDatabase,
    pipeline: &str,
    me: &LockHolder,
) -> Result<std::result::Result<PgHeld, Option<LockHolder>>> {
    db.migrate("locks", PG_LOCK_MIGRATIONS)?;
    let key = pg_lock_key(pipeline);
    let mut client = db.dedicated()?;
    let got: bool = client
        .query_one(
            "SELECT pg_try_advisory_lock($1, $2)",
            &[&PG_LOCK_NAMESPACE, &key],
        )
        .map_err(db.on())?
        .get(0);
    if got {
        let record = serde_json::to_string(me).unwrap_or_default();
        client
            .execute(
                "INSERT INTO pipeline_lock_holders (pipeline, holder, backend_pid) \
                 VALUES ($1, $2, pg_backend_pid()) ON CONFLICT (pipeline) DO UPDATE \
                 SET holder = EXCLUDED.holder, backend_pid = EXCLUDED.backend_pid",
                &[&pipeline, &record],
            )
            .map_err(db.on())?;
        return Ok(Ok(PgHeld {
            client,
            pipeline: pipeline.to_owned(),
            key,
        }));
    }
    // The record counts only while its backend holds the lock: a killed holder's
    // record outlives it, its lock does not.
    let row = client
        .query_opt(
            "SELECT h.holder FROM pipeline_lock_holders h WHERE h.pipeline = $1 AND EXISTS \
             (SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory' AND l.granted \
              AND l.pid = h.backend_pid AND l.classid::bigint = $2 AND l.objid::bigint = $3 \
              AND l.objsubid = 2)",
            &[&pipeline, &i64::from(PG_LOCK_NAMESPACE), &i64::from(key)],
        )
        .map_err(db.on())?;
    Ok(Err(row.and_then(|r| {
        serde_json::from_str(&r.get::<_, String>(0)).ok()
    })))
}
