//! `scheduler --status`: whether a scheduler runs for this home, since when, as which
//! process, and the next fires of its jobs.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use recops_core::Home;
use recops_core::procid::{Liveness, ProcessIdentity, process_start_ticks};
use recops_tracking::LockHolder;
use serde::Serialize;

use crate::engine::SCHEDULER_LOCK;
use crate::error::Result;
use crate::listing::{JobListing, list_jobs};
use crate::process::process_alive;
use crate::state::{LeaderLease, StateStore};

/// Exit code of `scheduler --status` when no scheduler runs for the home.
pub const STATUS_NOT_RUNNING: u8 = 3;

/// The result of `scheduler --status`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SchedulerStatus {
    /// True when a live scheduler holds the home's scheduler lock.
    pub running: bool,
    /// Its process id (also set for a holder found gone, see `note`).
    pub pid: Option<u32>,
    /// Its host.
    pub host: Option<String>,
    /// When it started (RFC 3339).
    pub since: Option<String>,
    /// `logs/locks/scheduler.lock`, where a running scheduler records itself.
    pub lock_file: PathBuf,
    /// What else was found: a record left by a scheduler that is gone, a holder on
    /// another host whose liveness cannot be checked from here.
    pub note: Option<String>,
    /// The configured time zone.
    pub timezone: String,
    /// The jobs with their next fires, last status and whether they run now.
    pub jobs: Vec<JobListing>,
    /// With a shared (PostgreSQL) state: the leader lease of the schedulers sharing
    /// it (holder, fencing token, expiry).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leader: Option<LeaderLease>,
    /// True when that lease has expired at the time of the status (no leader now).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub leader_expired: bool,
}

/// Reads the scheduler lock of `home` and checks its holder: a pid counts as running
/// only on the same boot and with the start time recorded when it took the lock, so a
/// pid reused after a crash or a reboot is not taken for the scheduler. Read only.
pub fn scheduler_status(
    home: &Home,
    bin_dir: &Path,
    now: DateTime<Utc>,
) -> Result<SchedulerStatus> {
    let listing = list_jobs(home, bin_dir, now, 3)?;
    let lock_file = home.locks_dir().join(format!("{SCHEDULER_LOCK}.lock"));
    let holder: Option<LockHolder> = std::fs::read_to_string(&lock_file)
        .ok()
        .and_then(|t| serde_json::from_str(t.trim()).ok());
    let (running, note) = match &holder {
        None => (false, None),
        Some(h) if h.host != this_host() => (
            true,
            Some(format!(
                "held by host {}: its liveness cannot be checked from here",
                h.host
            )),
        ),
        Some(h) => {
            let id = ProcessIdentity {
                pid: h.pid,
                start_ticks: h.process_start_ticks,
                boot_id: h.boot_id.clone(),
            };
            if id.check() == Liveness::Alive && process_alive(h.pid) {
                (true, None)
            } else {
                let reused = process_start_ticks(h.pid).is_some();
                (
                    false,
                    Some(format!(
                        "the lock names pid {} ({}), which is gone{}; the next scheduler \
                         takes the lock over",
                        h.pid,
                        h.started_at,
                        if reused {
                            " (its pid now belongs to another process)"
                        } else {
                            ""
                        }
                    )),
                )
            }
        }
    };
    let leader = match StateStore::open_existing(home)? {
        Some(store) => store.leader()?,
        None => None,
    };
    Ok(SchedulerStatus {
        leader_expired: leader.as_ref().is_some_and(|l| l.expires_at <= now),
        leader,
        running,
        pid: holder.as_ref().map(|h| h.pid),
        host: holder.as_ref().map(|h| h.host.clone()),
        since: holder.as_ref().map(|h| h.started_at.clone()),
        lock_file,
        note,
        timezone: listing.timezone,
        jobs: listing.jobs,
    })
}

fn this_host() -> String {
    hostname::get()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "unknown".to_owned())
}

impl SchedulerStatus {
    /// The exit code scripts can trust: 0 running, [`STATUS_NOT_RUNNING`] (3) not.
    pub fn exit_code(&self) -> u8 {
        if self.running { 0 } else { STATUS_NOT_RUNNING }
    }

    /// Text for people.
    pub fn to_text(&self) -> String {
        let mut out = match (self.running, self.pid) {
            (true, Some(pid)) => format!(
                "scheduler running: pid {pid} on {} since {}\n",
                self.host.as_deref().unwrap_or("?"),
                self.since.as_deref().unwrap_or("?")
            ),
            _ => "scheduler not running\n".to_owned(),
        };
        if let Some(n) = &self.note {
            let _ = writeln!(out, "note: {n}");
        }
        let _ = writeln!(out, "lock: {}", self.lock_file.display());
        if let Some(l) = &self.leader {
            let _ = writeln!(
                out,
                "leader: {} (host {}, pid {}, fencing token {}, lease {} {})",
                l.holder,
                l.host,
                l.pid,
                l.fencing_token,
                if self.leader_expired {
                    "expired"
                } else {
                    "expires"
                },
                recops_core::format_timestamp(l.expires_at)
            );
        }
        let _ = writeln!(out, "next fires ({}):", self.timezone);
        let w = self.jobs.iter().map(|j| j.job.len()).max().unwrap_or(3);
        for j in &self.jobs {
            let next = match (j.enabled, j.next_fires_local.first()) {
                (false, _) => "- (disabled)".to_owned(),
                (true, Some(n)) => n.clone(),
                (true, None) => "-".to_owned(),
            };
            let _ = writeln!(
                out,
                "  {:<w$}  {next}{}{}",
                j.job,
                j.last_status
                    .as_deref()
                    .map(|s| format!("  last: {s}"))
                    .unwrap_or_default(),
                if j.running { "  (running now)" } else { "" }
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use recops_tracking::{LockOptions, PipelineLock};

    #[test]
    fn a_held_lock_is_running_and_a_gone_or_reused_holder_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::new(dir.path());
        let now = Utc::now();
        let st = scheduler_status(&home, dir.path(), now).unwrap();
        assert!(!st.running);
        assert_eq!(st.exit_code(), 3);
        assert!(
            st.to_text().starts_with("scheduler not running\n"),
            "{}",
            st.to_text()
        );
        assert!(
            st.jobs
                .iter()
                .any(|j| j.job == "health_check" && !j.next_fires.is_empty())
        );

        let lock =
            PipelineLock::acquire_in(&home.locks_dir(), SCHEDULER_LOCK, &LockOptions::default())
                .unwrap();
        let st = scheduler_status(&home, dir.path(), now).unwrap();
        assert!(st.running, "{st:?}");
        assert_eq!(st.pid, Some(std::process::id()));
        assert_eq!(st.exit_code(), 0);
        assert!(
            st.to_text()
                .contains(&format!("pid {}", std::process::id()))
        );

        // The same pid but another start time: a reused pid, not the scheduler.
        let mut h = lock.holder().unwrap().clone();
        h.process_start_ticks = h.process_start_ticks.map(|t| t + 1);
        std::fs::write(lock.path(), serde_json::to_string(&h).unwrap()).unwrap();
        let st = scheduler_status(&home, dir.path(), now).unwrap();
        assert!(!st.running);
        assert!(st.note.unwrap().contains("another process"));
        // Another boot.
        h = lock.holder().unwrap().clone();
        h.boot_id = Some("another-boot".into());
        std::fs::write(lock.path(), serde_json::to_string(&h).unwrap()).unwrap();
        assert!(!scheduler_status(&home, dir.path(), now).unwrap().running);
        drop(lock);
        assert!(!scheduler_status(&home, dir.path(), now).unwrap().running);
    }
}
