//! Failover between schedulers on several hosts sharing one PostgreSQL: the leader
//! lease. Only the holder fires jobs; it renews the lease every
//! `failover.renew_interval_seconds`, and a follower takes it over once it has not
//! been renewed for `failover.lease_seconds`. Each takeover increments the fencing
//! token, and a fire is claimed only under the current token, so a leader that stalled
//! past its lease (and was replaced) cannot run a fire.

use super::*;
use crate::state::{Fence, LeaderLease, LeaseCandidate, LeaseOutcome};

/// This scheduler's side of the lease.
#[derive(Debug)]
pub(super) struct Failover {
    candidate: LeaseCandidate,
    /// The lease while this scheduler is the leader.
    lease: Option<LeaderLease>,
    /// When the lease was last renewed or tried, on the clock's monotonic time.
    last_attempt: Option<StdDuration>,
    /// The leader last logged while following (logged once per leader).
    followed: Option<String>,
}

impl Failover {
    pub(super) fn new() -> Self {
        Failover {
            candidate: LeaseCandidate::current(),
            lease: None,
            last_attempt: None,
            followed: None,
        }
    }

    /// The fence of this scheduler's lease, while it leads.
    pub(super) fn fence(&self) -> Option<Fence> {
        self.lease.as_ref().map(LeaderLease::fence)
    }
}

impl Scheduler {
    /// Tries to take or renew the leader lease now; true when this scheduler leads.
    /// Logs each change of role.
    pub(super) fn elect(&mut self, now: DateTime<Utc>) -> Result<bool> {
        let mono = self.clock.monotonic();
        let lease = self.config.lease;
        let Some(f) = self.failover.as_mut() else {
            return Ok(true);
        };
        f.last_attempt = Some(mono);
        let outcome = self.state.acquire_lease(&f.candidate, now, lease);
        let outcome = match outcome {
            Ok(o) => o,
            Err(e) => {
                // Without the database no claim can succeed either; keep the role and
                // let the lease decide (a fire is fenced once it has expired).
                self.log.error(&format!(
                    "Cannot renew the scheduler leader lease: {e}",
                    e = recops_core::error_chain(&e)
                ));
                return Ok(f.lease.is_some());
            }
        };
        let was_leader = f.lease.is_some();
        match outcome {
            LeaseOutcome::Leader { lease, took_over } => {
                let new_term = took_over || !was_leader;
                if new_term {
                    self.log.info(&format!(
                        "Leader: this scheduler fires the jobs | holder={} | fencing_token={} \
                         | lease={}",
                        lease.holder,
                        lease.fencing_token,
                        human_duration(self.config.lease)
                    ));
                }
                f.followed = None;
                f.lease = Some(lease);
                Ok(true)
            }
            LeaseOutcome::Follower(leader) => {
                f.lease = None;
                if was_leader {
                    self.log.warn(&format!(
                        "Lost the leader lease to {} (fencing_token={}): firing no more jobs",
                        leader.holder, leader.fencing_token
                    ));
                }
                if f.followed.as_deref() != Some(leader.holder.as_str()) {
                    self.log.info(&format!(
                        "Standing by: {} leads (host {}, pid {}, fencing_token={}, lease \
                         expires {}) | taking over if its lease is not renewed for {}",
                        leader.holder,
                        leader.host,
                        leader.pid,
                        leader.fencing_token,
                        format_local(leader.expires_at, self.config.timezone),
                        human_duration(self.config.lease)
                    ));
                    f.followed = Some(leader.holder);
                }
                Ok(false)
            }
        }
    }

    /// One round of the lease in [`tick`](Self::tick): renews (leader) or tries a
    /// takeover (follower) once per renew interval; on becoming the leader takes
    /// charge of the jobs. True when this scheduler leads.
    pub(super) fn lead(&mut self, now: DateTime<Utc>) -> Result<bool> {
        let Some(f) = self.failover.as_ref() else {
            return Ok(true);
        };
        let was_leader = f.lease.is_some();
        let due = f.last_attempt.is_none_or(|t| {
            self.clock.monotonic().saturating_sub(t) >= to_std(self.config.renew_interval)
        });
        if !due {
            return Ok(was_leader);
        }
        let leads = self.elect(now)?;
        if leads
            && !was_leader
            && let Err(e) = self.take_charge(now)
        {
            // Not in charge yet: try again at the next round (the lease is ours, so
            // the retry renews it and takes charge then).
            if let Some(f) = self.failover.as_mut() {
                f.lease = None;
                f.last_attempt = None;
            }
            return Err(e);
        }
        Ok(leads)
    }

    /// The fence for a scheduled fire: the lease while leading (`None` in embedded
    /// mode, where no fence is needed).
    pub(super) fn fence(&self) -> Option<Fence> {
        self.failover.as_ref().and_then(Failover::fence)
    }

    /// Gives the lease up (a clean shutdown), so a follower takes over at its next try.
    pub(super) fn resign(&mut self) {
        let Some(f) = self.failover.as_mut() else {
            return;
        };
        if f.lease.take().is_some() {
            match self.state.release_lease(&f.candidate.holder) {
                Ok(()) => self.log.info("Leader lease released"),
                Err(e) => self.log.error(&format!(
                    "Cannot release the scheduler leader lease: {e}",
                    e = recops_core::error_chain(&e)
                )),
            }
        }
    }

    /// A fenced claim: this scheduler no longer leads.
    pub(super) fn fenced(&mut self, job: &str, current: Option<&LeaderLease>) {
        if let Some(f) = self.failover.as_mut() {
            f.lease = None;
        }
        self.log.warn(&format!(
            "Fire refused: {job} | this scheduler's leader lease is no longer current{} | \
             firing no more jobs",
            current
                .map(|l| format!(" (held by {}, fencing_token={})", l.holder, l.fencing_token))
                .unwrap_or_default()
        ));
    }
}
