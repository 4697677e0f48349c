//! Firing: planning the next fire of a job, catch-up, and starting its process.

use super::*;

impl Scheduler {
    pub(super) fn plan_and_fire(&mut self, i: usize, now: DateTime<Utc>) -> Result<()> {
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

    pub(super) fn fire(&mut self, i: usize, due: DueFire, now: DateTime<Utc>) -> Result<()> {
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
    pub(super) fn start_job(
        &mut self,
        i: usize,
        trigger: Trigger,
        scheduled_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<Started> {
        let tz = self.config.timezone;
        let spec = self.jobs[i].spec.clone();
        let name = spec.name.as_str();
        let me = ProcessIdentity::current();
        // A claim is live while its supervisor (another process) or its process group
        // runs, checked against the boot id and start times recorded with the pids.
        let is_live = |c: &RunningClaim| {
            (c.owner_pid != me.pid && claim_owner_alive(c)) || claim_group_alive(c)
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
                "scheduler_pid": me.pid,
            }),
        )?;
        let claim = RunningClaim {
            run_id: run_id.clone(),
            owner_pid: me.pid,
            pgid: None,
            since: now,
            trigger: trigger.as_str().to_owned(),
            scheduled_at,
            owner_start_ticks: me.start_ticks,
            pgid_start_ticks: None,
            boot_id: me.boot_id.clone(),
        };
        // A scheduled fire under failover is claimed under the leader's fence.
        let fence = scheduled_at.and_then(|_| self.fence());
        match self.state.claim(name, &claim, &is_live, fence.as_ref())? {
            ClaimOutcome::Fenced(current) => {
                let _ = self.tracker.cancel_run(&run_id);
                self.fenced(name, current.as_ref());
                return Ok(Started::Fenced);
            }
            ClaimOutcome::AlreadyFired { run_id: by } => {
                let _ = self.tracker.cancel_run(&run_id);
                self.log.info(&format!(
                    "Skipping job: {name} | the fire scheduled {} already ran (run {by})",
                    scheduled_at
                        .map(|s| format_local(s, tz))
                        .unwrap_or_default()
                ));
                return Ok(Started::Fenced);
            }
            ClaimOutcome::Busy(holder) => {
                // Lost a race with another process: this run never started.
                let _ = self.tracker.cancel_run(&run_id);
                self.log_busy(name, &holder, scheduled_at, trigger);
                return Ok(Started::Busy(holder));
            }
            ClaimOutcome::ClaimedAfterDead(dead) => self.close_dead_claim(name, &dead, now),
            ClaimOutcome::Claimed => {}
        }
        recops_core::faults::point("scheduler.claimed");
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
                self.state.set_pgid(
                    name,
                    &run_id,
                    i64::from(process.pgid()),
                    process.leader_start_ticks(),
                )?;
                recops_core::faults::point("scheduler.spawned");
                self.jobs[i].running = Some(RunningJob {
                    run_id,
                    trigger,
                    started_at: now,
                    started_mono: self.clock.monotonic(),
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

    pub(super) fn log_busy(
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
}
