//! Supervision of running jobs: timeouts, exits, the run record and the job log.

use super::*;

impl Scheduler {
    /// Reaps job `i` if it ended (returning its outcome), and enforces its timeout and
    /// stop requests.
    pub(super) fn supervise(&mut self, i: usize, now: DateTime<Utc>) -> Option<JobOutcome> {
        let kill_grace = self.config.kill_grace;
        let name = self.jobs[i].spec.name.clone();
        let timeout = self.jobs[i].spec.timeout;
        let mono = self.clock.monotonic();
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
        // Timeout, on monotonic time: SIGTERM to the whole group.
        if end.is_none()
            && run.stop.is_none()
            && mono.saturating_sub(run.started_mono) >= to_std(timeout)
        {
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
                term_mono: mono,
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
            } else if mono.saturating_sub(stop.term_mono) >= to_std(kill_grace) {
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
        recops_core::faults::point("scheduler.job_ended");
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
    pub(super) fn record_end(
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
        recops_core::faults::point("scheduler.run_recorded");
        if let Err(e) = self.state.finish(&name, run_id, now, failure.is_none()) {
            self.log.error(&format!(
                "Cannot update the scheduler state of {name}: {e}",
                e = recops_core::error_chain(&e)
            ));
        }
        recops_core::faults::point("scheduler.state_finished");
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
                    severity: Severity::Critical,
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
    pub(super) fn job_log_line(&self, job: &str, level: LogLevel, line: &str, rotate: bool) {
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
}
