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
