//! [`PgStateStore`]: the scheduler state in PostgreSQL, shared by the schedulers of
//! several hosts: the job rows of the SQLite store, the leader lease (one row, with a
//! fencing token incremented on each takeover) and the ledger of claimed fires.

use chrono::{DateTime, Duration, TimeZone, Utc};
use postgres::{GenericClient, Row};
use recops_core::format_timestamp;
use recops_core::procid::ProcessIdentity;
use recops_tracking::PgDatabase;

use crate::error::{Error, Result};
use crate::state::{
    ClaimOutcome, Fence, FireRecord, JobState, LeaderLease, LeaseCandidate, LeaseOutcome,
    RunningClaim, SchedulerStateStore,
};

/// Versioned migrations of the scheduler state in PostgreSQL (store `scheduler` in
/// `recops_schema_migrations`). Timestamps of job rows are RFC 3339 text as in SQLite;
/// the lease's are milliseconds since the epoch, compared in SQL.
pub const PG_SCHEDULER_MIGRATIONS: &[&str] = &["\
CREATE TABLE IF NOT EXISTS scheduler_jobs (
    job TEXT PRIMARY KEY,
    first_seen TEXT NOT NULL,
    last_fire TEXT,
    next_fire TEXT,
    last_started TEXT,
    last_finished TEXT,
    last_status TEXT,
    last_run_id TEXT,
    last_success TEXT,
    overdue_since TEXT,
    running_run_id TEXT,
    running_owner_pid BIGINT,
    running_pgid BIGINT,
    running_since TEXT,
    running_trigger TEXT,
    running_scheduled_at TEXT,
    running_owner_start_ticks BIGINT,
    running_pgid_start_ticks BIGINT,
    running_boot_id TEXT
);
CREATE TABLE IF NOT EXISTS scheduler_leader (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    holder TEXT NOT NULL,
    host TEXT NOT NULL,
    pid BIGINT NOT NULL,
    fencing_token BIGINT NOT NULL,
    acquired_at_ms BIGINT NOT NULL,
    renewed_at_ms BIGINT NOT NULL,
    expires_at_ms BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS scheduler_fires (
    job TEXT NOT NULL,
    scheduled_at TEXT COLLATE \"C\" NOT NULL,
    run_id TEXT NOT NULL,
    fencing_token BIGINT NOT NULL,
    holder TEXT NOT NULL,
    claimed_at TEXT NOT NULL,
    PRIMARY KEY (job, scheduled_at)
);
"];

const STORE: &str = "scheduler";

const CLEAR_RUNNING: &str = "running_run_id = NULL, running_owner_pid = NULL, \
     running_pgid = NULL, running_since = NULL, running_trigger = NULL, \
     running_scheduled_at = NULL, running_owner_start_ticks = NULL, \
     running_pgid_start_ticks = NULL, running_boot_id = NULL";

/// [`SchedulerStateStore`] in PostgreSQL: several schedulers (one per host) share it;
/// the one holding the leader lease fires the jobs.
#[derive(Debug, Clone)]
pub struct PgStateStore {
    db: PgDatabase,
}

impl PgStateStore {
    /// Opens the store, creating or migrating its tables.
    pub fn open(db: &PgDatabase) -> Result<Self> {
        db.migrate(STORE, PG_SCHEDULER_MIGRATIONS)?;
        Ok(PgStateStore { db: db.clone() })
    }

    /// Opens the store for reading only (the dashboard, `--status`): never creates or
    /// migrates. `None` when its tables do not exist yet.
    pub fn open_existing(db: &PgDatabase) -> Result<Option<Self>> {
        Ok(db
            .schema_present(STORE, PG_SCHEDULER_MIGRATIONS)?
            .then(|| PgStateStore { db: db.clone() }))
    }

    fn row_err(&self) -> impl Fn(postgres::Error) -> Error + '_ {
        move |source| Error::StateRow {
            url: self.db.url().to_owned(),
            source,
        }
    }

    fn exec(&self, sql: &str, params: &[&(dyn postgres::types::ToSql + Sync)]) -> Result<u64> {
        Ok(self.db.conn()?.execute(sql, params).map_err(self.db.on())?)
    }
}

fn ts(t: DateTime<Utc>) -> String {
    format_timestamp(t)
}

fn opt_ts(t: Option<DateTime<Utc>>) -> Option<String> {
    t.map(format_timestamp)
}

fn parse_opt(s: Option<String>) -> Option<DateTime<Utc>> {
    s.as_deref().and_then(recops_core::parse_timestamp)
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn from_ms(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

fn ticks(t: Option<u64>) -> Option<i64> {
    t.and_then(|t| i64::try_from(t).ok())
}

fn read_state(r: &Row) -> std::result::Result<JobState, postgres::Error> {
    let running = match r.try_get::<_, Option<String>>("running_run_id")? {
        Some(run_id) => Some(RunningClaim {
            run_id,
            owner_pid: r
                .try_get::<_, Option<i64>>("running_owner_pid")?
                .and_then(|p| u32::try_from(p).ok())
                .unwrap_or_default(),
            pgid: r.try_get("running_pgid")?,
            since: parse_opt(r.try_get("running_since")?).unwrap_or_default(),
            trigger: r
                .try_get::<_, Option<String>>("running_trigger")?
                .unwrap_or_default(),
            scheduled_at: parse_opt(r.try_get("running_scheduled_at")?),
            owner_start_ticks: r
                .try_get::<_, Option<i64>>("running_owner_start_ticks")?
                .and_then(|t| u64::try_from(t).ok()),
            pgid_start_ticks: r
                .try_get::<_, Option<i64>>("running_pgid_start_ticks")?
                .and_then(|t| u64::try_from(t).ok()),
            boot_id: r.try_get("running_boot_id")?,
        }),
        None => None,
    };
    Ok(JobState {
        job: r.try_get("job")?,
        first_seen: parse_opt(r.try_get("first_seen")?).unwrap_or_default(),
        last_fire: parse_opt(r.try_get("last_fire")?),
        next_fire: parse_opt(r.try_get("next_fire")?),
        last_started: parse_opt(r.try_get("last_started")?),
        last_finished: parse_opt(r.try_get("last_finished")?),
        last_status: r.try_get("last_status")?,
        last_run_id: r.try_get("last_run_id")?,
        last_success: parse_opt(r.try_get("last_success")?),
        overdue_since: parse_opt(r.try_get("overdue_since")?),
        running,
    })
}

fn read_lease(r: &Row) -> std::result::Result<LeaderLease, postgres::Error> {
    Ok(LeaderLease {
        holder: r.try_get("holder")?,
        host: r.try_get("host")?,
        pid: u32::try_from(r.try_get::<_, i64>("pid")?).unwrap_or_default(),
        fencing_token: r.try_get("fencing_token")?,
        acquired_at: from_ms(r.try_get("acquired_at_ms")?),
        renewed_at: from_ms(r.try_get("renewed_at_ms")?),
        expires_at: from_ms(r.try_get("expires_at_ms")?),
    })
}

const SELECT_LEASE: &str = "SELECT holder, host, pid, fencing_token, acquired_at_ms, \
     renewed_at_ms, expires_at_ms FROM scheduler_leader WHERE id = 1";

impl PgStateStore {
    fn lease_in(
        &self,
        c: &mut impl GenericClient,
        lock: &str,
    ) -> recops_tracking::Result<Option<std::result::Result<LeaderLease, postgres::Error>>> {
        Ok(c.query_opt(&format!("{SELECT_LEASE} {lock}"), &[])
            .map_err(self.db.on())?
            .map(|r| read_lease(&r)))
    }
}

impl SchedulerStateStore for PgStateStore {
    fn describe(&self) -> String {
        self.db.url().to_owned()
    }

    fn get(&self, job: &str) -> Result<Option<JobState>> {
        let row = self
            .db
            .conn()?
            .query_opt("SELECT * FROM scheduler_jobs WHERE job = $1", &[&job])
            .map_err(self.db.on())?;
        row.map(|r| read_state(&r))
            .transpose()
            .map_err(self.row_err())
    }

    fn all(&self) -> Result<Vec<JobState>> {
        let rows = self
            .db
            .conn()?
            .query("SELECT * FROM scheduler_jobs ORDER BY job", &[])
            .map_err(self.db.on())?;
        rows.iter()
            .map(read_state)
            .collect::<std::result::Result<_, _>>()
            .map_err(self.row_err())
    }

    fn ensure(&self, job: &str, now: DateTime<Utc>) -> Result<JobState> {
        self.exec(
            "INSERT INTO scheduler_jobs (job, first_seen, last_fire) VALUES ($1, $2, $2) \
             ON CONFLICT (job) DO NOTHING",
            &[&job, &ts(now)],
        )?;
        self.get(job)?.ok_or_else(|| {
            Error::Tracking(recops_tracking::Error::InvalidInput {
                what: "scheduler_jobs row",
                message: format!("the row of {job} vanished after it was created"),
            })
        })
    }

    fn set_fires(
        &self,
        job: &str,
        last_fire: DateTime<Utc>,
        next_fire: Option<DateTime<Utc>>,
    ) -> Result<()> {
        self.exec(
            "UPDATE scheduler_jobs SET last_fire = $2, next_fire = $3 WHERE job = $1",
            &[&job, &ts(last_fire), &opt_ts(next_fire)],
        )?;
        Ok(())
    }

    fn claim(
        &self,
        job: &str,
        claim: &RunningClaim,
        is_live: &dyn Fn(&RunningClaim) -> bool,
        fence: Option<&Fence>,
    ) -> Result<ClaimOutcome> {
        let mut bad_row = None;
        let outcome = self.db.transaction(|tx| {
            let on = self.db.on();
            if let Some(fence) = fence {
                // FOR SHARE: a takeover (FOR UPDATE) waits for this claim to commit,
                // and a claim after a takeover sees the new token.
                let lease = match self.lease_in(tx, "FOR SHARE")? {
                    Some(Ok(l)) => Some(l),
                    Some(Err(e)) => {
                        bad_row = Some(e);
                        return Ok(ClaimOutcome::Fenced(None));
                    }
                    None => None,
                };
                let valid = lease.as_ref().is_some_and(|l| {
                    l.holder == fence.holder
                        && l.fencing_token == fence.token
                        && l.expires_at > claim.since
                });
                if !valid {
                    return Ok(ClaimOutcome::Fenced(lease));
                }
            }
            tx.execute(
                "INSERT INTO scheduler_jobs (job, first_seen, last_fire) VALUES ($1, $2, $2) \
                 ON CONFLICT (job) DO NOTHING",
                &[&job, &ts(claim.since)],
            )
            .map_err(&on)?;
            let row = tx
                .query_one(
                    "SELECT * FROM scheduler_jobs WHERE job = $1 FOR UPDATE",
                    &[&job],
                )
                .map_err(&on)?;
            let existing = match read_state(&row) {
                Ok(s) => s.running,
                Err(e) => {
                    bad_row = Some(e);
                    return Ok(ClaimOutcome::Claimed);
                }
            };
            if let Some(holder) = &existing
                && is_live(holder)
            {
                return Ok(ClaimOutcome::Busy(holder.clone()));
            }
            if let (Some(fence), Some(at)) = (fence, claim.scheduled_at) {
                let at = ts(at);
                let inserted = tx
                    .execute(
                        "INSERT INTO scheduler_fires (job, scheduled_at, run_id, fencing_token, \
                         holder, claimed_at) VALUES ($1, $2, $3, $4, $5, $6) \
                         ON CONFLICT (job, scheduled_at) DO NOTHING",
                        &[
                            &job,
                            &at,
                            &claim.run_id,
                            &fence.token,
                            &fence.holder,
                            &ts(claim.since),
                        ],
                    )
                    .map_err(&on)?;
                if inserted == 0 {
                    let run_id: String = tx
                        .query_one(
                            "SELECT run_id FROM scheduler_fires WHERE job = $1 AND scheduled_at = $2",
                            &[&job, &at],
                        )
                        .map_err(&on)?
                        .get(0);
                    return Ok(ClaimOutcome::AlreadyFired { run_id });
                }
            }
            tx.execute(
                "UPDATE scheduler_jobs SET running_run_id = $2, running_owner_pid = $3, \
                 running_pgid = $4, running_since = $5, running_trigger = $6, \
                 running_scheduled_at = $7, last_started = $5, running_owner_start_ticks = $8, \
                 running_pgid_start_ticks = $9, running_boot_id = $10 WHERE job = $1",
                &[
                    &job,
                    &claim.run_id,
                    &i64::from(claim.owner_pid),
                    &claim.pgid,
                    &ts(claim.since),
                    &claim.trigger,
                    &opt_ts(claim.scheduled_at),
                    &ticks(claim.owner_start_ticks),
                    &ticks(claim.pgid_start_ticks),
                    &claim.boot_id,
                ],
            )
            .map_err(&on)?;
            Ok(match existing {
                Some(dead) => ClaimOutcome::ClaimedAfterDead(dead),
                None => ClaimOutcome::Claimed,
            })
        });
        if let Some(source) = bad_row {
            return Err(Error::StateRow {
                url: self.db.url().to_owned(),
                source,
            });
        }
        Ok(outcome?)
    }

    fn set_pgid(
        &self,
        job: &str,
        run_id: &str,
        pgid: i64,
        leader_start_ticks: Option<u64>,
    ) -> Result<()> {
        self.exec(
            "UPDATE scheduler_jobs SET running_pgid = $3, running_pgid_start_ticks = $4 \
             WHERE job = $1 AND running_run_id = $2",
            &[&job, &run_id, &pgid, &ticks(leader_start_ticks)],
        )?;
        Ok(())
    }

    fn set_owner(&self, job: &str, run_id: &str, owner: &ProcessIdentity) -> Result<()> {
        self.exec(
            "UPDATE scheduler_jobs SET running_owner_pid = $3, running_owner_start_ticks = $4 \
             WHERE job = $1 AND running_run_id = $2",
            &[
                &job,
                &run_id,
                &i64::from(owner.pid),
                &ticks(owner.start_ticks),
            ],
        )?;
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
        self.db.transaction(|tx| {
            let on = self.db.on();
            tx.execute(
                "UPDATE scheduler_jobs SET last_finished = $3, last_status = $4, \
                 last_run_id = $2, \
                 last_success = CASE WHEN $5 THEN $3 ELSE last_success END, \
                 overdue_since = CASE WHEN $5 THEN NULL ELSE overdue_since END \
                 WHERE job = $1",
                &[&job, &run_id, &ts(finished_at), &status, &success],
            )
            .map_err(&on)?;
            tx.execute(
                &format!(
                    "UPDATE scheduler_jobs SET {CLEAR_RUNNING} WHERE job = $1 AND running_run_id = $2"
                ),
                &[&job, &run_id],
            )
            .map_err(&on)?;
            Ok(())
        })?;
        Ok(())
    }

    fn release(&self, job: &str, run_id: &str) -> Result<()> {
        self.exec(
            &format!(
                "UPDATE scheduler_jobs SET {CLEAR_RUNNING} WHERE job = $1 AND running_run_id = $2"
            ),
            &[&job, &run_id],
        )?;
        Ok(())
    }

    fn set_overdue(&self, job: &str, since: Option<DateTime<Utc>>) -> Result<()> {
        self.exec(
            "UPDATE scheduler_jobs SET overdue_since = $2 WHERE job = $1",
            &[&job, &opt_ts(since)],
        )?;
        Ok(())
    }

    fn supports_failover(&self) -> bool {
        true
    }

    fn leader(&self) -> Result<Option<LeaderLease>> {
        let mut conn = self.db.conn()?;
        match self.lease_in(&mut *conn, "")? {
            Some(Ok(l)) if !l.holder.is_empty() => Ok(Some(l)),
            Some(Err(e)) => Err(self.row_err()(e)),
            _ => Ok(None),
        }
    }

    fn acquire_lease(
        &self,
        candidate: &LeaseCandidate,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> Result<LeaseOutcome> {
        let now_ms = ms(now);
        let until = ms(now + lease);
        let mut bad_row = None;
        let outcome = self.db.transaction(|tx| {
            let on = self.db.on();
            // The row exists from the first attempt on (token 0, expired).
            tx.execute(
                "INSERT INTO scheduler_leader (id, holder, host, pid, fencing_token, \
                 acquired_at_ms, renewed_at_ms, expires_at_ms) VALUES (1, '', '', 0, 0, 0, 0, 0) \
                 ON CONFLICT (id) DO NOTHING",
                &[],
            )
            .map_err(&on)?;
            let current = match self.lease_in(tx, "FOR UPDATE")? {
                Some(Ok(l)) => l,
                Some(Err(e)) => {
                    bad_row = Some(e);
                    return Ok(None);
                }
                None => return Ok(None),
            };
            let expired = ms(current.expires_at) <= now_ms;
            if current.holder == candidate.holder && !expired {
                tx.execute(
                    "UPDATE scheduler_leader SET renewed_at_ms = $1, expires_at_ms = $2 \
                     WHERE id = 1",
                    &[&now_ms, &until],
                )
                .map_err(&on)?;
                return Ok(Some(LeaseOutcome::Leader {
                    lease: LeaderLease {
                        renewed_at: from_ms(now_ms),
                        expires_at: from_ms(until),
                        ..current
                    },
                    took_over: false,
                }));
            }
            if !expired {
                return Ok(Some(LeaseOutcome::Follower(current)));
            }
            let token = current.fencing_token + 1;
            tx.execute(
                "UPDATE scheduler_leader SET holder = $1, host = $2, pid = $3, \
                 fencing_token = $4, acquired_at_ms = $5, renewed_at_ms = $5, \
                 expires_at_ms = $6 WHERE id = 1",
                &[
                    &candidate.holder,
                    &candidate.host,
                    &i64::from(candidate.pid),
                    &token,
                    &now_ms,
                    &until,
                ],
            )
            .map_err(&on)?;
            Ok(Some(LeaseOutcome::Leader {
                lease: LeaderLease {
                    holder: candidate.holder.clone(),
                    host: candidate.host.clone(),
                    pid: candidate.pid,
                    fencing_token: token,
                    acquired_at: from_ms(now_ms),
                    renewed_at: from_ms(now_ms),
                    expires_at: from_ms(until),
                },
                took_over: true,
            }))
        })?;
        match (outcome, bad_row) {
            (_, Some(e)) => Err(self.row_err()(e)),
            (Some(o), None) => Ok(o),
            (None, None) => Err(Error::Tracking(recops_tracking::Error::InvalidInput {
                what: "scheduler_leader row",
                message: "the lease row vanished while it was locked".into(),
            })),
        }
    }

    fn release_lease(&self, holder: &str) -> Result<()> {
        self.exec(
            "UPDATE scheduler_leader SET expires_at_ms = 0 WHERE id = 1 AND holder = $1",
            &[&holder],
        )?;
        Ok(())
    }

    fn fires(&self, job: &str) -> Result<Vec<FireRecord>> {
        let rows = self
            .db
            .conn()?
            .query(
                "SELECT job, scheduled_at, run_id, fencing_token, holder FROM scheduler_fires \
                 WHERE job = $1 ORDER BY scheduled_at",
                &[&job],
            )
            .map_err(self.db.on())?;
        rows.iter()
            .map(|r| {
                Ok(FireRecord {
                    job: r.try_get(0)?,
                    scheduled_at: parse_opt(r.try_get(1)?).unwrap_or_default(),
                    run_id: r.try_get(2)?,
                    fencing_token: r.try_get(3)?,
                    holder: r.try_get(4)?,
                })
            })
            .collect::<std::result::Result<_, postgres::Error>>()
            .map_err(self.row_err())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::StateStore;
    use chrono::TimeZone;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 1, 15, 10, 0, 0).unwrap()
    }

    fn secs(s: i64) -> DateTime<Utc> {
        t0() + Duration::seconds(s)
    }

    fn store() -> Option<StateStore> {
        let pg = recops_testkit::PgCluster::shared()?;
        let db = PgDatabase::connect_new(&pg.fresh_database()).unwrap();
        Some(StateStore::with_store(Box::new(
            PgStateStore::open(&db).unwrap(),
        )))
    }

    fn candidate(name: &str) -> LeaseCandidate {
        LeaseCandidate {
            holder: name.into(),
            host: format!("host-{name}"),
            pid: 7,
        }
    }

    fn leader(o: LeaseOutcome) -> (LeaderLease, bool) {
        match o {
            LeaseOutcome::Leader { lease, took_over } => (lease, took_over),
            other => panic!("expected to lead: {other:?}"),
        }
    }

    fn follower(o: LeaseOutcome) -> LeaderLease {
        match o {
            LeaseOutcome::Follower(l) => l,
            other => panic!("expected to follow: {other:?}"),
        }
    }

    fn fire(run_id: &str, at: DateTime<Utc>, since: DateTime<Utc>) -> RunningClaim {
        RunningClaim {
            run_id: run_id.into(),
            owner_pid: 42,
            since,
            trigger: "cron".into(),
            scheduled_at: Some(at),
            ..RunningClaim::default()
        }
    }

    #[test]
    fn the_lease_is_renewed_by_its_holder_and_taken_over_only_after_it_expires() {
        let Some(s) = store() else { return };
        let lease = Duration::seconds(10);
        let (a, b) = (candidate("a"), candidate("b"));
        assert_eq!(s.leader().unwrap(), None);
        let (l, took) = leader(s.acquire_lease(&a, secs(0), lease).unwrap());
        assert!(took);
        assert_eq!((l.fencing_token, l.expires_at), (1, secs(10)));
        assert_eq!(
            follower(s.acquire_lease(&b, secs(1), lease).unwrap()).holder,
            "a"
        );
        // A renewal keeps the token and moves the expiry.
        let (l, took) = leader(s.acquire_lease(&a, secs(5), lease).unwrap());
        assert!(!took);
        assert_eq!((l.fencing_token, l.expires_at), (1, secs(15)));
        assert_eq!(
            follower(s.acquire_lease(&b, secs(14), lease).unwrap()).holder,
            "a"
        );
        // Not renewed for the lease: b takes over with a new token; a follows.
        let (l, took) = leader(s.acquire_lease(&b, secs(15), lease).unwrap());
        assert!(took);
        assert_eq!((l.holder.as_str(), l.fencing_token), ("b", 2));
        let seen = follower(s.acquire_lease(&a, secs(16), lease).unwrap());
        assert_eq!((seen.holder.as_str(), seen.host.as_str()), ("b", "host-b"));
        assert_eq!(s.leader().unwrap().unwrap().fencing_token, 2);
        // A clean shutdown hands over at once.
        s.release_lease("b").unwrap();
        let (l, _) = leader(s.acquire_lease(&a, secs(17), lease).unwrap());
        assert_eq!(l.fencing_token, 3);
    }

    #[test]
    fn of_many_contenders_for_an_expired_lease_exactly_one_leads() {
        let Some(s) = store() else { return };
        let s = std::sync::Arc::new(s);
        let leaders: usize = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..6)
                .map(|i| {
                    let s = s.clone();
                    scope.spawn(move || {
                        let c = candidate(&format!("c{i}"));
                        matches!(
                            s.acquire_lease(&c, secs(0), Duration::seconds(10)).unwrap(),
                            LeaseOutcome::Leader { .. }
                        )
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| usize::from(h.join().unwrap()))
                .sum()
        });
        assert_eq!(leaders, 1);
        assert_eq!(s.leader().unwrap().unwrap().fencing_token, 1);
    }

    #[test]
    fn a_stale_leader_cannot_claim_a_fire_and_a_fire_is_claimed_once() {
        let Some(s) = store() else { return };
        let lease = Duration::seconds(10);
        let (a, b) = (candidate("a"), candidate("b"));
        let (la, _) = leader(s.acquire_lease(&a, secs(0), lease).unwrap());
        let fence_a = la.fence();
        let at = secs(60);
        // a's lease has expired (nobody took over yet): refused all the same.
        match s
            .claim("j", &fire("ra0", at, secs(11)), &|_| false, Some(&fence_a))
            .unwrap()
        {
            ClaimOutcome::Fenced(Some(l)) => assert_eq!(l.holder, "a"),
            other => panic!("{other:?}"),
        }
        // b takes over; a wakes up and tries to fire under its old token.
        let (lb, _) = leader(s.acquire_lease(&b, secs(12), lease).unwrap());
        match s
            .claim("j", &fire("ra", at, secs(13)), &|_| false, Some(&fence_a))
            .unwrap()
        {
            ClaimOutcome::Fenced(Some(l)) => {
                assert_eq!((l.holder.as_str(), l.fencing_token), ("b", 2))
            }
            other => panic!("{other:?}"),
        }
        // Nothing was written by the refused claims.
        assert_eq!(s.get("j").unwrap(), None);
        assert!(s.fires("j").unwrap().is_empty());
        // The new leader claims it once; a second claim of the same fire is refused.
        let fence_b = lb.fence();
        assert_eq!(
            s.claim("j", &fire("rb", at, secs(13)), &|_| false, Some(&fence_b))
                .unwrap(),
            ClaimOutcome::Claimed
        );
        s.finish("j", "rb", secs(14), true).unwrap();
        assert_eq!(
            s.claim("j", &fire("rb2", at, secs(15)), &|_| false, Some(&fence_b))
                .unwrap(),
            ClaimOutcome::AlreadyFired {
                run_id: "rb".into()
            }
        );
        let fires = s.fires("j").unwrap();
        assert_eq!(fires.len(), 1);
        assert_eq!(
            (
                fires[0].run_id.as_str(),
                fires[0].fencing_token,
                fires[0].scheduled_at
            ),
            ("rb", 2, at)
        );
        assert_eq!(
            s.get("j").unwrap().unwrap().last_run_id.as_deref(),
            Some("rb")
        );
        // A manual run needs no fence.
        let mut manual = fire("rm", at, secs(16));
        manual.scheduled_at = None;
        manual.trigger = "manual".into();
        assert_eq!(
            s.claim("j", &manual, &|_| false, None).unwrap(),
            ClaimOutcome::Claimed
        );
    }

    #[test]
    fn the_read_only_open_creates_nothing() {
        let Some(pg) = recops_testkit::PgCluster::shared() else {
            return;
        };
        let url = pg.fresh_database();
        let name = url.rsplit('/').next().unwrap().to_owned();
        let db = PgDatabase::connect_new(&url).unwrap();
        assert!(PgStateStore::open_existing(&db).unwrap().is_none());
        assert_eq!(
            pg.psql(&name, "SELECT to_regclass('scheduler_jobs') IS NULL"),
            "t"
        );
        PgStateStore::open(&db).unwrap();
        assert!(PgStateStore::open_existing(&db).unwrap().is_some());
        assert_eq!(
            pg.psql(
                &name,
                "SELECT string_agg(store || ':' || version, ',') FROM recops_schema_migrations"
            ),
            "scheduler:1"
        );
    }
}
