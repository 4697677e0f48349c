//! `PipelineLock`: at most one run of a pipeline at a time, across processes.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use chrono::Duration;
use recops_core::{
    Home, RecopsConfig, SharedClock, SystemClock, format_timestamp, parse_timestamp,
};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Who holds a lock: written into the lock file by the holder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockHolder {
    /// The pipeline locked.
    pub pipeline: String,
    /// Process id of the holder.
    pub pid: u32,
    /// Host name of the holder.
    pub host: String,
    /// When the holder took the lock (RFC 3339).
    pub started_at: String,
}

/// Options of [`PipelineLock::acquire_in`].
#[derive(Debug, Clone)]
pub struct LockOptions {
    /// A lock held longer than this is stale and is taken over (default 24 h).
    pub stale_after: Duration,
    /// The clock used for the holder's start time and the staleness check.
    pub clock: SharedClock,
}

impl Default for LockOptions {
    fn default() -> Self {
        LockOptions {
            stale_after: Duration::hours(24),
            clock: SystemClock::shared(),
        }
    }
}

/// A lock that lets only one run of a pipeline proceed at a time, the spec's
/// `with PipelineLock(name) as lock: if lock.acquired: ...` as an RAII guard.
///
/// It is an OS advisory lock (`flock`) on `logs/locks/<name>.lock`, so the kernel
/// releases it when the holder exits for any reason, `SIGKILL` included: a dead process
/// never blocks the pipeline. The file records the holder's pid, host and start time;
/// a lock held for longer than `stale_after` (24 h by default) belongs to a hung run
/// and is taken over with a warning.
///
/// ```
/// use recops_core::Home;
/// use recops_tracking::PipelineLock;
///
/// let dir = tempfile::tempdir()?;
/// let home = Home::new(dir.path());
/// let lock = PipelineLock::acquire(&home, "data_refresh")?;
/// assert!(lock.acquired());
/// let second = PipelineLock::acquire(&home, "data_refresh")?;
/// assert!(!second.acquired());
/// assert_eq!(second.holder().unwrap().pid, std::process::id());
/// drop(lock);
/// assert!(PipelineLock::acquire(&home, "data_refresh")?.acquired());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct PipelineLock {
    name: String,
    path: PathBuf,
    file: Option<File>,
    holder: Option<LockHolder>,
}

impl PipelineLock {
    /// Tries to take the lock of `pipeline` in `home` (`logs/locks/<pipeline>.lock`), with
    /// the staleness limit of `config/recops.yaml` (`locks.stale_after_hours`). Never
    /// blocks: check [`acquired`](Self::acquired).
    pub fn acquire(home: &Home, pipeline: &str) -> Result<Self> {
        let hours = RecopsConfig::load(home)?.locks.stale_after_hours;
        let options = LockOptions {
            stale_after: Duration::milliseconds((hours * 3_600_000.0) as i64),
            ..LockOptions::default()
        };
        Self::acquire_in(&home.locks_dir(), pipeline, &options)
    }

    /// Tries to take the lock of `pipeline` in the folder `dir`.
    pub fn acquire_in(dir: &Path, pipeline: &str, options: &LockOptions) -> Result<Self> {
        recops_core::validate_name("pipeline name", pipeline)?;
        recops_core::ensure_dir(dir)?;
        let path = dir.join(format!("{pipeline}.lock"));
        let lock_err = |e: std::io::Error| Error::Lock {
            path: path.clone(),
            source: e,
        };
        // A few rounds: the file may be replaced between open and lock by a takeover.
        for _ in 0..8 {
            let mut file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .map_err(lock_err)?;
            match file.try_lock() {
                Ok(()) => {
                    if !same_file(&file, &path) {
                        continue; // taken over and replaced meanwhile; retry on the new file
                    }
                    let holder = LockHolder {
                        pipeline: pipeline.to_owned(),
                        pid: std::process::id(),
                        host: host_name(),
                        started_at: format_timestamp(options.clock.now()),
                    };
                    write_holder(&mut file, &holder).map_err(lock_err)?;
                    return Ok(PipelineLock {
                        name: pipeline.to_owned(),
                        path,
                        file: Some(file),
                        holder: Some(holder),
                    });
                }
                Err(TryLockError::WouldBlock) => {
                    let holder = read_holder(&mut file);
                    let started = holder.as_ref().and_then(|h| parse_timestamp(&h.started_at));
                    let stale =
                        started.is_some_and(|t| options.clock.now() - t > options.stale_after);
                    if stale && same_file(&file, &path) {
                        let h = holder.as_ref();
                        tracing::warn!(
                            pipeline,
                            pid = h.map(|h| h.pid).unwrap_or_default(),
                            host = h.map(|h| h.host.as_str()).unwrap_or_default(),
                            since = h.map(|h| h.started_at.as_str()).unwrap_or_default(),
                            "pipeline lock held longer than {} hours: treating it as stale and taking it over",
                            options.stale_after.num_minutes() as f64 / 60.0
                        );
                        let aside = path.with_extension(format!(
                            "lock.stale.{}",
                            options.clock.now().format("%Y%m%dT%H%M%S")
                        ));
                        fs::rename(&path, &aside).map_err(lock_err)?;
                        continue;
                    }
                    return Ok(PipelineLock {
                        name: pipeline.to_owned(),
                        path,
                        file: None,
                        holder,
                    });
                }
                Err(TryLockError::Error(e)) => return Err(lock_err(e)),
            }
        }
        Err(lock_err(std::io::Error::other(
            "the lock file kept being replaced by other processes",
        )))
    }

    /// Whether this process holds the lock.
    pub fn acquired(&self) -> bool {
        self.file.is_some()
    }

    /// The holder: this process when acquired, otherwise the process that holds it (when
    /// its lock file could be read).
    pub fn holder(&self) -> Option<&LockHolder> {
        self.holder.as_ref()
    }

    /// The pipeline name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for PipelineLock {
    fn drop(&mut self) {
        if let Some(file) = self.file.take() {
            // Clear the holder record, then release; the file stays for the next run.
            let _ = file.set_len(0);
            let _ = file.unlock();
        }
    }
}

fn same_file(file: &File, path: &Path) -> bool {
    match (file.metadata(), fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.ino() == b.ino() && a.dev() == b.dev(),
        _ => false,
    }
}

fn write_holder(file: &mut File, holder: &LockHolder) -> std::io::Result<()> {
    let text = serde_json::to_string(holder).map_err(std::io::Error::other)?;
    file.set_len(0)?;
    file.seek(SeekFrom::Start(0))?;
    file.write_all(text.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_data()
}

fn read_holder(file: &mut File) -> Option<LockHolder> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.read_to_string(&mut text).ok()?;
    serde_json::from_str(text.trim()).ok()
}

fn host_name() -> String {
    hostname::get()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "unknown".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};
    use recops_core::FixedClock;

    #[test]
    fn holder_is_recorded_and_cleared_on_release() {
        let dir = tempfile::tempdir().unwrap();
        let lock =
            PipelineLock::acquire_in(dir.path(), "data_refresh", &LockOptions::default()).unwrap();
        assert!(lock.acquired());
        let text = fs::read_to_string(lock.path()).unwrap();
        let h: LockHolder = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(h.pid, std::process::id());
        assert_eq!(h.pipeline, "data_refresh");
        assert!(!h.host.is_empty());
        let path = lock.path().to_path_buf();
        drop(lock);
        assert_eq!(fs::read_to_string(path).unwrap(), "");
    }

    #[test]
    fn a_second_acquirer_sees_the_holder_and_does_not_get_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let a = PipelineLock::acquire_in(dir.path(), "model_training", &LockOptions::default())
            .unwrap();
        let b = PipelineLock::acquire_in(dir.path(), "model_training", &LockOptions::default())
            .unwrap();
        assert!(a.acquired());
        assert!(!b.acquired());
        assert_eq!(b.holder(), a.holder());
        // Other pipelines are independent.
        assert!(
            PipelineLock::acquire_in(dir.path(), "data_refresh", &LockOptions::default())
                .unwrap()
                .acquired()
        );
    }

    #[test]
    fn a_lock_older_than_the_limit_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let clock = FixedClock::new(Utc.with_ymd_and_hms(2025, 1, 15, 2, 0, 0).unwrap());
        let opts = LockOptions {
            stale_after: Duration::hours(24),
            clock: clock.shared(),
        };
        let hung = PipelineLock::acquire_in(dir.path(), "data_refresh", &opts).unwrap();
        assert!(hung.acquired());
        clock.advance(Duration::hours(23));
        assert!(
            !PipelineLock::acquire_in(dir.path(), "data_refresh", &opts)
                .unwrap()
                .acquired()
        );
        clock.advance(Duration::hours(2));
        let fresh = PipelineLock::acquire_in(dir.path(), "data_refresh", &opts).unwrap();
        assert!(fresh.acquired());
        assert_eq!(
            fresh.holder().unwrap().started_at,
            "2025-01-16T03:00:00.000000+00:00"
        );
        // The stale file was moved aside, not lost.
        let aside = fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .contains(".stale.")
            })
            .count();
        assert_eq!(aside, 1);
        // The new holder keeps it against a third process.
        assert!(
            !PipelineLock::acquire_in(dir.path(), "data_refresh", &opts)
                .unwrap()
                .acquired()
        );
        drop(hung);
        assert!(
            !PipelineLock::acquire_in(dir.path(), "data_refresh", &opts)
                .unwrap()
                .acquired()
        );
    }

    #[test]
    fn names_must_be_plain() {
        let dir = tempfile::tempdir().unwrap();
        assert!(PipelineLock::acquire_in(dir.path(), "../x", &LockOptions::default()).is_err());
    }
}
