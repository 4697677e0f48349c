//! The scheduler: fires due jobs, supervises them, records everything.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use nix::sys::signal::Signal;
use recops_core::{
    Home, LogFile, LogFileOptions, LogLevel, RecopsConfig, SharedClock, SystemClock,
    format_timestamp,
};
use recops_tracking::{LockOptions, PipelineLock, PipelineTracker};
use serde::Serialize;
use serde_json::json;

use crate::alert::{AlertSink, JOB_OVERDUE, NoAlertSink, SchedulerAlert};
use crate::config::{JobSpec, LoadedConfig};
use crate::error::{Error, Result};
use crate::log::{SchedulerLog, completed_line, starting_line};
use crate::process::{JobCommand, JobProcess, ProcessEnd, claim_group_alive, claim_owner_alive};
use crate::schedule::{DueFire, Trigger, check_overdue, format_local, human_duration, plan_fires};
use crate::state::{ClaimOutcome, RunningClaim, StateStore};
use crate::stop::StopSignal;
use leader::Failover;
use recops_core::Severity;
use recops_core::procid::ProcessIdentity;

mod fire;
mod leader;
mod overdue;
mod recovery;
mod supervise;

/// Name of the lock a running scheduler holds (`logs/locks/scheduler.lock`).
pub const SCHEDULER_LOCK: &str = "scheduler";

/// How a scheduler is built.
#[derive(Debug, Clone)]
pub struct SchedulerOptions {
    /// Where bare job binary names are looked up (default: the folder of the running
    /// executable).
    pub bin_dir: PathBuf,
    /// The clock (tests use a `FixedClock`).
    pub clock: SharedClock,
    /// Where `job_overdue` alerts go.
    pub alerts: Arc<dyn AlertSink>,
    /// How often the loop wakes up to reap jobs and look for due fires.
    pub poll_interval: StdDuration,
    /// Refuse to open when an enabled job's binary is missing (default true; a
    /// one-off `--run-now` only needs its own job's binary, checked when it runs).
    pub require_all_binaries: bool,
}

impl SchedulerOptions {
    /// Options with the system clock, no alert sink, a 500 ms poll and `bin_dir`.
    pub fn new(bin_dir: impl Into<PathBuf>) -> Self {
        SchedulerOptions {
            bin_dir: bin_dir.into(),
            clock: SystemClock::shared(),
            alerts: Arc::new(NoAlertSink),
            poll_interval: StdDuration::from_millis(500),
            require_all_binaries: true,
        }
    }
}

/// The folder of the running executable, where the job binaries are built.
pub fn default_bin_dir() -> Result<PathBuf> {
    let exe = std::env::current_exe().map_err(|e| Error::Io {
        action: "cannot find the scheduler executable".into(),
        source: e,
    })?;
    Ok(exe
        .parent()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(".")))
}

/// The result of one run of a job.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobOutcome {
    /// The job id.
    pub job: String,
    /// Its `pipeline_runs` row.
    pub run_id: String,
    /// Why it ran.
    pub trigger: Trigger,
    /// `success` or `failed`.
    pub status: String,
    /// Wall time of the run.
    pub duration_seconds: f64,
    /// For a failure: `exit_code`, `signal`, `timeout`, `shutdown`, `orphaned`, `spawn`.
    pub reason: Option<String>,
    /// For a failure: what happened (`exit code 3`, `timed out after 30m`).
    pub error: Option<String>,
    /// The job's output file.
    pub job_log: PathBuf,
}

impl JobOutcome {
    /// True when the job succeeded.
    pub fn success(&self) -> bool {
        self.status == "success"
    }

    /// One line for people: `data_refresh success in 90.0 s (output: ...)`.
    pub fn to_text(&self) -> String {
        format!(
            "{} {} in {:.1} s{} (run {}, output: {})\n",
            self.job,
            self.status,
            self.duration_seconds,
            self.error
                .as_deref()
                .map(|e| format!(": {e}"))
                .unwrap_or_default(),
            self.run_id,
            self.job_log.display()
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StopReason {
    Timeout,
    Shutdown,
}

#[derive(Debug)]
struct StopRequest {
    reason: StopReason,
    /// When SIGTERM was sent, on the clock's monotonic time.
    term_mono: StdDuration,
    killed: bool,
}

#[derive(Debug)]
struct RunningJob {
    run_id: String,
    trigger: Trigger,
    started_at: DateTime<Utc>,
    /// The start on the clock's monotonic time: timeouts are measured on it, so a
    /// step of the wall clock never kills a healthy job.
    started_mono: StdDuration,
    process: JobProcess,
    stop: Option<StopRequest>,
}

#[derive(Debug)]
struct JobRuntime {
    spec: JobSpec,
    first_seen: DateTime<Utc>,
    last_fire: DateTime<Utc>,
    next_fire: Option<DateTime<Utc>>,
    last_success: Option<DateTime<Utc>>,
    overdue_since: Option<DateTime<Utc>>,
    running: Option<RunningJob>,
}

/// The cron scheduler of one home.
///
/// Time comes from the clock of its [`SchedulerOptions`]; [`tick`](Self::tick) does
/// one round of work (reap finished jobs, enforce timeouts, start due jobs, check
/// overdue jobs), so tests drive it with a fixed clock while the jobs are real
/// processes. [`run`](Self::run) loops over `tick` until stopped.
#[derive(Debug)]
pub struct Scheduler {
    home: Home,
    config: LoadedConfig,
    clock: SharedClock,
    state: StateStore,
    tracker: PipelineTracker,
    log: SchedulerLog,
    alerts: Arc<dyn AlertSink>,
    poll_interval: StdDuration,
    max_log_files: usize,
    jobs: Vec<JobRuntime>,
    stopping: bool,
    last_overdue_check: Option<DateTime<Utc>>,
    lock: Option<PipelineLock>,
    /// The leader lease, with a shared (PostgreSQL) state store; `None` in embedded
    /// mode, where this scheduler is the only one.
    failover: Option<Failover>,
}

impl Scheduler {
    /// Opens the scheduler of `home`: loads and validates
    /// `config/scheduler_config.json`, checks every enabled job's binary (see
    /// [`SchedulerOptions::require_all_binaries`]), opens the state database, the
    /// pipeline tracker and `logs/scheduler/scheduler.log`. A refused config writes
    /// nothing.
    pub fn open(home: &Home, options: SchedulerOptions) -> Result<Self> {
        let root = std::path::absolute(home.root()).map_err(|e| Error::Io {
            action: format!("cannot resolve the home {}", home.root().display()),
            source: e,
        })?;
        let home = Home::new(root);
        let config = LoadedConfig::load(&home, &options.bin_dir)?;
        if options.require_all_binaries {
            config.check_binaries()?;
        }
        let max_log_files = RecopsConfig::load(&home)?.logging.max_files;
        let state = StateStore::open_home(&home)?;
        let failover = state.supports_failover().then(Failover::new);
        let tracker = PipelineTracker::open_home(&home, options.clock.clone())?;
        let log = SchedulerLog::new(LogFile::open(
            home.scheduler_log(),
            LogFileOptions {
                max_files: max_log_files,
                clock: options.clock.clone(),
            },
        )?);
        let now = options.clock.now();
        let jobs = config
            .jobs
            .iter()
            .map(|spec| JobRuntime {
                spec: spec.clone(),
                first_seen: now,
                last_fire: now,
                next_fire: None,
                last_success: None,
                overdue_since: None,
                running: None,
            })
            .collect();
        Ok(Scheduler {
            home,
            config,
            clock: options.clock,
            state,
            tracker,
            log,
            alerts: options.alerts,
            poll_interval: options.poll_interval,
            max_log_files,
            jobs,
            stopping: false,
            last_overdue_check: None,
            lock: None,
            failover,
        })
    }

    /// The loaded config.
    pub fn config(&self) -> &LoadedConfig {
        &self.config
    }

    /// The state database.
    pub fn state(&self) -> &StateStore {
        &self.state
    }

    /// The ids of the jobs running now (under this scheduler).
    pub fn running_jobs(&self) -> Vec<String> {
        self.jobs
            .iter()
            .filter(|j| j.running.is_some())
            .map(|j| j.spec.name.clone())
            .collect()
    }

    /// The process group of the running instance of `job`, if it runs here.
    pub fn running_pgid(&self, job: &str) -> Option<i32> {
        self.jobs
            .iter()
            .find(|j| j.spec.name == job)
            .and_then(|j| j.running.as_ref())
            .map(|r| r.process.pgid())
    }

    /// Starts scheduling: takes the scheduler lock of the home (one scheduler per
    /// home), adopts or closes runs left by a scheduler that exited, then handles the
    /// fires missed while it was down: the newest one of each job runs now as
    /// `catch-up` if it is within the job's grace, older ones are logged as skipped.
    pub fn start(&mut self) -> Result<()> {
        let lock = PipelineLock::acquire_in(
            &self.home.locks_dir(),
            SCHEDULER_LOCK,
            &LockOptions {
                // The scheduler runs for months: its lock is never stale.
                stale_after: Duration::days(365 * 100),
                clock: self.clock.clone(),
            },
        )?;
        if !lock.acquired() {
            let h = lock.holder();
            return Err(Error::AlreadyRunning {
                pid: h.map(|h| h.pid).unwrap_or_default(),
                host: h.map(|h| h.host.clone()).unwrap_or_else(|| "?".into()),
                since: h
                    .map(|h| h.started_at.clone())
                    .unwrap_or_else(|| "?".into()),
            });
        }
        self.lock = Some(lock);
        let now = self.clock.now();
        let enabled = self.jobs.iter().filter(|j| j.spec.enabled).count();
        self.log.info(&format!(
            "Scheduler started | timezone={} | jobs={} enabled of {} | config={} | pid={}",
            self.config.timezone.name(),
            enabled,
            self.jobs.len(),
            self.config.file.display(),
            std::process::id()
        ));
        if self.failover.is_some() && !self.elect(now)? {
            return Ok(());
        }
        self.take_charge(now)
    }

    /// Becomes the one firing the jobs (at start, or on taking the leader lease over):
    /// adopts or closes runs left behind, reloads each job's state (another scheduler
    /// may have advanced it), then handles missed fires as [`start`](Self::start) says.
    fn take_charge(&mut self, now: DateTime<Utc>) -> Result<()> {
        for i in 0..self.jobs.len() {
            if self.jobs[i].running.is_none() {
                self.recover(i, now)?;
            }
        }
        for i in 0..self.jobs.len() {
            let name = self.jobs[i].spec.name.clone();
            let st = self.state.ensure(&name, now)?;
            let job = &mut self.jobs[i];
            job.first_seen = st.first_seen;
            job.last_success = st.last_success;
            job.overdue_since = st.overdue_since;
            job.last_fire = st.last_fire.unwrap_or(now);
            if !job.spec.enabled {
                // A disabled job's fires are not owed: re-enabling it starts afresh.
                job.last_fire = now;
                job.next_fire = None;
                self.state.set_fires(&name, now, None)?;
                self.log.info(&format!(
                    "Job disabled: {name} (enabled=false in the config)"
                ));
                continue;
            }
            self.plan_and_fire(i, now)?;
            let job = &self.jobs[i];
            if let Some(next) = job.next_fire {
                self.log.info(&format!(
                    "Scheduled job: {name} | cron={} | next={}",
                    job.spec.schedule.expression(),
                    format_local(next, self.config.timezone)
                ));
            }
        }
        Ok(())
    }

    /// One round: reap finished jobs and enforce timeouts, start due jobs (unless
    /// stopping), check for overdue jobs. Never blocks.
    pub fn tick(&mut self) -> Result<()> {
        let now = self.clock.now();
        for i in 0..self.jobs.len() {
            self.supervise(i, now);
        }
        if self.stopping {
            return Ok(());
        }
        if self.failover.is_some() && !self.lead(now)? {
            // A follower supervises what it started, but fires nothing.
            return Ok(());
        }
        let mut first_error = None;
        for i in 0..self.jobs.len() {
            let job = &self.jobs[i];
            if !job.spec.enabled || job.next_fire.is_some_and(|n| now < n) {
                continue;
            }
            if let Err(e) = self.plan_and_fire(i, now) {
                self.log.error(&format!(
                    "Cannot schedule job {}: {e}",
                    self.jobs[i].spec.name,
                    e = recops_core::error_chain(&e)
                ));
                first_error.get_or_insert(e);
            }
        }
        if self
            .last_overdue_check
            .is_none_or(|t| now - t >= Duration::seconds(60) || now < t)
        {
            self.last_overdue_check = Some(now);
            self.check_overdue_jobs(now);
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Stops: starts no more jobs, waits for the running ones up to
    /// `shutdown_grace_seconds` (or until a second stop request), then stops those left
    /// (SIGTERM, SIGKILL after `kill_grace_seconds`) and records them as failed with
    /// reason `shutdown`. Releases the scheduler lock.
    pub fn shutdown(&mut self, stop: &StopSignal) -> Result<()> {
        self.stopping = true;
        let started = self.clock.monotonic();
        let running = self.running_jobs();
        if running.is_empty() {
            self.log.info("Scheduler stopping: no job running");
        } else {
            self.log.info(&format!(
                "Scheduler stopping: waiting up to {} for {} running job(s): {}",
                human_duration(self.config.shutdown_grace),
                running.len(),
                running.join(", ")
            ));
        }
        let first_requests = stop.requests();
        loop {
            self.tick()?;
            if self.jobs.iter().all(|j| j.running.is_none()) {
                break;
            }
            let mono = self.clock.monotonic();
            let forced = stop.requests() > first_requests.max(1);
            if forced || mono.saturating_sub(started) >= to_std(self.config.shutdown_grace) {
                for j in &mut self.jobs {
                    if let Some(run) = j.running.as_mut()
                        && run.stop.is_none()
                    {
                        self.log.warn(&format!(
                            "Stopping job: {} | {} | sending SIGTERM to process group {}",
                            j.spec.name,
                            if forced {
                                "second stop request".to_owned()
                            } else {
                                format!(
                                    "still running after the shutdown grace of {}",
                                    human_duration(self.config.shutdown_grace)
                                )
                            },
                            run.process.pgid()
                        ));
                        if let Err(e) = run.process.signal_group(Signal::SIGTERM) {
                            self.log.error(&format!(
                                "Cannot signal job {}: {e}",
                                j.spec.name,
                                e = recops_core::error_chain(&e)
                            ));
                        }
                        run.stop = Some(StopRequest {
                            reason: StopReason::Shutdown,
                            term_mono: mono,
                            killed: false,
                        });
                    }
                }
            }
            std::thread::sleep(self.poll_interval.min(StdDuration::from_millis(100)));
        }
        let now = self.clock.now();
        for j in &self.jobs {
            if !j.spec.enabled {
                self.state.set_fires(&j.spec.name, now, None)?;
            }
        }
        self.resign();
        self.log.info("Scheduler stopped");
        self.lock = None;
        Ok(())
    }

    /// Runs until `stop` is requested: [`start`](Self::start), then
    /// [`tick`](Self::tick) every poll interval, then [`shutdown`](Self::shutdown).
    /// Errors of a single round are logged and the loop goes on.
    pub fn run(&mut self, stop: &StopSignal) -> Result<()> {
        self.start()?;
        while !stop.is_requested() {
            // Errors are already in the log; a full disk or a locked database must not
            // stop the other jobs.
            let _ = self.tick();
            stop.wait_timeout(self.poll_interval);
        }
        self.shutdown(stop)
    }

    /// Runs `job` once now (trigger `manual`), whether enabled or not, and waits for it:
    /// same process group, timeout, logs and records as a scheduled run. Refused while
    /// another instance of the job runs. A stop request terminates it (reason
    /// `shutdown`).
    pub fn run_now(&mut self, job: &str, stop: &StopSignal) -> Result<JobOutcome> {
        let spec = self.config.job(job)?;
        if let Some(problem) = self
            .config
            .binary_problem(job)
            .map(str::to_owned)
            .or_else(|| {
                // Disabled jobs are not checked at load.
                (!spec.binary.is_file())
                    .then(|| format!("job binary {} does not exist", spec.binary.display()))
            })
        {
            return Err(Error::Core(recops_core::Error::Config {
                file: self.config.file.clone(),
                key: Some(format!("jobs.{job}.binary")),
                message: problem,
            }));
        }
        let i = self
            .jobs
            .iter()
            .position(|j| j.spec.name == job)
            .ok_or_else(|| Error::UnknownJob {
                job: job.to_owned(),
                file: self.config.file.clone(),
                known: String::new(),
            })?;
        let now = self.clock.now();
        match self.start_job(i, Trigger::Manual, None, now)? {
            Started::Running => {}
            Started::Failed(outcome) => return Ok(outcome),
            Started::Fenced => {
                return Err(Error::Io {
                    action: format!("job {job} was not started"),
                    source: std::io::Error::other("a manual run is never fenced"),
                });
            }
            Started::Busy(holder) => {
                return Err(Error::JobRunning {
                    job: job.to_owned(),
                    pgid: holder.pgid.unwrap_or_default(),
                    run_id: holder.run_id,
                });
            }
        }
        loop {
            let now = self.clock.now();
            if stop.is_requested()
                && let Some(run) = self.jobs[i].running.as_mut()
                && run.stop.is_none()
            {
                self.log.warn(&format!(
                    "Stopping job: {job} | interrupted | sending SIGTERM to process group {}",
                    run.process.pgid()
                ));
                if let Err(e) = run.process.signal_group(Signal::SIGTERM) {
                    self.log.error(&format!(
                        "Cannot signal job {job}: {e}",
                        e = recops_core::error_chain(&e)
                    ));
                }
                run.stop = Some(StopRequest {
                    reason: StopReason::Shutdown,
                    term_mono: self.clock.monotonic(),
                    killed: false,
                });
            }
            if let Some(outcome) = self.supervise(i, now) {
                return Ok(outcome);
            }
            std::thread::sleep(self.poll_interval.min(StdDuration::from_millis(100)));
        }
    }
}

/// What [`Scheduler::start_job`] did.
#[derive(Debug)]
enum Started {
    /// The job runs.
    Running,
    /// Another live instance holds the job (logged).
    Busy(RunningClaim),
    /// It could not be started (recorded as failed).
    Failed(JobOutcome),
    /// Not started: the fire was refused by its fence or had already run (logged).
    Fenced,
}

/// A configured duration (never negative after validation) as a std one.
fn to_std(d: Duration) -> StdDuration {
    d.to_std().unwrap_or_default()
}

fn parse_trigger(s: &str) -> Trigger {
    match s {
        "manual" => Trigger::Manual,
        "catch-up" => Trigger::CatchUp,
        _ => Trigger::Cron,
    }
}
