//! `PipelineLock`: at most one run of a pipeline at a time, across processes.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use chrono::Duration;
use recops_core::procid::{boot_id, process_start_ticks};
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
    /// Start time of the holder process in clock ticks since boot (`/proc/<pid>/stat`
    /// field 22): with `boot_id`, tells the holder from a later process that reuses
    /// its pid. Absent in records of older versions and off Linux.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process_start_ticks: Option<u64>,
    /// The kernel's boot id when the lock was taken (`/proc/sys/kernel/random/boot_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_id: Option<String>,
}

/// Whether the process recorded in a lock file still runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Liveness {
    /// It runs (or we cannot prove otherwise).
    Alive,
    /// Provably gone: another boot, no such pid, or the pid now belongs to a process
    /// started at another time.
    Gone,
}

impl LockHolder {
    fn current(pipeline: &str, started_at: String) -> LockHolder {
        let pid = std::process::id();
        LockHolder {
            pipeline: pipeline.to_owned(),
            pid,
            host: host_name(),
            started_at,
            process_start_ticks: process_start_ticks(pid),
            boot_id: boot_id(),
        }
    }

    /// On this host: checks the pid against `/proc` (boot id, then start time).
    fn liveness_here(&self) -> Liveness {
        if let (Some(theirs), Some(ours)) = (&self.boot_id, boot_id())
            && *theirs != ours
        {
            return Liveness::Gone;
        }
        if !Path::new("/proc/self/stat").exists() {
            return Liveness::Alive; // no /proc: nothing can be proven
        }
        match (process_start_ticks(self.pid), self.process_start_ticks) {
            (None, _) => Liveness::Gone,
            (Some(now), Some(then)) if now != then => Liveness::Gone,
            _ => Liveness::Alive,
        }
    }
}

/// Options of [`PipelineLock::acquire_in`].
#[derive(Debug, Clone)]
pub struct LockOptions {
    /// A lock whose holder ran on another host and took it longer ago than this is
    /// stale and is taken over (default 24 h). A holder on this host is taken over
    /// only when it is provably gone, whatever its age.
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
/// never blocks the pipeline. The file records the holder's pid, host, start time,
/// process start time and boot id.
///
/// When the flock is held but its recorded holder is *provably gone* (a descendant
/// that inherited the descriptor keeps it, or a network filesystem kept it), the lock
/// is taken over with a warning: on this host only when the pid no longer exists,
/// belongs to a process started at another time (pid reuse), or the machine rebooted
/// since; for a holder on another host, when it took the lock longer ago than
/// `stale_after` (24 h by default). A live holder on this host is never taken over,
/// however long it runs: stop it to free the lock. A takeover runs under an exclusive
/// lock on `<name>.lock.guard` and re-checks the holder there, so of two processes
/// that both found the lock stale, exactly one takes it.
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
    /// The advisory lock, in PostgreSQL mode.
    pg: Option<crate::lock_pg::PgHeld>,
    holder: Option<LockHolder>,
}

impl PipelineLock {
    /// Tries to take the lock of `pipeline` in `home` (`logs/locks/<pipeline>.lock`), with
    /// the staleness limit of `config/recops.yaml` (`locks.stale_after_hours`). Never
    /// blocks: check [`acquired`](Self::acquired).
    ///
    /// In PostgreSQL mode (`storage.url`) it is a session-level advisory lock of the
    /// database instead ([`acquire_pg`](Self::acquire_pg)), so jobs of every home
    /// sharing the database exclude each other; no lock file is written.
    pub fn acquire(home: &Home, pipeline: &str) -> Result<Self> {
        if let crate::Storage::Postgres(db) = crate::Storage::of(home)? {
            return Self::acquire_pg(&db, &home.locks_dir(), pipeline, &LockOptions::default());
        }
        let hours = RecopsConfig::load(home)?.locks.stale_after_hours;
        let options = LockOptions {
            stale_after: Duration::milliseconds((hours * 3_600_000.0) as i64),
            ..LockOptions::default()
        };
        Self::acquire_in(&home.locks_dir(), pipeline, &options)
    }

    /// Tries to take the lock of `pipeline` as a PostgreSQL advisory lock: two keys,
    /// [`PG_LOCK_NAMESPACE`](crate::PG_LOCK_NAMESPACE) and the pipeline name hashed
    /// ([`pg_lock_key`](crate::pg_lock_key)), held by a connection of its own until
    /// the lock is dropped or the process dies. The holder is recorded in
    /// `pipeline_lock_holders` and reported while its session holds the lock. `dir`
    /// only names [`path`](Self::path) (nothing is written there).
    pub fn acquire_pg(
        db: &crate::PgDatabase,
        dir: &Path,
        pipeline: &str,
        options: &LockOptions,
    ) -> Result<Self> {
        recops_core::validate_name("pipeline name", pipeline)?;
        let me = LockHolder::current(pipeline, format_timestamp(options.clock.now()));
        let (pg, holder) = match crate::lock_pg::try_acquire(db, pipeline, &me)? {
            Ok(held) => (Some(held), Some(me)),
            Err(other) => (None, other),
        };
        Ok(PipelineLock {
            name: pipeline.to_owned(),
            path: dir.join(format!("{pipeline}.lock")),
            file: None,
            pg,
            holder,
        })
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
                    let holder =
                        LockHolder::current(pipeline, format_timestamp(options.clock.now()));
                    write_holder(&mut file, &holder).map_err(lock_err)?;
                    return Ok(PipelineLock {
                        name: pipeline.to_owned(),
                        path,
                        file: Some(file),
                        pg: None,
                        holder: Some(holder),
                    });
                }
                Err(TryLockError::WouldBlock) => {
                    let holder = read_holder(&mut file);
                    if let Some(h) = &holder
                        && is_stale(h, options)
                    {
                        match take_over(dir, pipeline, &path, h, options).map_err(lock_err)? {
                            Takeover::Won(file, holder) => {
                                return Ok(PipelineLock {
                                    name: pipeline.to_owned(),
                                    path,
                                    file: Some(file),
                                    pg: None,
                                    holder: Some(holder),
                                });
                            }
                            Takeover::Retry => continue,
                        }
                    }
                    return Ok(PipelineLock {
                        name: pipeline.to_owned(),
                        path,
                        file: None,
                        pg: None,
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
        self.file.is_some() || self.pg.is_some()
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

    /// The lock file (in PostgreSQL mode where it would be: none is written).
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

/// Whether a held lock's holder is provably gone (see [`PipelineLock`]).
fn is_stale(h: &LockHolder, options: &LockOptions) -> bool {
    if h.host == host_name() {
        h.liveness_here() == Liveness::Gone
    } else {
        parse_timestamp(&h.started_at)
            .is_some_and(|t| options.clock.now() - t > options.stale_after)
    }
}

enum Takeover {
    /// This process now holds a fresh lock file.
    Won(File, LockHolder),
    /// Someone else changed the lock meanwhile: look again.
    Retry,
}

/// Moves the stale lock file aside and takes a fresh one, under the guard lock, after
/// checking that the lock file still is the one `seen` holds.
fn take_over(
    dir: &Path,
    pipeline: &str,
    path: &Path,
    seen: &LockHolder,
    options: &LockOptions,
) -> std::io::Result<Takeover> {
    let guard = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(dir.join(format!("{pipeline}.lock.guard")))?;
    guard.lock()?;
    let result = (|| {
        // Under the guard: the file at `path` must still be held, by the same record.
        let mut current = match OpenOptions::new().read(true).write(true).open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Takeover::Retry),
            Err(e) => return Err(e),
        };
        match current.try_lock() {
            Ok(()) => {
                let _ = current.unlock();
                return Ok(Takeover::Retry); // released meanwhile: acquire normally
            }
            Err(TryLockError::WouldBlock) => {}
            Err(TryLockError::Error(e)) => return Err(e),
        }
        if read_holder(&mut current).as_ref() != Some(seen) {
            return Ok(Takeover::Retry);
        }
        tracing::warn!(
            pipeline,
            pid = seen.pid,
            host = %seen.host,
            since = %seen.started_at,
            "the pipeline lock's holder is gone (exited, pid reused, rebooted, or another host's lock older than {} hours): taking it over",
            options.stale_after.num_minutes() as f64 / 60.0
        );
        let aside = path.with_extension(format!(
            "lock.stale.{}.{}",
            options.clock.now().format("%Y%m%dT%H%M%S"),
            std::process::id()
        ));
        fs::rename(path, &aside)?;
        let mut fresh = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        match fresh.try_lock() {
            Ok(()) if same_file(&fresh, path) => {
                let holder = LockHolder::current(pipeline, format_timestamp(options.clock.now()));
                write_holder(&mut fresh, &holder)?;
                Ok(Takeover::Won(fresh, holder))
            }
            // A plain acquirer was faster on the fresh file: it holds the lock.
            _ => Ok(Takeover::Retry),
        }
    })();
    let _ = guard.unlock();
    result
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

    fn opts_at(clock: &FixedClock) -> LockOptions {
        LockOptions {
            stale_after: Duration::hours(24),
            clock: clock.shared(),
        }
    }

    fn clock() -> FixedClock {
        FixedClock::new(Utc.with_ymd_and_hms(2025, 1, 15, 2, 0, 0).unwrap())
    }

    /// Rewrites the holder record of a held lock (the flock stays held).
    fn rewrite(lock: &PipelineLock, edit: impl FnOnce(&mut LockHolder)) {
        let mut h = lock.holder().unwrap().clone();
        edit(&mut h);
        fs::write(lock.path(), serde_json::to_string(&h).unwrap()).unwrap();
    }

    fn stale_files(dir: &Path) -> usize {
        fs::read_dir(dir)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .contains(".stale.")
            })
            .count()
    }

    #[test]
    fn the_record_names_this_process_and_its_start_time() {
        let dir = tempfile::tempdir().unwrap();
        let lock =
            PipelineLock::acquire_in(dir.path(), "data_refresh", &LockOptions::default()).unwrap();
        let h = lock.holder().unwrap();
        if Path::new("/proc/self/stat").exists() {
            assert_eq!(
                h.process_start_ticks,
                process_start_ticks(std::process::id())
            );
            assert!(h.process_start_ticks.is_some());
            assert!(h.boot_id.is_some());
        }
        assert_eq!(h.liveness_here(), Liveness::Alive);
    }

    #[test]
    fn a_live_holder_on_this_host_is_never_taken_over_however_old() {
        let dir = tempfile::tempdir().unwrap();
        let clock = clock();
        let opts = opts_at(&clock);
        let hung = PipelineLock::acquire_in(dir.path(), "data_refresh", &opts).unwrap();
        assert!(hung.acquired());
        clock.advance(Duration::days(30));
        let other = PipelineLock::acquire_in(dir.path(), "data_refresh", &opts).unwrap();
        assert!(!other.acquired());
        assert_eq!(other.holder(), hung.holder());
        assert_eq!(stale_files(dir.path()), 0);
    }

    #[test]
    fn another_hosts_lock_is_taken_over_after_the_age_limit() {
        let dir = tempfile::tempdir().unwrap();
        let clock = clock();
        let opts = opts_at(&clock);
        let remote = PipelineLock::acquire_in(dir.path(), "data_refresh", &opts).unwrap();
        rewrite(&remote, |h| h.host = "another-host.invalid".into());
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
        assert_eq!(stale_files(dir.path()), 1);
        // The new holder keeps it against a third process, also once the old one ends.
        assert!(
            !PipelineLock::acquire_in(dir.path(), "data_refresh", &opts)
                .unwrap()
                .acquired()
        );
        drop(remote);
        assert!(
            !PipelineLock::acquire_in(dir.path(), "data_refresh", &opts)
                .unwrap()
                .acquired()
        );
    }

    /// Two contenders find the same gone holder at once, many times over: exactly
    /// one of them gets the lock each time.
    #[test]
    fn of_two_contenders_for_a_gone_holders_lock_exactly_one_wins() {
        let dead_pid = {
            let mut child = std::process::Command::new("true").spawn().unwrap();
            let pid = child.id();
            child.wait().unwrap();
            pid
        };
        for round in 0..40 {
            let dir = tempfile::tempdir().unwrap();
            let opts = LockOptions::default();
            let held = PipelineLock::acquire_in(dir.path(), "model_training", &opts).unwrap();
            // Half the rounds: the pid was reused by a process started later; the
            // other half: the pid no longer exists.
            rewrite(&held, |h| {
                if round % 2 == 0 {
                    h.process_start_ticks = h.process_start_ticks.map(|t| t + 1).or(Some(1));
                } else {
                    h.pid = dead_pid;
                }
            });
            if !Path::new("/proc/self/stat").exists() {
                return; // nothing can be proven gone without /proc
            }
            let barrier = std::sync::Arc::new(std::sync::Barrier::new(2));
            let handles: Vec<_> = (0..2)
                .map(|_| {
                    let dir = dir.path().to_path_buf();
                    let barrier = barrier.clone();
                    std::thread::spawn(move || {
                        barrier.wait();
                        PipelineLock::acquire_in(&dir, "model_training", &LockOptions::default())
                            .unwrap()
                    })
                })
                .collect();
            let locks: Vec<PipelineLock> = handles.into_iter().map(|h| h.join().unwrap()).collect();
            let winners = locks.iter().filter(|l| l.acquired()).count();
            assert_eq!(winners, 1, "round {round}");
            assert_eq!(stale_files(dir.path()), 1, "round {round}");
            drop(held);
        }
    }

    #[test]
    fn names_must_be_plain() {
        let dir = tempfile::tempdir().unwrap();
        assert!(PipelineLock::acquire_in(dir.path(), "../x", &LockOptions::default()).is_err());
    }
}
