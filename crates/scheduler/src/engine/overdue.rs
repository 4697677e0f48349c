//! The dead-man's switch: `job_overdue` for jobs without a recent success.

use super::*;

impl Scheduler {
    /// The dead-man's switch: for each enabled job (not running now) that has not
    /// succeeded within twice its period, logs `Job overdue` once per episode and
    /// hands a `job_overdue` alert to the sink at every check (the sink deduplicates
    /// and reminds).
    pub(super) fn check_overdue_jobs(&mut self, now: DateTime<Utc>) {
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
                severity: Severity::Critical,
                resolved: false,
                message,
                last_success: self.jobs[i].last_success,
            });
        }
    }
}
