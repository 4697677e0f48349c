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

use crate::alert::{AlertSeverity, AlertSink, JOB_OVERDUE, NoAlertSink, SchedulerAlert};
use crate::config::{JobSpec, LoadedConfig};
use crate::error::{Error, Result};
use crate::log::{SchedulerLog, completed_line, starting_line};
use crate::process::{JobCommand, JobProcess, ProcessEnd, group_alive, process_alive};
use crate::schedule::{DueFire, Trigger, check_overdue, format_local, human_duration, plan_fires};
use crate::state::{ClaimOutcome, RunningClaim, StateStore};
use crate::stop::StopSignal;

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
    term_at: DateTime<Utc>,
    killed: bool,
}

#[derive(Debug)]
struct RunningJob {
    run_id: String,
    trigger: Trigger,
    started_at: DateTime<Utc>,
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
        let state = StateStore::open(&home.scheduler_state_db())?;
        let tracker = PipelineTracker::open_path(&home.pipeline_db(), options.clock.clone())?;
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
        for i in 0..self.jobs.len() {
            self.recover(i, now)?;
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

    /// Adopts (still alive) or closes (gone) a run of job `i` that a previous
    /// scheduler left in the state database.
    fn recover(&mut self, i: usize, now: DateTime<Utc>) -> Result<()> {
        let name = self.jobs[i].spec.name.clone();
        let Some(claim) = self.state.get(&name)?.and_then(|s| s.running) else {
            return Ok(());
        };
        let me = std::process::id();
        if claim.owner_pid != me && process_alive(claim.owner_pid) {
            // A `--run-now` in another process supervises it.
            return Ok(());
        }
        match claim.pgid.and_then(|g| i32::try_from(g).ok()) {
            Some(pgid) if group_alive(pgid) => {
                self.state.set_owner(&name, &claim.run_id, me)?;
                self.log.warn(&format!(
                    "Adopted job: {name} | left running by a scheduler that exited | \
                     process group {pgid} | run {} | started {}",
                    claim.run_id,
                    format_local(claim.since, self.config.timezone)
                ));
                self.jobs[i].running = Some(RunningJob {
                    run_id: claim.run_id,
                    trigger: parse_trigger(&claim.trigger),
                    started_at: claim.since,
                    process: JobProcess::adopt(pgid),
                    stop: None,
                });
            }
            _ => self.close_dead_claim(&name, &claim, now),
        }
        Ok(())
    }

    /// Records a run whose supervisor and processes are gone as failed (orphaned).
    fn close_dead_claim(&self, job: &str, claim: &RunningClaim, now: DateTime<Utc>) {
        let error = "the scheduler supervising this run exited before it finished; \
                     its outcome is unknown (see the job log)";
        match self
            .tracker
            .fail_run_with(&claim.run_id, error, json!({"reason": "orphaned"}))
        {
            Ok(())
            | Err(recops_tracking::Error::RunAlreadyFinished { .. })
            | Err(recops_tracking::Error::RunNotFound { .. }) => {}
            Err(e) => self.log.error(&format!(
                "Cannot record the orphaned run {} of {job}: {e}",
                claim.run_id,
                e = recops_core::error_chain(&e)
            )),
        }
        if let Err(e) = self.state.finish(job, &claim.run_id, now, false) {
            self.log.error(&format!(
                "Cannot update the scheduler state of {job}: {e}",
                e = recops_core::error_chain(&e)
            ));
        }
        self.log.warn(&format!(
            "Job completed: {job} | duration={}s | status=failed | reason=orphaned | error={error}",
            (now - claim.since).num_seconds().max(0)
        ));
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

    fn plan_and_fire(&mut self, i: usize, now: DateTime<Utc>) -> Result<()> {
        let tz = self.config.timezone;
        let job = &self.jobs[i];
        let name = job.spec.name.clone();
        let plan = plan_fires(
            &job.spec.schedule,
            job.last_fire,
            now,
            job.spec.catch_up_grace,
        );
        if let Some(s) = plan.skipped {
            let count = if s.capped {
                format!("more than {}", s.count)
            } else {
                s.count.to_string()
            };
            let range = if s.first == s.last {
                format!("scheduled {}", format_local(s.first, tz))
            } else {
                format!(
                    "scheduled {} to {}",
                    format_local(s.first, tz),
                    format_local(s.last, tz)
                )
            };
            self.log.warn(&format!(
                "Missed fire skipped: {name} | {count} fire(s) {range} | older than the \
                 catch-up grace of {} or superseded by a newer fire",
                human_duration(s.grace)
            ));
        }
        {
            let job = &mut self.jobs[i];
            job.last_fire = plan.last_fire;
            job.next_fire = plan.next_fire;
        }
        // A state write that fails must not cost the run: log it and go on.
        let saved = self.state.set_fires(&name, plan.last_fire, plan.next_fire);
        if let Err(e) = &saved {
            self.log.error(&format!(
                "Cannot update the scheduler state of {name}: {e}",
                e = recops_core::error_chain(e)
            ));
        }
        if let Some(due) = plan.due {
            if due.trigger == Trigger::CatchUp {
                self.log.info(&format!(
                    "Catch-up: {name} | missed fire {} | late by {}",
                    format_local(due.scheduled_at, tz),
                    human_duration(due.late_by)
                ));
            }
            self.fire(i, due, now)?;
        }
        saved
    }

    fn fire(&mut self, i: usize, due: DueFire, now: DateTime<Utc>) -> Result<()> {
        let tz = self.config.timezone;
        let job = &self.jobs[i];
        if let Some(r) = &job.running {
            self.log.warn(&format!(
                "Skipping job: {} | previous run still running (process group {}, run {}, \
                 started {}) | scheduled={}",
                job.spec.name,
                r.process.pgid(),
                r.run_id,
                format_local(r.started_at, tz),
                format_local(due.scheduled_at, tz)
            ));
            return Ok(());
        }
        self.start_job(i, due.trigger, Some(due.scheduled_at), now)
            .map(|_| ())
    }

    /// Starts job `i`.
    fn start_job(
        &mut self,
        i: usize,
        trigger: Trigger,
        scheduled_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<Started> {
        let tz = self.config.timezone;
        let spec = self.jobs[i].spec.clone();
        let name = spec.name.as_str();
        let me = std::process::id();
        let is_live = |c: &RunningClaim| {
            (c.owner_pid != me && process_alive(c.owner_pid))
                || c.pgid
                    .and_then(|g| i32::try_from(g).ok())
                    .is_some_and(group_alive)
        };
        // Cheap check first, so a busy job does not leave a pipeline run behind.
        if let Some(holder) = self.state.get(name)?.and_then(|s| s.running)
            && is_live(&holder)
        {
            self.log_busy(name, &holder, scheduled_at, trigger);
            return Ok(Started::Busy(holder));
        }
        let job_log = self.home.ensure_parent(self.home.job_log(name)?)?;
        let scheduled_text = scheduled_at.map(format_timestamp);
        let run_id = self.tracker.start_run(
            &spec.pipeline_name(),
            json!({
                "job": name,
                "trigger": trigger.as_str(),
                "scheduled_at": scheduled_text,
                "binary": spec.binary.display().to_string(),
                "args": spec.args,
                "job_log": job_log.display().to_string(),
                "scheduler_pid": me,
            }),
        )?;
        let claim = RunningClaim {
            run_id: run_id.clone(),
            owner_pid: me,
            pgid: None,
            since: now,
            trigger: trigger.as_str().to_owned(),
            scheduled_at,
        };
        match self.state.claim(name, &claim, &is_live)? {
            ClaimOutcome::Busy(holder) => {
                // Lost a race with another process: this run never started.
                let _ = self.tracker.cancel_run(&run_id);
                self.log_busy(name, &holder, scheduled_at, trigger);
                return Ok(Started::Busy(holder));
            }
            ClaimOutcome::ClaimedAfterDead(dead) => self.close_dead_claim(name, &dead, now),
            ClaimOutcome::Claimed => {}
        }
        let scheduled_local = scheduled_at.map(|s| format_local(s, tz));
        self.log
            .info(&starting_line(name, trigger, scheduled_local.as_deref()));
        let command = JobCommand {
            program: spec.binary.clone(),
            args: spec.args.clone(),
            cwd: self.home.root().to_path_buf(),
            env: vec![
                (
                    recops_core::HOME_ENV.to_owned(),
                    self.home.root().display().to_string(),
                ),
                ("RECOPS_SCHEDULER_RUN_ID".to_owned(), run_id.clone()),
                (
                    "RECOPS_SCHEDULER_TRIGGER".to_owned(),
                    trigger.as_str().to_owned(),
                ),
            ],
        };
        self.job_log_line(
            name,
            LogLevel::Info,
            &format!(
                "Starting job: {name} | run_id={run_id} | trigger={trigger} | command={}{}",
                spec.binary.display(),
                spec.args
                    .iter()
                    .map(|a| format!(" {a}"))
                    .collect::<String>()
            ),
            true,
        );
        match JobProcess::spawn(&command, &job_log) {
            Ok(process) => {
                self.state
                    .set_pgid(name, &run_id, i64::from(process.pgid()))?;
                self.jobs[i].running = Some(RunningJob {
                    run_id,
                    trigger,
                    started_at: now,
                    process,
                    stop: None,
                });
                Ok(Started::Running)
            }
            Err(e) => {
                let err = Error::Spawn {
                    job: name.to_owned(),
                    binary: spec.binary.clone(),
                    source: e,
                };
                let message = recops_core::error_chain(&err);
                Ok(Started::Failed(self.record_end(
                    i,
                    &run_id,
                    trigger,
                    now,
                    now,
                    Some(("spawn", message)),
                )))
            }
        }
    }

    fn log_busy(
        &self,
        job: &str,
        holder: &RunningClaim,
        scheduled_at: Option<DateTime<Utc>>,
        trigger: Trigger,
    ) {
        let tz = self.config.timezone;
        self.log.warn(&format!(
            "Skipping job: {job} | already running (run {}, process group {}, supervised by \
             pid {}, started {}) | trigger={trigger}{}",
            holder.run_id,
            holder
                .pgid
                .map(|g| g.to_string())
                .unwrap_or_else(|| "?".into()),
            holder.owner_pid,
            format_local(holder.since, tz),
            scheduled_at
                .map(|s| format!(" | scheduled={}", format_local(s, tz)))
                .unwrap_or_default()
        ));
    }

    /// Reaps job `i` if it ended (returning its outcome), and enforces its timeout and
    /// stop requests.
    fn supervise(&mut self, i: usize, now: DateTime<Utc>) -> Option<JobOutcome> {
        let kill_grace = self.config.kill_grace;
        let name = self.jobs[i].spec.name.clone();
        let timeout = self.jobs[i].spec.timeout;
        let run = self.jobs[i].running.as_mut()?;
        let end = match run.process.poll() {
            Ok(end) => end,
            Err(e) => {
                self.log.error(&format!(
                    "Cannot check job {name} (process group {}): {e}",
                    run.process.pgid(),
                    e = recops_core::error_chain(&e)
                ));
                None
            }
        };
        let mut messages: Vec<(LogLevel, String)> = Vec::new();
        let pgid = run.process.pgid();
        // Timeout: SIGTERM to the whole group.
        if end.is_none() && run.stop.is_none() && now - run.started_at >= timeout {
            messages.push((
                LogLevel::Warning,
                format!(
                    "Job timed out: {name} | timeout={} | sending SIGTERM to process group {pgid}",
                    human_duration(timeout)
                ),
            ));
            if let Err(e) = run.process.signal_group(Signal::SIGTERM) {
                messages.push((
                    LogLevel::Error,
                    format!(
                        "Cannot signal job {name}: {e}",
                        e = recops_core::error_chain(&e)
                    ),
                ));
            }
            run.stop = Some(StopRequest {
                reason: StopReason::Timeout,
                term_at: now,
                killed: false,
            });
        }
        // After the grace, SIGKILL whatever is left of the group (grandchildren that
        // ignore SIGTERM included).
        let mut finished = end.is_some();
        if let Some(stop) = run.stop.as_mut()
            && !stop.killed
        {
            let group_left = run.process.group_alive();
            if end.is_some() && !group_left {
                // Everything exited on SIGTERM.
            } else if now - stop.term_at >= kill_grace {
                messages.push((
                    LogLevel::Warning,
                    format!(
                        "Killing job: {name} | still running {} after SIGTERM | sending SIGKILL \
                         to process group {pgid}",
                        human_duration(kill_grace)
                    ),
                ));
                if let Err(e) = run.process.signal_group(Signal::SIGKILL) {
                    messages.push((
                        LogLevel::Error,
                        format!(
                            "Cannot signal job {name}: {e}",
                            e = recops_core::error_chain(&e)
                        ),
                    ));
                }
                stop.killed = true;
            } else {
                finished = false; // wait for the rest of the group
            }
        }
        for (level, m) in messages {
            self.log.write(level, &m);
        }
        if !finished {
            return None;
        }
        let run = self.jobs[i].running.take()?;
        let end = end.unwrap_or(ProcessEnd::Unknown);
        let failure = match (&run.stop, end) {
            (Some(s), _) if s.reason == StopReason::Timeout => Some((
                "timeout",
                format!(
                    "timed out after {} ({}{})",
                    human_duration(timeout),
                    end.describe(),
                    if s.killed { ", group SIGKILLed" } else { "" }
                ),
            )),
            (Some(_), _) => Some((
                "shutdown",
                format!("stopped at scheduler shutdown ({})", end.describe()),
            )),
            (None, e) if e.success() => None,
            // "The job ran and found a problem" (health-check exit 1) is not a failure.
            (None, ProcessEnd::Exited(c)) if self.jobs[i].spec.ok_exit_codes.contains(&c) => None,
            (None, ProcessEnd::Exited(_)) => Some(("exit_code", end.describe())),
            (None, ProcessEnd::Signaled(_)) => Some(("signal", end.describe())),
            (None, ProcessEnd::Unknown) => Some((
                "orphaned",
                "adopted after a scheduler restart; its exit status is unknown (see the job log)"
                    .to_owned(),
            )),
        };
        Some(self.record_end(i, &run.run_id, run.trigger, run.started_at, now, failure))
    }

    /// Records the end of a run everywhere: pipeline run, state, scheduler log, job log,
    /// and resolves an active overdue alert on success.
    fn record_end(
        &mut self,
        i: usize,
        run_id: &str,
        trigger: Trigger,
        started_at: DateTime<Utc>,
        now: DateTime<Utc>,
        failure: Option<(&str, String)>,
    ) -> JobOutcome {
        let name = self.jobs[i].spec.name.clone();
        let duration = now - started_at;
        let result = match &failure {
            None => self
                .tracker
                .complete_run(run_id, json!({"exit_code": 0, "trigger": trigger.as_str()})),
            Some((reason, error)) => {
                self.tracker
                    .fail_run_with(run_id, error, json!({"reason": reason}))
            }
        };
        if let Err(e) = result {
            self.log.error(&format!(
                "Cannot record run {run_id} of {name}: {e}",
                e = recops_core::error_chain(&e)
            ));
        }
        if let Err(e) = self.state.finish(&name, run_id, now, failure.is_none()) {
            self.log.error(&format!(
                "Cannot update the scheduler state of {name}: {e}",
                e = recops_core::error_chain(&e)
            ));
        }
        let line = completed_line(
            &name,
            duration,
            failure.as_ref().map(|(r, e)| (*r, e.as_str())),
        );
        let level = if failure.is_none() {
            LogLevel::Info
        } else {
            LogLevel::Error
        };
        self.log.write(level, &line);
        self.job_log_line(&name, level, &line, false);
        if failure.is_none() {
            let job = &mut self.jobs[i];
            job.last_success = Some(now);
            if job.overdue_since.take().is_some() {
                let message = format!(
                    "Job {name} succeeded again at {}; the job_overdue alert is resolved.",
                    format_local(now, self.config.timezone)
                );
                self.log.info(&format!("Job overdue resolved: {name}"));
                self.alerts.send(&SchedulerAlert {
                    name: JOB_OVERDUE,
                    job: name.clone(),
                    severity: AlertSeverity::Critical,
                    resolved: true,
                    message,
                    last_success: Some(now),
                });
            }
        }
        let (reason, error) = match failure {
            Some((r, e)) => (Some(r.to_owned()), Some(e)),
            None => (None, None),
        };
        JobOutcome {
            job: name.clone(),
            run_id: run_id.to_owned(),
            trigger,
            status: if reason.is_none() {
                "success"
            } else {
                "failed"
            }
            .to_owned(),
            duration_seconds: duration.num_milliseconds() as f64 / 1000.0,
            reason,
            error,
            job_log: self.home.job_log(&name).unwrap_or_default(),
        }
    }

    /// Writes a scheduler line into the job's own log. `rotate`: through a
    /// [`LogFile`], which rotates the file daily (done at the start of a run, before the
    /// job opens it); otherwise a plain append, so the footer lands in the same file as
    /// the output it closes.
    fn job_log_line(&self, job: &str, level: LogLevel, line: &str, rotate: bool) {
        let Ok(path) = self.home.job_log(job) else {
            return;
        };
        let written = if rotate {
            LogFile::open(
                path,
                LogFileOptions {
                    max_files: self.max_log_files,
                    clock: self.clock.clone(),
                },
            )
            .map_err(|e| recops_core::error_chain(&e))
            .and_then(|f| {
                f.write_line(level, None, line)
                    .map_err(|e| recops_core::error_chain(&e))
            })
        } else {
            let text = recops_core::format_line(self.clock.now(), level, None, line);
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .and_then(|mut f| std::io::Write::write_all(&mut f, text.as_bytes()))
                .map_err(|e| e.to_string())
        };
        if let Err(e) = written {
            tracing::warn!(job, error = %e, "cannot write the job log");
        }
    }

    /// The dead-man's switch: for each enabled job (not running now) that has not
    /// succeeded within twice its period, logs `Job overdue` once per episode and
    /// hands a `job_overdue` alert to the sink at every check (the sink deduplicates
    /// and reminds).
    fn check_overdue_jobs(&mut self, now: DateTime<Utc>) {
        let tz = self.config.timezone;
        for i in 0..self.jobs.len() {
            let job = &self.jobs[i];
            if !job.spec.enabled || job.running.is_some() {
                continue;
            }
            let since = job.last_success.unwrap_or(job.first_seen);
            let Some(o) = check_overdue(&job.spec.schedule, since, job.last_success.is_some(), now)
            else {
                continue;
            };
            let name = job.spec.name.clone();
            let last = if o.ever_succeeded {
                format!("last success {}", format_local(o.since, tz))
            } else {
                format!(
                    "no success since the scheduler first saw it at {}",
                    format_local(o.since, tz)
                )
            };
            let message = format!(
                "Job {name} has not succeeded for {} ({last}); its schedule `{}` ({}) runs it \
                 every {}. Check logs/scheduler/scheduler.log and logs/scheduler/jobs/{name}.log.",
                human_duration(o.silent_for),
                job.spec.schedule.expression(),
                tz.name(),
                human_duration(o.period)
            );
            if job.overdue_since.is_none() {
                self.log.error(&format!(
                    "Job overdue: {name} | {last} | {} without success, more than twice its \
                     period of {}",
                    human_duration(o.silent_for),
                    human_duration(o.period)
                ));
                self.jobs[i].overdue_since = Some(now);
                if let Err(e) = self.state.set_overdue(&name, Some(now)) {
                    self.log.error(&format!(
                        "Cannot update the scheduler state of {name}: {e}",
                        e = recops_core::error_chain(&e)
                    ));
                }
            }
            self.alerts.send(&SchedulerAlert {
                name: JOB_OVERDUE,
                job: name,
                severity: AlertSeverity::Critical,
                resolved: false,
                message,
                last_success: self.jobs[i].last_success,
            });
        }
    }

    /// Stops: starts no more jobs, waits for the running ones up to
    /// `shutdown_grace_seconds` (or until a second stop request), then stops those left
    /// (SIGTERM, SIGKILL after `kill_grace_seconds`) and records them as failed with
    /// reason `shutdown`. Releases the scheduler lock.
    pub fn shutdown(&mut self, stop: &StopSignal) -> Result<()> {
        self.stopping = true;
        let started = self.clock.now();
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
            let now = self.clock.now();
            let forced = stop.requests() > first_requests.max(1);
            if forced || now - started >= self.config.shutdown_grace {
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
                            term_at: now,
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
                    term_at: now,
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
}

fn parse_trigger(s: &str) -> Trigger {
    match s {
        "manual" => Trigger::Manual,
        "catch-up" => Trigger::CatchUp,
        _ => Trigger::Cron,
    }
}
