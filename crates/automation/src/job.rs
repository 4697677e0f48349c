//! The one job runner: lock -> track -> body -> record -> alert, shared by every job.
//!
//! A job describes itself with a [`Job`] (pipeline name, run metadata, clock, lock
//! policy, tracking policy, failure severity) and hands [`Job::run`] its body. The
//! runner:
//!
//! 1. takes `PipelineLock(<pipeline>)` under [`LockPolicy::Exclusive`]; when another
//!    run holds it, nothing is done and the result is a [`Skip`] with the one skip
//!    message (`another data_refresh run is in progress (pid 12 on host since ...);
//!    skipped`);
//! 2. records a run in `logs/pipeline_metrics.db` with the job's clock;
//! 3. runs the body, which returns a [`Finish`]: its typed output, the [`JobStatus`],
//!    the metadata to record and the alert to send, if any;
//! 4. completes the run (or fails it, for a failed status) and sends the alert through
//!    [`JobAlerts`];
//! 5. when the body returns `Err`, fails the run with the error chain, sends
//!    `pipeline_<name>_failed` at the job's failure severity and returns
//!    [`Error::JobFailed`].
//!
//! [`JobAlerts`] is the one alert path of the jobs: it sends through the alert manager
//! of `config/alerts_config.yaml`; when that config cannot be used, through a log-only
//! manager ([`AlertsConfig::log_only`]), and when an alert reaches no channel, as an
//! ERROR event in the job's log. An alert is never dropped silently.
//!
//! ```
//! use recops_automation::job::{Finish, Job, JobOutcome, JobStatus};
//! use recops_core::{Home, SystemClock};
//!
//! let dir = tempfile::tempdir()?;
//! let home = Home::new(dir.path());
//! let outcome = Job::new(&home, "example", SystemClock::shared())
//!     .run(|_| Ok(Finish::success(42, serde_json::json!({"answer": 42}))))?;
//! let JobOutcome::Ran(ran) = outcome else { unreachable!() };
//! assert_eq!((ran.status, ran.output), (JobStatus::Success, 42));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::time::Instant;

use recops_alerting::{AlertManager, AlertsConfig, Evaluation, SendReport, Severity};
use recops_core::{Home, SharedClock, error_chain};
use recops_tracking::{LockHolder, PipelineLock, PipelineTracker};
use serde::Serialize;
use serde_json::{Value, json};
use tracing::{error, info, warn};

use crate::error::{Error, Result};

/// How a job run ended, as every job's `--json` output spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    /// The job did its work (possibly with nothing to do).
    Success,
    /// Another run of the pipeline holds the lock; nothing was done.
    Skipped,
    /// The job ran and failed.
    Failed,
    /// Deployment: the model serves now.
    Deployed,
    /// Deployment: the model was already live.
    Unchanged,
    /// Deployment: verification failed and the previous model was restored (a failure
    /// of the deployment).
    RolledBack,
}

impl JobStatus {
    /// The JSON spelling (`rolled_back`).
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Success => "success",
            JobStatus::Skipped => "skipped",
            JobStatus::Failed => "failed",
            JobStatus::Deployed => "deployed",
            JobStatus::Unchanged => "unchanged",
            JobStatus::RolledBack => "rolled_back",
        }
    }

    /// False for [`JobStatus::Failed`] and [`JobStatus::RolledBack`]: the run is
    /// recorded as failed and the binary exits with 1.
    pub fn is_ok(self) -> bool {
        !matches!(self, JobStatus::Failed | JobStatus::RolledBack)
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// Whether a job takes its pipeline lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LockPolicy {
    /// One run at a time: a second run while the lock is held is skipped.
    #[default]
    Exclusive,
    /// No lock (read-only jobs such as the health check).
    Unlocked,
}

/// Whether the run must be recorded in `logs/pipeline_metrics.db`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Tracking {
    /// A database that cannot record the run fails the job.
    #[default]
    Required,
    /// The job runs anyway and the problem is logged (the health check, which reports
    /// on that database itself).
    BestEffort,
}

/// Why a job did nothing: another run holds the lock.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Skip {
    /// `another <pipeline> run is in progress (pid .. on .. since ..); skipped`.
    pub message: String,
    /// Who holds the lock, when known.
    pub holder: Option<LockHolder>,
}

impl Skip {
    /// The one skip message of every job.
    pub fn new(pipeline: &str, holder: Option<LockHolder>) -> Self {
        let by = holder
            .as_ref()
            .map(|h| format!(" (pid {} on {} since {})", h.pid, h.host, h.started_at))
            .unwrap_or_default();
        Skip {
            message: format!("another {pipeline} run is in progress{by}; skipped"),
            holder,
        }
    }
}

/// What a job body returns: its output and how to record and alert it.
#[derive(Debug, Clone)]
pub struct Finish<T> {
    /// The job's typed output.
    pub output: T,
    /// How the run ended; [`JobStatus::is_ok`] false records it as failed.
    pub status: JobStatus,
    /// Metadata recorded with the run.
    pub metadata: Value,
    /// One line for people: logged, the error message of a failed run, the body of
    /// the alert.
    pub message: String,
    /// Send `pipeline_<name>_<status>` at this severity.
    pub alert: Option<Severity>,
}

impl<T> Finish<T> {
    /// A successful run without an alert.
    pub fn success(output: T, metadata: Value) -> Self {
        Finish {
            output,
            status: JobStatus::Success,
            metadata,
            message: String::new(),
            alert: None,
        }
    }

    /// Sets the status.
    pub fn status(mut self, status: JobStatus) -> Self {
        self.status = status;
        self
    }

    /// Sets the message.
    pub fn message(mut self, message: impl Into<String>) -> Self {
        self.message = message.into();
        self
    }

    /// Sends `pipeline_<name>_<status>` with the message at `severity`.
    pub fn alert(mut self, severity: Severity) -> Self {
        self.alert = Some(severity);
        self
    }
}

/// A run that happened.
#[derive(Debug, Clone)]
pub struct Ran<T> {
    /// The run in `logs/pipeline_metrics.db` (none when [`Tracking::BestEffort`] could
    /// not record it).
    pub run_id: Option<String>,
    /// How it ended.
    pub status: JobStatus,
    /// The body's output.
    pub output: T,
    /// The body's message.
    pub message: String,
    /// The pipeline alert and what each channel did.
    pub alert: Option<SendReport>,
    /// Wall time of the run (lock to alert).
    pub duration_seconds: f64,
}

/// What [`Job::run`] did.
#[derive(Debug, Clone)]
pub enum JobOutcome<T> {
    /// The body ran.
    Ran(Ran<T>),
    /// Another run holds the lock.
    Skipped(Skip, f64),
}

/// What a body can see of its run.
#[derive(Debug)]
pub struct RunContext<'a> {
    /// The run id (none when tracking is best effort and failed).
    pub run_id: Option<&'a str>,
    /// The job's alerts (for alerts beyond the pipeline alert: `data_drift`,
    /// `model_degradation`, ...).
    pub alerts: &'a JobAlerts,
}

/// A job: which pipeline, how to lock and record it, which clock. See the module docs.
#[derive(Debug, Clone)]
pub struct Job<'a> {
    home: &'a Home,
    pipeline: &'static str,
    clock: SharedClock,
    lock: LockPolicy,
    tracking: Tracking,
    metadata: Value,
    failure_severity: Severity,
}

impl<'a> Job<'a> {
    /// The job `pipeline` on `home`: exclusive lock, required tracking, empty
    /// metadata, failures alerted as warnings.
    pub fn new(home: &'a Home, pipeline: &'static str, clock: SharedClock) -> Self {
        Job {
            home,
            pipeline,
            clock,
            lock: LockPolicy::Exclusive,
            tracking: Tracking::Required,
            metadata: json!({}),
            failure_severity: Severity::Warning,
        }
    }

    /// The run's metadata at start (its options).
    pub fn metadata(mut self, metadata: Value) -> Self {
        self.metadata = metadata;
        self
    }

    /// The lock policy.
    pub fn lock(mut self, lock: LockPolicy) -> Self {
        self.lock = lock;
        self
    }

    /// The tracking policy.
    pub fn tracking(mut self, tracking: Tracking) -> Self {
        self.tracking = tracking;
        self
    }

    /// The severity of `pipeline_<name>_failed` when the body returns `Err`.
    pub fn failure_severity(mut self, severity: Severity) -> Self {
        self.failure_severity = severity;
        self
    }

    /// Runs `body` as described in the module docs.
    pub fn run<T>(
        self,
        body: impl FnOnce(&RunContext<'_>) -> Result<Finish<T>>,
    ) -> Result<JobOutcome<T>> {
        let started = Instant::now();
        let pipeline = self.pipeline;
        let _lock = match self.lock {
            LockPolicy::Exclusive => {
                let lock = PipelineLock::acquire(self.home, pipeline)?;
                if !lock.acquired() {
                    let skip = Skip::new(pipeline, lock.holder().cloned());
                    warn!(pipeline, "{}", skip.message);
                    return Ok(JobOutcome::Skipped(skip, started.elapsed().as_secs_f64()));
                }
                Some(lock)
            }
            LockPolicy::Unlocked => None,
        };
        let locked = _lock.is_some();
        let tracked = PipelineTracker::open_home(self.home, self.clock.clone()).and_then(|t| {
            if locked {
                close_interrupted_runs(&t, pipeline);
            }
            let id = t.start_run(pipeline, self.metadata.clone())?;
            Ok((t, id))
        });
        let (tracker, run_id) = match tracked {
            Ok((t, id)) => (Some(t), Some(id)),
            Err(e) if self.tracking == Tracking::BestEffort => {
                warn!(pipeline, error = %error_chain(&e), "cannot record the run");
                (None, None)
            }
            Err(e) => return Err(e.into()),
        };
        info!(pipeline, run_id = run_id.as_deref().unwrap_or("-"), metadata = %self.metadata, "{pipeline} started");
        // SIGTERM/SIGINT while the body runs: the run is recorded as cancelled.
        let _registered = crate::cancel::register(
            pipeline,
            self.home.clone(),
            run_id.clone(),
            _lock.as_ref().map(|l| l.path().to_path_buf()),
        );
        let alerts = JobAlerts::open(self.home, &self.clock);
        let ctx = RunContext {
            run_id: run_id.as_deref(),
            alerts: &alerts,
        };
        let record = |result: std::result::Result<(), recops_tracking::Error>| match result {
            Ok(()) => Ok(()),
            Err(e) if self.tracking == Tracking::BestEffort => {
                warn!(pipeline, error = %error_chain(&e), "cannot record the end of the run");
                Ok(())
            }
            Err(e) => Err(Error::from(e)),
        };
        match body(&ctx) {
            Ok(finish) => {
                if let (Some(t), Some(id)) = (&tracker, &run_id) {
                    record(if finish.status.is_ok() {
                        t.complete_run(id, finish.metadata.clone())
                    } else {
                        t.fail_run_with(id, &finish.message, finish.metadata.clone())
                    })?;
                }
                let run = run_id.as_deref().unwrap_or("-");
                if finish.status.is_ok() {
                    info!(pipeline, run_id = run, status = %finish.status, "{}", finish.message);
                } else {
                    error!(pipeline, run_id = run, status = %finish.status, "{}", finish.message);
                }
                let alert = finish.alert.map(|severity| {
                    alerts.pipeline(pipeline, finish.status.as_str(), &finish.message, severity)
                });
                Ok(JobOutcome::Ran(Ran {
                    run_id,
                    status: finish.status,
                    output: finish.output,
                    message: finish.message,
                    alert,
                    duration_seconds: started.elapsed().as_secs_f64(),
                }))
            }
            Err(e) => {
                let text = error_chain(&e);
                error!(
                    pipeline,
                    run_id = run_id.as_deref().unwrap_or("-"),
                    "{pipeline} failed: {text}"
                );
                if let (Some(t), Some(id)) = (&tracker, &run_id)
                    && let Err(te) = t.fail_run_with(id, &text, json!({"error": text}))
                {
                    warn!(pipeline, run_id = %id, error = %error_chain(&te), "cannot record the failed run");
                }
                alerts.pipeline(pipeline, "failed", &text, self.failure_severity);
                Err(Error::JobFailed {
                    pipeline,
                    run_id,
                    source: Box::new(e),
                })
            }
        }
    }
}

/// The one alert path of the jobs (see the module docs): never fails, never drops an
/// alert.
#[derive(Debug)]
pub struct JobAlerts {
    manager: Option<AlertManager>,
}

impl JobAlerts {
    /// The alert manager of `home` with `clock`; a log-only manager when
    /// `config/alerts_config.yaml` cannot be used (the reason is logged).
    pub fn open(home: &Home, clock: &SharedClock) -> Self {
        let manager = match AlertManager::builder(home).clock(clock.clone()).build() {
            Ok(m) => Some(m),
            Err(e) => {
                error!(error = %error_chain(&e), "the alerts config is unusable: alerts go to the alert log only");
                AlertManager::builder(home)
                    .clock(clock.clone())
                    .config(AlertsConfig::log_only())
                    .build()
                    .inspect_err(|e| {
                        error!(error = %error_chain(e), "the alert log is unavailable: alerts go to this log only");
                    })
                    .ok()
            }
        };
        JobAlerts { manager }
    }

    /// The manager in use (the home's, or the log-only fallback); `None` when not even
    /// the fallback could be built.
    pub fn manager(&self) -> Option<&AlertManager> {
        self.manager.as_ref()
    }

    /// The spec's `send_pipeline_alert`: `pipeline_<pipeline>_<status>`.
    pub fn pipeline(
        &self,
        pipeline: &str,
        status: &str,
        message: &str,
        severity: Severity,
    ) -> SendReport {
        match &self.manager {
            Some(m) => {
                let report = m.send_pipeline_alert(pipeline, status, message, severity);
                Self::check(&report, message);
                report
            }
            None => {
                let name = format!("pipeline_{pipeline}_{status}");
                Self::to_log(&name, message, severity)
            }
        }
    }

    /// Sends `alert_name` once (the channels of its rule or severity).
    pub fn send(&self, alert_name: &str, message: &str, severity: Severity) -> SendReport {
        match &self.manager {
            Some(m) => {
                let report = m.send_alert(alert_name, message, severity, None);
                Self::check(&report, message);
                report
            }
            None => Self::to_log(alert_name, message, severity),
        }
    }

    /// Keeps `alert_name` firing while `firing` (deduplicated, resolved when it stops).
    pub fn observe(&self, alert_name: &str, firing: bool, message: &str, severity: Severity) {
        match &self.manager {
            Some(m) => {
                let _: Evaluation = m.observe(alert_name, firing, message, severity);
            }
            None if firing => {
                Self::to_log(alert_name, message, severity);
            }
            None => {}
        }
    }

    fn check(report: &SendReport, message: &str) {
        if !report.any_sent() {
            error!(alert = %report.alert_name, severity = %report.severity, "alert reached no channel: {message}");
        }
    }

    fn to_log(alert_name: &str, message: &str, severity: Severity) -> SendReport {
        error!(alert = alert_name, severity = %severity, "alert reached no channel: {message}");
        SendReport {
            alert_name: alert_name.to_owned(),
            severity,
            channels: Default::default(),
        }
    }
}

/// Closes the runs of `pipeline` still marked `running` as `failed`: the caller holds the
/// pipeline's lock, so their processes died (a `kill -9`, a power loss) before they could
/// record an outcome. Best effort: a tracking error is a warning.
fn close_interrupted_runs(tracker: &PipelineTracker, pipeline: &str) {
    let result = tracker
        .get_recent_runs(
            Some(pipeline),
            1000,
            Some(recops_tracking::RunStatus::Running),
        )
        .and_then(|runs| {
            for r in &runs {
                tracker.fail_run(r.run_id.as_str(), INTERRUPTED)?;
                warn!(pipeline, run_id = %r.run_id, started_at = %r.started_at, "{INTERRUPTED}");
            }
            Ok(())
        });
    if let Err(e) = result {
        warn!(pipeline, error = %error_chain(&e), "cannot close interrupted runs");
    }
}

/// The error message of a run closed by [`close_interrupted_runs`].
pub const INTERRUPTED: &str =
    "interrupted: its process died before recording an outcome (closed by the next run)";

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};
    use recops_core::FixedClock;
    use recops_tracking::RunStatus;

    fn clock() -> SharedClock {
        FixedClock::new(Utc.with_ymd_and_hms(2025, 1, 15, 3, 0, 0).unwrap()).shared()
    }

    fn runs(home: &Home, pipeline: &str) -> Vec<recops_tracking::PipelineRun> {
        PipelineTracker::open(home)
            .unwrap()
            .get_recent_runs(Some(pipeline), 10, None)
            .unwrap()
    }

    #[test]
    fn a_run_left_running_by_a_dead_process_is_closed_by_the_next_locked_run() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::new(dir.path());
        let dead = PipelineTracker::open(&home)
            .unwrap()
            .start_run("p", json!({}))
            .unwrap();
        let other = PipelineTracker::open(&home)
            .unwrap()
            .start_run("q", json!({}))
            .unwrap();
        Job::new(&home, "p", clock())
            .run(|_| Ok(Finish::success((), json!({}))))
            .unwrap();
        let tracker = PipelineTracker::open(&home).unwrap();
        let closed = tracker.get_run(&dead).unwrap().unwrap();
        assert_eq!(closed.status, RunStatus::Failed);
        assert_eq!(closed.error_message.as_deref(), Some(INTERRUPTED));
        // Another pipeline's run is not this job's business.
        let q = tracker.get_run(&other).unwrap().unwrap();
        assert_eq!(q.status, RunStatus::Running);
        assert!(
            runs(&home, "p")
                .iter()
                .all(|r| r.status != RunStatus::Running)
        );
    }

    #[test]
    fn a_held_lock_skips_with_the_one_message_and_records_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::new(dir.path());
        let _held = PipelineLock::acquire(&home, "p").unwrap();
        let mut ran = false;
        let outcome = Job::new(&home, "p", clock())
            .run(|_| {
                ran = true;
                Ok(Finish::success((), json!({})))
            })
            .unwrap();
        let JobOutcome::Skipped(skip, _) = outcome else {
            panic!("{outcome:?}")
        };
        assert!(!ran);
        assert!(
            skip.message
                .starts_with("another p run is in progress (pid ")
                && skip.message.ends_with("; skipped"),
            "{}",
            skip.message
        );
        assert_eq!(skip.holder.unwrap().pid, std::process::id());
        assert!(!home.pipeline_db().exists() || runs(&home, "p").is_empty());
    }

    #[test]
    fn results_are_recorded_with_the_injected_clock_and_alerted() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::new(dir.path());
        let outcome = Job::new(&home, "p", clock())
            .metadata(json!({"x": 1}))
            .run(|ctx| {
                assert!(ctx.run_id.is_some());
                Ok(Finish::success(7, json!({"done": true}))
                    .message("all good")
                    .alert(Severity::Info))
            })
            .unwrap();
        let JobOutcome::Ran(ran) = outcome else {
            panic!()
        };
        assert_eq!(ran.output, 7);
        assert!(ran.alert.unwrap().any_sent());
        let r = &runs(&home, "p")[0];
        assert_eq!(r.status, RunStatus::Success);
        assert_eq!(r.metadata["done"], true);
        assert!(r.started_at.starts_with("2025-01-15"), "{}", r.started_at);
        let log = std::fs::read_to_string(home.alerts_log()).unwrap();
        assert!(log.contains("pipeline_p_success"), "{log}");

        // A failed status is recorded as a failed run with the message.
        Job::new(&home, "p", clock())
            .run(|_| {
                Ok(Finish::success((), json!({}))
                    .status(JobStatus::RolledBack)
                    .message("verification failed"))
            })
            .unwrap();
        let r = &runs(&home, "p")[0];
        assert_eq!(r.status, RunStatus::Failed);
        assert_eq!(r.error_message.as_deref(), Some("verification failed"));
    }

    #[test]
    fn an_error_fails_the_run_and_alerts_even_with_a_broken_alerts_config() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::new(dir.path());
        std::fs::create_dir_all(home.config_dir()).unwrap();
        std::fs::write(home.alerts_config(), "alerts: [not, a, map]\n").unwrap();
        let err = Job::new(&home, "p", clock())
            .failure_severity(Severity::Critical)
            .run::<()>(|_| {
                Err(Error::Io {
                    action: "cannot read",
                    path: "input.csv".into(),
                    source: std::io::Error::other("disk on fire"),
                })
            })
            .unwrap_err();
        let Error::JobFailed { pipeline, .. } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(*pipeline, "p");
        let r = &runs(&home, "p")[0];
        assert_eq!(r.status, RunStatus::Failed);
        assert_eq!(
            r.error_message.as_deref(),
            Some("cannot read: input.csv: disk on fire")
        );
        // The alert went to the log channel of the log-only fallback.
        let log = std::fs::read_to_string(home.alerts_log()).unwrap();
        assert!(
            log.contains("CRITICAL") && log.contains("pipeline_p_failed"),
            "{log}"
        );
        assert!(log.contains("disk on fire"), "{log}");
    }
}
