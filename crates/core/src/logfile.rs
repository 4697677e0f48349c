//! Text log files in the spec's line format, rotated daily.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock, PoisonError};

use chrono::{DateTime, Local, NaiveDate, NaiveDateTime, Utc};

use crate::clock::{SharedClock, SystemClock};
use crate::error::{Error, Result};
use crate::fsutil::ensure_parent;

/// Severity of a log line, named as the spec's logs name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogLevel {
    /// `DEBUG`
    Debug,
    /// `INFO`
    Info,
    /// `WARNING`
    Warning,
    /// `ERROR`
    Error,
    /// `CRITICAL`
    Critical,
}

impl LogLevel {
    /// The name written in log lines.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Debug => "DEBUG",
            LogLevel::Info => "INFO",
            LogLevel::Warning => "WARNING",
            LogLevel::Error => "ERROR",
            LogLevel::Critical => "CRITICAL",
        }
    }
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The time zone of log timestamps for this process, set once from
/// `logging.timezone` of `config/recops.yaml` (see [`set_log_timezone`]).
static LOG_TIMEZONE: OnceLock<chrono_tz::Tz> = OnceLock::new();

/// Makes every log line and daily rotation of this process use `tz` instead of the
/// machine's local time. The first call wins; returns whether it took effect.
pub fn set_log_timezone(tz: chrono_tz::Tz) -> bool {
    LOG_TIMEZONE.set(tz).is_ok()
}

/// `at` as wall-clock time of the log time zone (the machine's by default).
fn log_wall_time(at: DateTime<Utc>) -> NaiveDateTime {
    match LOG_TIMEZONE.get() {
        Some(tz) => at.with_timezone(tz).naive_local(),
        None => at.with_timezone(&Local).naive_local(),
    }
}

/// Formats one log line: `YYYY-MM-DD HH:MM:SS | LEVEL | [logger | ]message` in the log
/// time zone ([`set_log_timezone`], else local time), with a trailing newline.
/// Newlines inside `message` are written as `\n` so a record stays on one line.
pub fn format_line(
    at: DateTime<Utc>,
    level: LogLevel,
    logger: Option<&str>,
    message: &str,
) -> String {
    format_line_at(log_wall_time(at), level, logger, message)
}

/// [`format_line`] in the time zone `tz`.
pub fn format_line_in(
    at: DateTime<Utc>,
    tz: chrono_tz::Tz,
    level: LogLevel,
    logger: Option<&str>,
    message: &str,
) -> String {
    format_line_at(at.with_timezone(&tz).naive_local(), level, logger, message)
}

fn format_line_at(
    wall: NaiveDateTime,
    level: LogLevel,
    logger: Option<&str>,
    message: &str,
) -> String {
    let ts = wall.format("%Y-%m-%d %H:%M:%S");
    let message = message.trim_end_matches('\n').replace('\n', "\\n");
    match logger {
        Some(name) => format!("{ts} | {level} | {name} | {message}\n"),
        None => format!("{ts} | {level} | {message}\n"),
    }
}

/// Options of a [`LogFile`].
#[derive(Debug, Clone)]
pub struct LogFileOptions {
    /// How many rotated files (`name.log.YYYY-MM-DD`) to keep besides the current one.
    pub max_files: usize,
    /// The clock that stamps lines and decides when a day has passed.
    pub clock: SharedClock,
}

impl Default for LogFileOptions {
    fn default() -> Self {
        LogFileOptions {
            max_files: 14,
            clock: SystemClock::shared(),
        }
    }
}

/// An append-only text log in the spec's line format, rotated daily like Python's
/// `TimedRotatingFileHandler`: the current day is always `name.log` (so `tail -f` works),
/// earlier days are renamed to `name.log.YYYY-MM-DD`, and only the newest
/// `max_files` of those are kept.
///
/// Several processes may write the same file: lines are appended with one write each,
/// and rotation happens under a file lock, once.
#[derive(Debug)]
pub struct LogFile {
    path: PathBuf,
    options: LogFileOptions,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    file: File,
    ino: u64,
    day: NaiveDate,
}

impl LogFile {
    /// Opens (creating folder and file if needed) the log at `path`.
    pub fn open(path: impl Into<PathBuf>, options: LogFileOptions) -> Result<Self> {
        let path = path.into();
        ensure_parent(&path)?;
        let (file, ino, mtime) = open_append(&path)?;
        let day = mtime
            .map(|t| log_wall_time(t).date())
            .unwrap_or_else(|| log_wall_time(options.clock.now()).date());
        Ok(LogFile {
            path,
            options,
            state: Mutex::new(State { file, ino, day }),
        })
    }

    /// The path of the current file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one line. Rotates first if the day has changed since the last line.
    pub fn write_line(
        &self,
        level: LogLevel,
        logger: Option<&str>,
        message: &str,
    ) -> io::Result<()> {
        let now = self.options.clock.now();
        let line = format_line(now, level, logger, message);
        self.write_raw(now, line.as_bytes())
    }

    fn write_raw(&self, now: DateTime<Utc>, bytes: &[u8]) -> io::Result<()> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let today = log_wall_time(now).date();
        // Only a later day rotates: a clock behind the file's date (a skewed clock, or a
        // fixed clock in tests) appends to the current file.
        if today > state.day {
            self.rotate(&mut state, today)?;
        }
        state.file.write_all(bytes)
    }

    fn rotate(&self, state: &mut State, today: NaiveDate) -> io::Result<()> {
        let lock_path = sidecar(&self.path, "rotate.lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)?;
        lock.lock()?;
        // Rotate only if the file at `path` is still the one this process writes; if
        // another process already rotated it, just reopen.
        if let Ok(meta) = fs::metadata(&self.path)
            && meta.ino() == state.ino
            && meta.len() > 0
        {
            let target = free_rotated_name(&self.path, state.day);
            fs::rename(&self.path, &target)?;
            prune_rotated(&self.path, self.options.max_files);
        }
        let (file, ino, _) = open_append(&self.path).map_err(io::Error::other)?;
        lock.unlock()?;
        *state = State {
            file,
            ino,
            day: today,
        };
        Ok(())
    }
}

fn open_append(path: &Path) -> Result<(File, u64, Option<DateTime<Utc>>)> {
    let existed = path.exists();
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| Error::io("cannot open log file", path, e))?;
    let meta = file
        .metadata()
        .map_err(|e| Error::io("cannot stat log file", path, e))?;
    let mtime = if existed && meta.len() > 0 {
        meta.modified().ok().map(DateTime::<Utc>::from)
    } else {
        None
    };
    Ok((file, meta.ino(), mtime))
}

fn sidecar(path: &Path, suffix: &str) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.{suffix}"))
}

fn free_rotated_name(path: &Path, day: NaiveDate) -> PathBuf {
    let base = format!("{}.{}", path.display(), day.format("%Y-%m-%d"));
    let mut candidate = PathBuf::from(&base);
    let mut n = 1;
    while candidate.exists() {
        candidate = PathBuf::from(format!("{base}.{n}"));
        n += 1;
    }
    candidate
}

/// Rotated files of `path`, newest first.
pub fn rotated_files(path: &Path) -> Vec<PathBuf> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Vec::new();
    };
    let prefix = format!("{}.", name.to_string_lossy());
    let mut found: Vec<PathBuf> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            let rest = n.strip_prefix(&prefix)?;
            let date = rest.get(..10)?;
            NaiveDate::parse_from_str(date, "%Y-%m-%d").ok()?;
            Some(e.path())
        })
        .collect();
    found.sort_by(|a, b| b.cmp(a));
    found
}

fn prune_rotated(path: &Path, keep: usize) {
    for old in rotated_files(path).into_iter().skip(keep) {
        if let Err(e) = fs::remove_file(&old) {
            tracing::warn!(path = %old.display(), error = %crate::error_chain(&e), "cannot remove old log file");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_stamped_in_the_configured_time_zone() {
        let at = Utc.with_ymd_and_hms(2025, 1, 15, 20, 30, 0).unwrap();
        let line = format_line_in(
            at,
            chrono_tz::Asia::Ho_Chi_Minh,
            LogLevel::Info,
            Some("x"),
            "hello",
        );
        // 20:30 UTC is 03:30 the next day in Ho Chi Minh City (UTC+7).
        assert_eq!(line, "2025-01-16 03:30:00 | INFO | x | hello\n");
        let utc = format_line_in(at, chrono_tz::UTC, LogLevel::Info, None, "hello");
        assert_eq!(utc, "2025-01-15 20:30:00 | INFO | hello\n");
    }
    use crate::clock::FixedClock;
    use chrono::{Duration, TimeZone};

    #[test]
    fn lines_follow_the_spec_format() {
        let at = Local
            .with_ymd_and_hms(2025, 1, 15, 15, 35, 0)
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            format_line(
                at,
                LogLevel::Warning,
                Some("alerting"),
                "high_latency triggered: avg_latency_ms=215.3 > 200"
            ),
            "2025-01-15 15:35:00 | WARNING | alerting | high_latency triggered: avg_latency_ms=215.3 > 200\n"
        );
        assert_eq!(
            format_line(at, LogLevel::Info, None, "Starting job: data_refresh"),
            "2025-01-15 15:35:00 | INFO | Starting job: data_refresh\n"
        );
        assert_eq!(
            format_line(at, LogLevel::Info, None, "a\nb\n"),
            "2025-01-15 15:35:00 | INFO | a\\nb\n"
        );
    }

    #[test]
    fn rotates_daily_and_keeps_a_bounded_number_of_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logs/scheduler.log");
        let start = Local
            .with_ymd_and_hms(2025, 1, 1, 12, 0, 0)
            .unwrap()
            .with_timezone(&Utc);
        let clock = FixedClock::new(start);
        let log = LogFile::open(
            &path,
            LogFileOptions {
                max_files: 3,
                clock: clock.shared(),
            },
        )
        .unwrap();
        for day in 0..6 {
            log.write_line(LogLevel::Info, None, &format!("day {day} first"))
                .unwrap();
            log.write_line(LogLevel::Info, None, &format!("day {day} second"))
                .unwrap();
            clock.advance(Duration::days(1));
        }
        let current = fs::read_to_string(&path).unwrap();
        assert!(current.contains("day 5 first") && current.contains("day 5 second"));
        assert!(!current.contains("day 4"));
        let rotated = rotated_files(&path);
        let names: Vec<_> = rotated
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            vec![
                "scheduler.log.2025-01-05",
                "scheduler.log.2025-01-04",
                "scheduler.log.2025-01-03"
            ]
        );
        let day4 = fs::read_to_string(&rotated[0]).unwrap();
        assert_eq!(day4.lines().count(), 2);
        assert!(day4.contains("day 4 first"));
    }

    #[test]
    fn a_clock_behind_the_file_date_appends_instead_of_rotating() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("health_check.log");
        std::fs::write(&path, "written today\n").unwrap();
        // A clock years behind the file's modification time.
        let past = Local
            .with_ymd_and_hms(2020, 1, 1, 12, 0, 0)
            .unwrap()
            .with_timezone(&Utc);
        let log = LogFile::open(
            &path,
            LogFileOptions {
                max_files: 3,
                clock: FixedClock::new(past).shared(),
            },
        )
        .unwrap();
        log.write_line(LogLevel::Info, None, "from the past")
            .unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.contains("written today") && text.contains("from the past"));
        assert!(rotated_files(&path).is_empty());
    }

    #[test]
    fn two_writers_rotate_once_and_lose_no_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("alerts.log");
        let start = Local
            .with_ymd_and_hms(2025, 3, 1, 23, 0, 0)
            .unwrap()
            .with_timezone(&Utc);
        let clock = FixedClock::new(start);
        let opts = LogFileOptions {
            max_files: 5,
            clock: clock.shared(),
        };
        let a = LogFile::open(&path, opts.clone()).unwrap();
        let b = LogFile::open(&path, opts).unwrap();
        a.write_line(LogLevel::Info, None, "a1").unwrap();
        b.write_line(LogLevel::Info, None, "b1").unwrap();
        clock.advance(Duration::hours(2));
        a.write_line(LogLevel::Info, None, "a2").unwrap();
        b.write_line(LogLevel::Info, None, "b2").unwrap();
        let current = fs::read_to_string(&path).unwrap();
        let old = fs::read_to_string(dir.path().join("alerts.log.2025-03-01")).unwrap();
        assert!(old.contains("a1") && old.contains("b1"), "{old}");
        assert!(
            current.contains("a2") && current.contains("b2"),
            "{current}"
        );
        assert_eq!(rotated_files(&path).len(), 1);
    }
}
