//! The scheduler's state behind [`SchedulerStateStore`]: per job, its last fire, next
//! fire, last run and success, overdue flag, and the instance running now. SQLite
//! (`logs/scheduler_state.db`, [`SqliteStateStore`]) by default; PostgreSQL
//! ([`PgStateStore`](crate::PgStateStore)) adds the leader lease and the fire ledger
//! for failover between hosts.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use chrono::{DateTime, Utc};
use recops_core::procid::ProcessIdentity;
use recops_core::{format_timestamp, parse_timestamp};
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};
use serde::Serialize;

use recops_core::Home;
use recops_tracking::Storage;

use crate::error::{Error, Result};

const SCHEMA_V1: &str = "
CREATE TABLE IF NOT EXISTS scheduler_jobs (
    job TEXT PRIMARY KEY,
    first_seen TEXT NOT NULL,       -- when the scheduler first saw the job
    last_fire TEXT,                 -- newest scheduled fire handled (run, caught up or skipped)
    next_fire TEXT,                 -- next scheduled fire (null when disabled)
    last_started TEXT,
    last_finished TEXT,
    last_status TEXT,               -- 'success' or 'failed'
    last_run_id TEXT,               -- pipeline_runs.run_id of the last run
    last_success TEXT,
    overdue_since TEXT,             -- set while a job_overdue alert is active
    running_run_id TEXT,            -- the instance running now, if any
    running_owner_pid INTEGER,      -- the process supervising it (scheduler or --run-now)
    running_pgid INTEGER,           -- its process group (null while it is being started)
    running_since TEXT,
    running_trigger TEXT,
    running_scheduled_at TEXT
);
";

/// Version 2: who the running instance's processes are beyond their pids, so a pid
/// reused after a reboot or by a later process is never adopted, waited on or killed.
const SCHEMA_V2: &str = "
ALTER TABLE scheduler_jobs ADD COLUMN running_owner_start_ticks INTEGER; -- /proc/<pid>/stat field 22
ALTER TABLE scheduler_jobs ADD COLUMN running_pgid_start_ticks INTEGER;  -- of the group leader
ALTER TABLE scheduler_jobs ADD COLUMN running_boot_id TEXT;             -- kernel boot id at the claim
";

/// The instance of a job running now, as recorded in the state database.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RunningClaim {
    /// Its `pipeline_runs` row.
    pub run_id: String,
    /// The process supervising it (the scheduler, or a `scheduler --run-now`).
    pub owner_pid: u32,
    /// Its process group, once started.
    pub pgid: Option<i64>,
    /// When it started.
    pub since: DateTime<Utc>,
    /// `cron`, `manual` or `catch-up`.
    pub trigger: String,
    /// The fire it runs for (none for manual runs).
    pub scheduled_at: Option<DateTime<Utc>>,
    /// Start time (clock ticks since boot) of the supervising process.
    pub owner_start_ticks: Option<u64>,
    /// Start time of the process group's leader, once started.
    pub pgid_start_ticks: Option<u64>,
    /// The kernel's boot id when the claim was made.
    pub boot_id: Option<String>,
}

impl RunningClaim {
    /// The supervising process as recorded.
    pub fn owner_identity(&self) -> ProcessIdentity {
        ProcessIdentity {
            pid: self.owner_pid,
            start_ticks: self.owner_start_ticks,
            boot_id: self.boot_id.clone(),
        }
    }

    /// The process group's leader as recorded, once started.
    pub fn leader_identity(&self) -> Option<ProcessIdentity> {
        let pid = u32::try_from(self.pgid?).ok()?;
        Some(ProcessIdentity {
            pid,
            start_ticks: self.pgid_start_ticks,
            boot_id: self.boot_id.clone(),
        })
    }
}

/// One job's row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JobState {
    /// The job id.
    pub job: String,
    /// When the scheduler first saw the job.
    pub first_seen: DateTime<Utc>,
    /// The newest scheduled fire handled.
    pub last_fire: Option<DateTime<Utc>>,
    /// The next scheduled fire.
    pub next_fire: Option<DateTime<Utc>>,
    /// Start of the last run.
    pub last_started: Option<DateTime<Utc>>,
    /// End of the last run.
    pub last_finished: Option<DateTime<Utc>>,
    /// `success` or `failed`.
    pub last_status: Option<String>,
    /// `pipeline_runs.run_id` of the last run.
    pub last_run_id: Option<String>,
    /// End of the last successful run.
    pub last_success: Option<DateTime<Utc>>,
    /// Since when a `job_overdue` alert is active.
    pub overdue_since: Option<DateTime<Utc>>,
    /// The instance running now.
    pub running: Option<RunningClaim>,
}

/// Who asks for the leader lease: one scheduler process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LeaseCandidate {
    /// Unique per scheduler process (`host pid <pid> <random>`).
    pub holder: String,
    /// Its host.
    pub host: String,
    /// Its process id.
    pub pid: u32,
}

impl LeaseCandidate {
    /// This process, with a fresh random suffix (a restarted scheduler is a new holder).
    pub fn current() -> Self {
        let host = hostname::get()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_else(|_| "unknown".into());
        let pid = std::process::id();
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        LeaseCandidate {
            holder: format!("{host} pid {pid} {}", &suffix[..8]),
            host,
            pid,
        }
    }
}

/// The leader lease as recorded in the shared database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LeaderLease {
    /// The holder ([`LeaseCandidate::holder`]).
    pub holder: String,
    /// Its host.
    pub host: String,
    /// Its process id.
    pub pid: u32,
    /// Incremented on every takeover; a fire is claimed only under the current one.
    pub fencing_token: i64,
    /// When the holder took the lease.
    pub acquired_at: DateTime<Utc>,
    /// Its last renewal.
    pub renewed_at: DateTime<Utc>,
    /// When it expires unless renewed.
    pub expires_at: DateTime<Utc>,
}

impl LeaderLease {
    /// The fence a holder claims fires under.
    pub fn fence(&self) -> Fence {
        Fence {
            holder: self.holder.clone(),
            token: self.fencing_token,
        }
    }
}

/// The result of [`SchedulerStateStore::acquire_lease`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseOutcome {
    /// The caller holds the lease: `took_over` when it was not the holder before (a new
    /// fencing token), false for a renewal.
    Leader {
        /// The lease now.
        lease: LeaderLease,
        /// True for a new term.
        took_over: bool,
    },
    /// Another live holder has it.
    Follower(LeaderLease),
}

/// A leader's proof: a scheduled fire is claimed only while the lease row still names
/// this holder and token and has not expired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    /// The holder.
    pub holder: String,
    /// Its fencing token.
    pub token: i64,
}

/// One claimed scheduled fire (PostgreSQL: `scheduler_fires`, one row per job and
/// scheduled time, so a fire runs at most once whichever scheduler claims it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FireRecord {
    /// The job.
    pub job: String,
    /// The scheduled time of the fire.
    pub scheduled_at: DateTime<Utc>,
    /// The `pipeline_runs` row that ran it.
    pub run_id: String,
    /// The fencing token it was claimed under.
    pub fencing_token: i64,
    /// The lease holder that claimed it.
    pub holder: String,
}

/// The scheduler's state: per job its fires, last run and the instance running now;
/// with a shared database also the leader lease and the ledger of claimed fires.
/// Implemented by [`SqliteStateStore`] (embedded, single host) and
/// [`PgStateStore`](crate::PgStateStore) (PostgreSQL, failover between hosts).
pub trait SchedulerStateStore: Send + Sync + std::fmt::Debug {
    /// The database, for messages (a path or a URL without password).
    fn describe(&self) -> String;
    /// The row of `job`, if the scheduler has seen it.
    fn get(&self, job: &str) -> Result<Option<JobState>>;
    /// Every row, by job id.
    fn all(&self) -> Result<Vec<JobState>>;
    /// The row of `job`, created (first seen now, last fire now) if missing.
    fn ensure(&self, job: &str, now: DateTime<Utc>) -> Result<JobState>;
    /// Records the newest fire handled and the next one.
    fn set_fires(
        &self,
        job: &str,
        last_fire: DateTime<Utc>,
        next_fire: Option<DateTime<Utc>>,
    ) -> Result<()>;
    /// Claims `job` for the run `claim` unless a live instance holds it: returns the
    /// live holder's claim instead. `is_live` decides whether an existing claim still
    /// runs; a dead one is returned (`ClaimedAfterDead`) so its run can be closed.
    /// With a `fence` (a leader's scheduled fire, shared database only), the claim is
    /// made in the same transaction that checks the lease still names the fence and
    /// has not expired at `claim.since`, and that records the fire in the ledger:
    /// otherwise `Fenced` or `AlreadyFired`, and nothing is written.
    fn claim(
        &self,
        job: &str,
        claim: &RunningClaim,
        is_live: &dyn Fn(&RunningClaim) -> bool,
        fence: Option<&Fence>,
    ) -> Result<ClaimOutcome>;
    /// Records the process group of the run `run_id` of `job` and its leader's start
    /// time.
    fn set_pgid(
        &self,
        job: &str,
        run_id: &str,
        pgid: i64,
        leader_start_ticks: Option<u64>,
    ) -> Result<()>;
    /// Makes `owner` the supervisor of the run `run_id` (a restarted scheduler
    /// adopting a job its predecessor started).
    fn set_owner(&self, job: &str, run_id: &str, owner: &ProcessIdentity) -> Result<()>;
    /// Records the end of the run `run_id` and releases its claim. A success clears
    /// the overdue flag.
    fn finish(
        &self,
        job: &str,
        run_id: &str,
        finished_at: DateTime<Utc>,
        success: bool,
    ) -> Result<()>;
    /// Releases the claim of `run_id` without recording a run (it never started).
    fn release(&self, job: &str, run_id: &str) -> Result<()>;
    /// Sets or clears the overdue flag.
    fn set_overdue(&self, job: &str, since: Option<DateTime<Utc>>) -> Result<()>;
    /// True when several schedulers may share this store (a leader lease exists).
    fn supports_failover(&self) -> bool;
    /// The leader lease, if any scheduler ever took it (none in embedded mode).
    fn leader(&self) -> Result<Option<LeaderLease>>;
    /// Takes or renews the leader lease for `candidate` until `now + lease`: renewed
    /// when it holds an unexpired lease, taken over (fencing token + 1) when the lease
    /// is expired or was never taken, refused (`Follower`) otherwise. Times are the
    /// callers' clocks: hosts must agree on the time well within the lease.
    fn acquire_lease(
        &self,
        candidate: &LeaseCandidate,
        now: DateTime<Utc>,
        lease: chrono::Duration,
    ) -> Result<LeaseOutcome>;
    /// Ends the lease of `holder` at once (a clean shutdown), so a follower takes over
    /// without waiting for it to expire.
    fn release_lease(&self, holder: &str) -> Result<()>;
    /// The claimed scheduled fires of `job`, oldest first (none in embedded mode).
    fn fires(&self, job: &str) -> Result<Vec<FireRecord>>;
}

/// The scheduler state of a home on the backend its `storage.url` names: the SQLite
/// file `logs/scheduler_state.db` or PostgreSQL tables (no file written).
#[derive(Debug)]
pub struct StateStore {
    inner: Box<dyn SchedulerStateStore>,
}

impl std::ops::Deref for StateStore {
    type Target = dyn SchedulerStateStore;

    fn deref(&self) -> &Self::Target {
        &*self.inner
    }
}

impl StateStore {
    /// Opens (creating) the SQLite database at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        Ok(Self::with_store(Box::new(SqliteStateStore::open(path)?)))
    }

    /// Opens the state of `home` on its backend ([`Storage::of`]), creating or
    /// migrating it.
    pub fn open_home(home: &Home) -> Result<Self> {
        Ok(Self::with_store(match Storage::of(home)? {
            Storage::Embedded => Box::new(SqliteStateStore::open(&home.scheduler_state_db())?),
            Storage::Postgres(db) => Box::new(crate::PgStateStore::open(&db)?),
        }))
    }

    /// Opens the state of `home` for reading only (the dashboard, `--status`): never
    /// creates or migrates anything; `None` when nothing is recorded yet.
    pub fn open_existing(home: &Home) -> Result<Option<Self>> {
        Ok(match Storage::of(home)? {
            Storage::Embedded => SqliteStateStore::open_read_only(&home.scheduler_state_db())?
                .map(|s| Self::with_store(Box::new(s))),
            Storage::Postgres(db) => {
                crate::PgStateStore::open_existing(&db)?.map(|s| Self::with_store(Box::new(s)))
            }
        })
    }

    /// Wraps a store.
    pub fn with_store(inner: Box<dyn SchedulerStateStore>) -> Self {
        StateStore { inner }
    }
}

/// [`SchedulerStateStore`] in SQLite (`logs/scheduler_state.db`). Safe to share
/// between threads; several processes (the scheduler and `--run-now`) may use it at
/// once. Single host: it has no leader lease (see [`SchedulerStateStore::supports_failover`]).
#[derive(Debug)]
pub struct SqliteStateStore {
    conn: Mutex<Connection>,
    path: PathBuf,
}

fn ts(t: DateTime<Utc>) -> String {
    format_timestamp(t)
}

fn opt_ts(t: Option<DateTime<Utc>>) -> Option<String> {
    t.map(format_timestamp)
}

fn parse_opt(s: Option<String>) -> Option<DateTime<Utc>> {
    s.as_deref().and_then(parse_timestamp)
}

impl SqliteStateStore {
    /// Opens (creating) the database at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        let conn = recops_core::sqlite::open(path, &[SCHEMA_V1, SCHEMA_V2])?;
        Ok(SqliteStateStore {
            conn: Mutex::new(conn),
            path: path.to_path_buf(),
        })
    }

    /// Opens the database at `path` for reading only (the dashboard, `--status`): never
    /// creates or migrates it. `None` when it does not exist yet.
    pub fn open_read_only(path: &Path) -> Result<Option<Self>> {
        // WAL readers are not blocked by the writer; wait briefly for a checkpoint.
        let conn = recops_tracking::open_read_only(
            path,
            std::time::Duration::from_millis(250),
            "scheduler_jobs",
        )?;
        Ok(conn.map(|conn| SqliteStateStore {
            conn: Mutex::new(conn),
            path: path.to_path_buf(),
        }))
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn err(&self) -> impl Fn(rusqlite::Error) -> Error + '_ {
        move |e| Error::Core(recops_core::sqlite::error(&self.path, e))
    }
}

impl SchedulerStateStore for SqliteStateStore {
    fn describe(&self) -> String {
        self.path.display().to_string()
    }

    fn get(&self, job: &str) -> Result<Option<JobState>> {
        let conn = self.conn();
        conn.query_row(
            "SELECT * FROM scheduler_jobs WHERE job = ?1",
            [job],
            read_state,
        )
        .optional()
        .map_err(self.err())
    }

    fn all(&self) -> Result<Vec<JobState>> {
        let conn = self.conn();
        let mut st = conn
            .prepare("SELECT * FROM scheduler_jobs ORDER BY job")
            .map_err(self.err())?;
        let rows = st
            .query_map([], read_state)
            .map_err(self.err())?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(self.err())?;
        Ok(rows)
    }

    fn ensure(&self, job: &str, now: DateTime<Utc>) -> Result<JobState> {
        {
            let conn = self.conn();
            conn.execute(
                "INSERT OR IGNORE INTO scheduler_jobs (job, first_seen, last_fire) VALUES (?1, ?2, ?2)",
                params![job, ts(now)],
            )
            .map_err(self.err())?;
        }
        self.get(job)?
            .ok_or_else(|| self.err()(rusqlite::Error::QueryReturnedNoRows))
    }

    fn set_fires(
        &self,
        job: &str,
        last_fire: DateTime<Utc>,
        next_fire: Option<DateTime<Utc>>,
    ) -> Result<()> {
        self.conn()
            .execute(
                "UPDATE scheduler_jobs SET last_fire = ?2, next_fire = ?3 WHERE job = ?1",
                params![job, ts(last_fire), opt_ts(next_fire)],
            )
            .map_err(self.err())?;
        Ok(())
    }

    fn claim(
        &self,
        job: &str,
        claim: &RunningClaim,
        is_live: &dyn Fn(&RunningClaim) -> bool,
        _fence: Option<&Fence>,
    ) -> Result<ClaimOutcome> {
        let mut conn = self.conn();
        let err = self.err();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(&err)?;
        let existing = tx
            .query_row(
                "SELECT * FROM scheduler_jobs WHERE job = ?1",
                [job],
                read_state,
            )
            .optional()
            .map_err(&err)?
            .and_then(|s| s.running);
        if let Some(holder) = &existing
            && is_live(holder)
        {
            return Ok(ClaimOutcome::Busy(holder.clone()));
        }
        tx.execute(
            "INSERT OR IGNORE INTO scheduler_jobs (job, first_seen, last_fire) VALUES (?1, ?2, ?2)",
            params![job, ts(claim.since)],
        )
        .map_err(&err)?;
        tx.execute(
            "UPDATE scheduler_jobs SET running_run_id = ?2, running_owner_pid = ?3, \
             running_pgid = ?4, running_since = ?5, running_trigger = ?6, \
             running_scheduled_at = ?7, last_started = ?5, running_owner_start_ticks = ?8, \
             running_pgid_start_ticks = ?9, running_boot_id = ?10 WHERE job = ?1",
            params![
                job,
                claim.run_id,
                claim.owner_pid,
                claim.pgid,
                ts(claim.since),
                claim.trigger,
                opt_ts(claim.scheduled_at),
                claim.owner_start_ticks.and_then(|t| i64::try_from(t).ok()),
                claim.pgid_start_ticks.and_then(|t| i64::try_from(t).ok()),
                claim.boot_id
            ],
        )
        .map_err(&err)?;
        tx.commit().map_err(&err)?;
        Ok(match existing {
            Some(dead) => ClaimOutcome::ClaimedAfterDead(dead),
            None => ClaimOutcome::Claimed,
        })
    }

    fn set_pgid(
        &self,
        job: &str,
        run_id: &str,
        pgid: i64,
        leader_start_ticks: Option<u64>,
    ) -> Result<()> {
        self.conn()
            .execute(
                "UPDATE scheduler_jobs SET running_pgid = ?3, running_pgid_start_ticks = ?4 \
                 WHERE job = ?1 AND running_run_id = ?2",
                params![
                    job,
                    run_id,
                    pgid,
                    leader_start_ticks.and_then(|t| i64::try_from(t).ok())
                ],
            )
            .map_err(self.err())?;
        Ok(())
    }

    fn set_owner(&self, job: &str, run_id: &str, owner: &ProcessIdentity) -> Result<()> {
        self.conn()
            .execute(
                "UPDATE scheduler_jobs SET running_owner_pid = ?3, running_owner_start_ticks = ?4 \
                 WHERE job = ?1 AND running_run_id = ?2",
                params![
                    job,
                    run_id,
                    owner.pid,
                    owner.start_ticks.and_then(|t| i64::try_from(t).ok())
                ],
            )
            .map_err(self.err())?;
        Ok(())
    }

    fn finish(
        &self,
        job: &str,
        run_id: &str,
        finished_at: DateTime<Utc>,
        success: bool,
    ) -> Result<()> {
        let status = if success { "success" } else { "failed" };
        let conn = self.conn();
        conn.execute(
            "UPDATE scheduler_jobs SET last_finished = ?3, last_status = ?4, last_run_id = ?2, \
             last_success = CASE WHEN ?5 THEN ?3 ELSE last_success END, \
             overdue_since = CASE WHEN ?5 THEN NULL ELSE overdue_since END \
             WHERE job = ?1",
            params![job, run_id, ts(finished_at), status, success],
        )
        .map_err(self.err())?;
        conn.execute(
            "UPDATE scheduler_jobs SET running_run_id = NULL, running_owner_pid = NULL, \
             running_pgid = NULL, running_since = NULL, running_trigger = NULL, \
             running_scheduled_at = NULL, running_owner_start_ticks = NULL, \
             running_pgid_start_ticks = NULL, running_boot_id = NULL \
             WHERE job = ?1 AND running_run_id = ?2",
            params![job, run_id],
        )
        .map_err(self.err())?;
        Ok(())
    }

    fn release(&self, job: &str, run_id: &str) -> Result<()> {
        self.conn()
            .execute(
                "UPDATE scheduler_jobs SET running_run_id = NULL, running_owner_pid = NULL, \
                 running_pgid = NULL, running_since = NULL, running_trigger = NULL, \
                 running_scheduled_at = NULL, running_owner_start_ticks = NULL, \
             running_pgid_start_ticks = NULL, running_boot_id = NULL \
             WHERE job = ?1 AND running_run_id = ?2",
                params![job, run_id],
            )
            .map_err(self.err())?;
        Ok(())
    }

    fn set_overdue(&self, job: &str, since: Option<DateTime<Utc>>) -> Result<()> {
        self.conn()
            .execute(
                "UPDATE scheduler_jobs SET overdue_since = ?2 WHERE job = ?1",
                params![job, opt_ts(since)],
            )
            .map_err(self.err())?;
        Ok(())
    }

    fn supports_failover(&self) -> bool {
        false
    }

    fn leader(&self) -> Result<Option<LeaderLease>> {
        Ok(None)
    }

    fn acquire_lease(
        &self,
        _candidate: &LeaseCandidate,
        _now: DateTime<Utc>,
        _lease: chrono::Duration,
    ) -> Result<LeaseOutcome> {
        Err(Error::FailoverUnsupported)
    }

    fn release_lease(&self, _holder: &str) -> Result<()> {
        Ok(())
    }

    fn fires(&self, _job: &str) -> Result<Vec<FireRecord>> {
        Ok(Vec::new())
    }
}

/// The result of [`SchedulerStateStore::claim`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// The job is now claimed by the caller.
    Claimed,
    /// Claimed, replacing a claim whose instance is gone (its run must be closed).
    ClaimedAfterDead(RunningClaim),
    /// A live instance holds the job.
    Busy(RunningClaim),
    /// Refused: the caller's fence is not the current lease (another scheduler took
    /// over, or the caller's lease expired). Carries the current lease, if any.
    Fenced(Option<LeaderLease>),
    /// Refused: this scheduled fire was already claimed (by the run named).
    AlreadyFired {
        /// The run that claimed it.
        run_id: String,
    },
}

/// A column added by schema version 2: absent (`None`) in a version-1 file opened
/// read-only, which readers cannot migrate.
fn v2_column<T: rusqlite::types::FromSql>(r: &Row<'_>, name: &str) -> rusqlite::Result<Option<T>> {
    match r.get::<_, Option<T>>(name) {
        Err(rusqlite::Error::InvalidColumnName(_)) => Ok(None),
        other => other,
    }
}

fn read_state(r: &Row<'_>) -> rusqlite::Result<JobState> {
    let running = match r.get::<_, Option<String>>("running_run_id")? {
        Some(run_id) => Some(RunningClaim {
            run_id,
            owner_pid: r
                .get::<_, Option<i64>>("running_owner_pid")?
                .unwrap_or_default()
                .try_into()
                .unwrap_or_default(),
            pgid: r.get("running_pgid")?,
            since: parse_opt(r.get("running_since")?).unwrap_or_default(),
            trigger: r
                .get::<_, Option<String>>("running_trigger")?
                .unwrap_or_default(),
            scheduled_at: parse_opt(r.get("running_scheduled_at")?),
            owner_start_ticks: v2_column::<i64>(r, "running_owner_start_ticks")?
                .and_then(|t| u64::try_from(t).ok()),
            pgid_start_ticks: v2_column::<i64>(r, "running_pgid_start_ticks")?
                .and_then(|t| u64::try_from(t).ok()),
            boot_id: v2_column(r, "running_boot_id")?,
        }),
        None => None,
    };
    Ok(JobState {
        job: r.get("job")?,
        first_seen: parse_opt(r.get("first_seen")?).unwrap_or_default(),
        last_fire: parse_opt(r.get("last_fire")?),
        next_fire: parse_opt(r.get("next_fire")?),
        last_started: parse_opt(r.get("last_started")?),
        last_finished: parse_opt(r.get("last_finished")?),
        last_status: r.get("last_status")?,
        last_run_id: r.get("last_run_id")?,
        last_success: parse_opt(r.get("last_success")?),
        overdue_since: parse_opt(r.get("overdue_since")?),
        running,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};

    fn t(h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 1, 15, h, 0, 0).unwrap()
    }

    fn claim(run_id: &str, since: DateTime<Utc>) -> RunningClaim {
        RunningClaim {
            run_id: run_id.into(),
            owner_pid: 42,
            pgid: None,
            since,
            trigger: "cron".into(),
            scheduled_at: Some(since),
            ..RunningClaim::default()
        }
    }

    /// A store that can be opened again on the same data, and what keeps that alive.
    struct Fixture {
        _guard: Box<dyn std::any::Any>,
        open: Box<dyn Fn() -> StateStore>,
    }
    type Maker = fn() -> Fixture;

    fn sqlite() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logs/scheduler_state.db");
        Fixture {
            _guard: Box::new(dir),
            open: Box::new(move || StateStore::open(&path).unwrap()),
        }
    }

    fn postgres() -> Fixture {
        let pg = recops_testkit::PgCluster::shared().unwrap();
        let db = recops_tracking::PgDatabase::connect_new(&pg.fresh_database()).unwrap();
        Fixture {
            _guard: Box::new(()),
            open: Box::new(move || {
                StateStore::with_store(Box::new(crate::PgStateStore::open(&db).unwrap()))
            }),
        }
    }

    recops_testkit::on_both_backends!(
        on_sqlite: sqlite, postgres;
        state_survives_reopen_and_tracks_fires_runs_and_success,
        a_live_claim_blocks_a_second_instance_and_a_dead_one_is_handed_back,
    );

    fn state_survives_reopen_and_tracks_fires_runs_and_success(make: Maker) {
        let f = make();
        let s = (f.open)();
        let st = s.ensure("data_refresh", t(1)).unwrap();
        assert_eq!(st.first_seen, t(1));
        assert_eq!(st.last_fire, Some(t(1)));
        // ensure() does not reset an existing row.
        s.set_fires("data_refresh", t(2), Some(t(2) + Duration::days(1)))
            .unwrap();
        assert_eq!(
            s.ensure("data_refresh", t(5)).unwrap().last_fire,
            Some(t(2))
        );

        assert_eq!(
            s.claim("data_refresh", &claim("r1", t(2)), &|_| true, None)
                .unwrap(),
            ClaimOutcome::Claimed
        );
        s.set_pgid("data_refresh", "r1", 777, Some(5)).unwrap();
        s.set_overdue("data_refresh", Some(t(1))).unwrap();
        drop(s);

        let s = (f.open)();
        let st = s.get("data_refresh").unwrap().unwrap();
        let running = st.running.unwrap();
        assert_eq!((running.run_id.as_str(), running.pgid), ("r1", Some(777)));
        assert_eq!(running.pgid_start_ticks, Some(5));
        assert_eq!(st.next_fire, Some(t(2) + Duration::days(1)));
        s.finish("data_refresh", "r1", t(3), true).unwrap();
        let st = s.get("data_refresh").unwrap().unwrap();
        assert_eq!(st.running, None);
        assert_eq!(st.last_success, Some(t(3)));
        assert_eq!(st.last_status.as_deref(), Some("success"));
        assert_eq!(st.overdue_since, None);
        // A failure keeps the last success.
        s.claim("data_refresh", &claim("r2", t(4)), &|_| true, None)
            .unwrap();
        s.finish("data_refresh", "r2", t(5), false).unwrap();
        let st = s.get("data_refresh").unwrap().unwrap();
        assert_eq!(st.last_success, Some(t(3)));
        assert_eq!(st.last_status.as_deref(), Some("failed"));
        assert_eq!(st.last_run_id.as_deref(), Some("r2"));
        assert_eq!(s.all().unwrap().len(), 1);
    }

    fn a_live_claim_blocks_a_second_instance_and_a_dead_one_is_handed_back(make: Maker) {
        let f = make();
        let s = (f.open)();
        s.claim("j", &claim("r1", t(1)), &|_| true, None).unwrap();
        match s.claim("j", &claim("r2", t(2)), &|_| true, None).unwrap() {
            ClaimOutcome::Busy(h) => assert_eq!(h.run_id, "r1"),
            other => panic!("{other:?}"),
        }
        match s.claim("j", &claim("r2", t(2)), &|_| false, None).unwrap() {
            ClaimOutcome::ClaimedAfterDead(h) => assert_eq!(h.run_id, "r1"),
            other => panic!("{other:?}"),
        }
        // Finishing an old run does not release the new claim.
        s.finish("j", "r1", t(3), false).unwrap();
        assert_eq!(s.get("j").unwrap().unwrap().running.unwrap().run_id, "r2");
        s.release("j", "r2").unwrap();
        assert_eq!(s.get("j").unwrap().unwrap().running, None);
    }

    #[test]
    fn a_version_1_file_is_read_by_readers_without_migrating_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("scheduler_state.db");
        assert!(SqliteStateStore::open_read_only(&path).unwrap().is_none());
        let conn = recops_core::sqlite::open(&path, &[SCHEMA_V1]).unwrap();
        conn.execute(
            "INSERT INTO scheduler_jobs (job, first_seen, running_run_id, running_owner_pid) \
             VALUES ('j', '2025-01-15T01:00:00Z', 'r1', 42)",
            [],
        )
        .unwrap();
        drop(conn);
        let s = SqliteStateStore::open_read_only(&path).unwrap().unwrap();
        let running = s.all().unwrap()[0].running.clone().unwrap();
        assert_eq!((running.run_id.as_str(), running.owner_pid), ("r1", 42));
        assert_eq!(running.boot_id, None);
        let version: i64 = Connection::open(&path)
            .unwrap()
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, 1, "a reader migrated the file");
    }

    #[test]
    fn a_newer_schema_is_refused_and_not_touched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        drop(StateStore::open(&path).unwrap());
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", 7).unwrap();
        drop(conn);
        let e = StateStore::open(&path).unwrap_err();
        assert!(
            matches!(
                e,
                Error::Core(recops_core::Error::DatabaseTooNew { found: 7, .. })
            ),
            "{e}"
        );
        assert!(e.to_string().contains("s.db"), "{e}");
    }

    #[test]
    fn a_file_that_is_not_sqlite_is_refused_and_left_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("scheduler_state.db");
        std::fs::write(&path, b"job,last_fire\n").unwrap();
        let e = StateStore::open(&path).unwrap_err();
        assert!(
            matches!(e, Error::Core(recops_core::Error::NotADatabase { .. })),
            "{e}"
        );
        assert_eq!(std::fs::read(&path).unwrap(), b"job,last_fire\n");
    }
}
