//! SIGTERM/SIGINT in a job binary: the run in progress is recorded as `cancelled` and
//! its pipeline lock is cleared before the process exits, so a job killed by the
//! scheduler's timeout (or Ctrl-C) leaves an honest record instead of a `running` row.
//!
//! [`install`] blocks both signals in the calling thread (call it first in `main`,
//! before other threads start, so every thread inherits the mask; `job_cli::start`
//! does) and starts a thread that waits for them. [`Job::run`](crate::job::Job::run)
//! registers its run while the body executes.

use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};

use nix::sys::signal::{SigSet, Signal};
use recops_core::Home;
use recops_tracking::PipelineTracker;

/// A run in progress of this process.
#[derive(Debug, Clone)]
struct ActiveRun {
    home: Home,
    run_id: Option<String>,
    lock: Option<PathBuf>,
    pipeline: &'static str,
}

static ACTIVE: Mutex<Vec<(u64, ActiveRun)>> = Mutex::new(Vec::new());
static NEXT: Mutex<u64> = Mutex::new(0);

/// Removes its run from the registry of runs in progress when dropped.
#[derive(Debug)]
pub(crate) struct Registered(u64);

impl Drop for Registered {
    fn drop(&mut self) {
        ACTIVE
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|(id, _)| *id != self.0);
    }
}

/// Records a run in progress (its database, run id and lock file).
pub(crate) fn register(
    pipeline: &'static str,
    home: Home,
    run_id: Option<String>,
    lock: Option<PathBuf>,
) -> Registered {
    let mut next = NEXT.lock().unwrap_or_else(PoisonError::into_inner);
    *next += 1;
    let id = *next;
    ACTIVE.lock().unwrap_or_else(PoisonError::into_inner).push((
        id,
        ActiveRun {
            home,
            run_id,
            lock,
            pipeline,
        },
    ));
    Registered(id)
}

/// Marks every run in progress `cancelled` and clears their lock records; returns how
/// many runs were marked.
pub(crate) fn cancel_active(signal: &str) -> usize {
    let runs: Vec<ActiveRun> = ACTIVE
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
        .map(|(_, r)| r.clone())
        .collect();
    let mut marked = 0;
    for run in runs {
        if let Some(run_id) = &run.run_id {
            match PipelineTracker::open(&run.home).and_then(|t| t.cancel_run(run_id)) {
                Ok(()) => {
                    marked += 1;
                    tracing::warn!(pipeline = run.pipeline, run_id = %run_id, signal, "run cancelled by a signal");
                }
                Err(e) => {
                    tracing::error!(pipeline = run.pipeline, run_id = %run_id, error = %recops_core::error_chain(&e), "cannot record the cancelled run");
                }
            }
        }
        // The kernel releases the flock at exit; clear the holder record like a drop.
        if let Some(lock) = &run.lock
            && let Ok(f) = std::fs::OpenOptions::new().write(true).open(lock)
        {
            let _ = f.set_len(0);
        }
    }
    marked
}

/// Routes SIGINT and SIGTERM of a job binary to [`cancel_active`], then exits with
/// 128 + the signal number (130, 143). See the module docs.
pub fn install() -> std::io::Result<()> {
    let mut set = SigSet::empty();
    set.add(Signal::SIGINT);
    set.add(Signal::SIGTERM);
    set.thread_block().map_err(std::io::Error::from)?;
    std::thread::Builder::new()
        .name("recops-job-signals".into())
        .spawn(move || {
            if let Ok(sig) = set.wait() {
                cancel_active(sig.as_str());
                std::process::exit(128 + sig as i32);
            }
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use recops_core::SystemClock;
    use recops_tracking::RunStatus;
    use serde_json::json;

    use super::*;

    #[test]
    fn a_registered_run_is_cancelled_and_an_unregistered_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::new(dir.path());
        let tracker =
            PipelineTracker::open_path(&home.pipeline_db(), SystemClock::shared()).unwrap();
        let done = tracker.start_run("x", json!({})).unwrap();
        let live = tracker.start_run("y", json!({})).unwrap();
        let lock = dir.path().join("y.lock");
        std::fs::write(&lock, b"pid 1").unwrap();
        {
            let _gone = register("x", home.clone(), Some(done.clone()), None);
        }
        let _kept = register("y", home.clone(), Some(live.clone()), Some(lock.clone()));
        assert!(cancel_active("SIGTERM") >= 1);
        assert_eq!(
            tracker.get_run(&live).unwrap().unwrap().status,
            RunStatus::Cancelled
        );
        assert_eq!(
            tracker.get_run(&done).unwrap().unwrap().status,
            RunStatus::Running
        );
        assert_eq!(std::fs::read(&lock).unwrap(), b"");
    }
}
