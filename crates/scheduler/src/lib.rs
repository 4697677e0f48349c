//! recops-scheduler: runs every recops job on its cron schedule (spec Component 9).
//!
//! - [`LoadedConfig`] / [`SchedulerConfig`]: `config/scheduler_config.json` (time zone,
//!   jobs with `enabled`, 5-field `cron`, `timeout_minutes`, optional `binary`, `args`,
//!   `catch_up_grace_minutes`), validated with file, key and reason.
//! - [`CronSchedule`]: cron in the configured time zone, DST-correct (Vixie cron
//!   rules); [`plan_fires`] and [`check_overdue`] are the pure decisions (what is
//!   due, caught up or skipped; when a job is overdue), driven by the time given.
//! - [`Scheduler`]: starts due jobs as child processes in their own process group with
//!   output to `logs/scheduler/jobs/<job>.log`, stops overrunning ones (SIGTERM to the
//!   group, SIGKILL after a grace), runs at most one instance per job, keeps its state
//!   in a [`SchedulerStateStore`], records every run in `pipeline_runs` as
//!   `scheduler.<job>` with its trigger (`cron`, `manual`, `catch-up`), writes the
//!   spec's lines to `logs/scheduler/scheduler.log`, and raises `job_overdue` through
//!   an [`AlertSink`] when a job has not succeeded within twice its period.
//! - [`list_jobs`], [`check_config`]: `scheduler --list` and `--check-config`.
//! - [`scheduler_status`]: `scheduler --status`: the scheduler holding the home's lock
//!   (pid checked against the boot id and its start time), since when, next fires.
//! - [`StateStore`] over [`SchedulerStateStore`]: [`SqliteStateStore`]
//!   (`logs/scheduler_state.db`, one host) or [`PgStateStore`] (PostgreSQL of
//!   `storage.url`, no file written), picked by [`StateStore::open_home`]; readers
//!   (`--status`, `--list`, the dashboard) use [`StateStore::open_existing`], which
//!   never creates or migrates.
//! - Failover (PostgreSQL only): schedulers of several hosts share the state; the
//!   holder of the leader lease ([`LeaderLease`], renewed every
//!   `failover.renew_interval_seconds`, taken over after `failover.lease_seconds`
//!   with the fencing token incremented) fires the jobs, and each scheduled fire is
//!   claimed in one transaction that checks the token and records it in the fire
//!   ledger ([`FireRecord`]), so a fire runs once and a stale leader runs none.
//!   See docs/scheduler.md.
//! - Stored pids (the supervising scheduler, the job's process group) carry the boot
//!   id and process start times: a pid reused after a reboot or by a later process is
//!   never adopted, waited on or killed. Timeouts and graces run on the clock's
//!   monotonic time, so a wall-clock step never kills a healthy job.
//!
//! ```
//! use chrono::{TimeZone, Utc};
//! use recops_scheduler::{CronSchedule, Trigger, plan_fires};
//!
//! let daily = CronSchedule::parse("0 2 * * *", chrono_tz::Asia::Ho_Chi_Minh)?;
//! // 02:00 in Ho Chi Minh City is 19:00 UTC the day before.
//! let fire = Utc.with_ymd_and_hms(2025, 1, 14, 19, 0, 0).unwrap();
//! assert_eq!(daily.next_after(fire - chrono::Duration::hours(1)), Some(fire));
//! // The scheduler was down from before the fire until 3 hours after it: within the
//! // grace of a daily job (6 h), so the fire is caught up once.
//! let plan = plan_fires(&daily, fire - chrono::Duration::days(1), fire + chrono::Duration::hours(3), None);
//! assert_eq!(plan.due.unwrap().trigger, Trigger::CatchUp);
//! # Ok::<(), String>(())
//! ```

mod alert;
mod config;
mod engine;
mod error;
mod listing;
mod log;
mod process;
mod schedule;
mod state;
mod state_pg;
mod status;
mod stop;

pub use alert::{AlertSink, JOB_OVERDUE, NoAlertSink, SchedulerAlert};
pub use config::{
    DEFAULT_SCHEDULER_CONFIG, FailoverConfig, JobConfig, JobSpec, LoadedConfig, SchedulerConfig,
    resolve_binary,
};
pub use engine::{JobOutcome, SCHEDULER_LOCK, Scheduler, SchedulerOptions, default_bin_dir};
pub use error::{Error, Result};
pub use listing::{ConfigCheck, JobListing, Listing, check_config, list_jobs};
pub use log::{completed_line, starting_line};
pub use process::{group_alive, process_alive};
pub use schedule::{
    CronSchedule, DueFire, FirePlan, MAX_COUNTED_MISSES, MAX_DEFAULT_CATCH_UP_GRACE,
    ON_TIME_TOLERANCE, Overdue, SkippedFires, Trigger, check_overdue, format_local, human_duration,
    plan_fires,
};
pub use state::{
    ClaimOutcome, Fence, FireRecord, JobState, LeaderLease, LeaseCandidate, LeaseOutcome,
    RunningClaim, SchedulerStateStore, SqliteStateStore, StateStore,
};
pub use state_pg::{PG_SCHEDULER_MIGRATIONS, PgStateStore};
pub use status::{STATUS_NOT_RUNNING, SchedulerStatus, scheduler_status};
pub use stop::StopSignal;
