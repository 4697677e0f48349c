//! Start-up recovery: runs a previous scheduler left behind (adopted or closed).

use super::*;

impl Scheduler {
    /// Adopts (still alive) or closes (gone) a run of job `i` that a previous
    /// scheduler left in the state database.
    pub(super) fn recover(&mut self, i: usize, now: DateTime<Utc>) -> Result<()> {
        let name = self.jobs[i].spec.name.clone();
        let Some(claim) = self.state.get(&name)?.and_then(|s| s.running) else {
            return Ok(());
        };
        let me = ProcessIdentity::current();
        if claim.owner_pid != me.pid && claim_owner_alive(&claim) {
            // A `--run-now` in another process supervises it.
            return Ok(());
        }
        // Pids are checked against the boot id and start times recorded with them: a
        // pid reused after a reboot or by a later process is never adopted (nor, at
        // the job's timeout, killed).
        match claim.pgid.and_then(|g| i32::try_from(g).ok()) {
            Some(pgid) if claim_group_alive(&claim) => {
                self.state.set_owner(&name, &claim.run_id, &me)?;
                self.log.warn(&format!(
                    "Adopted job: {name} | left running by a scheduler that exited | \
                     process group {pgid} | run {} | started {}",
                    claim.run_id,
                    format_local(claim.since, self.config.timezone)
                ));
                // Its age so far counts toward its timeout (by the wall clock, the only
                // one shared with the previous scheduler); from now on, monotonic time.
                let age = (now - claim.since).to_std().unwrap_or_default();
                self.jobs[i].running = Some(RunningJob {
                    run_id: claim.run_id,
                    trigger: parse_trigger(&claim.trigger),
                    started_at: claim.since,
                    started_mono: self.clock.monotonic().saturating_sub(age),
                    process: JobProcess::adopt(pgid, claim.pgid_start_ticks),
                    stop: None,
                });
            }
            _ => self.close_dead_claim(&name, &claim, now),
        }
        Ok(())
    }

    /// Records a run whose supervisor and processes are gone as failed (orphaned).
    pub(super) fn close_dead_claim(&self, job: &str, claim: &RunningClaim, now: DateTime<Utc>) {
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
}
