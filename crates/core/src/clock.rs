use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration as StdDuration, Instant};

use chrono::{DateTime, Duration, Utc};

/// A source of the current time.
///
/// Every time window, staleness check and schedule in recops reads time through a
/// `Clock`, so tests use a [`FixedClock`] and never sleep.
///
/// [`now`](Clock::now) is wall time: it can jump (NTP, an operator setting the date).
/// [`monotonic`](Clock::monotonic) never goes back nor jumps with the wall clock: use it
/// for durations that decide something (timeouts, grace periods).
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The current instant.
    fn now(&self) -> DateTime<Utc>;

    /// Time elapsed on a monotonic clock since an arbitrary origin fixed for the
    /// process; only differences mean something. The default reads the system's
    /// monotonic clock ([`Instant`]).
    fn monotonic(&self) -> StdDuration {
        process_monotonic()
    }
}

/// The system's monotonic clock, measured from the first call in this process.
fn process_monotonic() -> StdDuration {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    ORIGIN.get_or_init(Instant::now).elapsed()
}

/// A shared clock handle, cheap to clone.
pub type SharedClock = Arc<dyn Clock>;

/// The real wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

impl SystemClock {
    /// The system clock as a [`SharedClock`].
    pub fn shared() -> SharedClock {
        Arc::new(SystemClock)
    }
}

/// A clock that only moves when told to; for tests.
///
/// Its monotonic time follows every forward move of [`set`](Self::set) and
/// [`advance`](Self::advance) (never a backward one); [`step_wall`](Self::step_wall)
/// moves the wall time alone, like an NTP step or an operator setting the date.
#[derive(Debug, Clone)]
pub struct FixedClock {
    now: Arc<Mutex<(DateTime<Utc>, StdDuration)>>,
}

impl FixedClock {
    /// A clock stopped at `now`.
    pub fn new(now: DateTime<Utc>) -> Self {
        FixedClock {
            now: Arc::new(Mutex::new((now, StdDuration::ZERO))),
        }
    }

    fn move_to(&self, now: DateTime<Utc>, monotonic: bool) {
        let mut t = self.now.lock().unwrap_or_else(PoisonError::into_inner);
        if monotonic && let Ok(forward) = (now - t.0).to_std() {
            t.1 += forward;
        }
        t.0 = now;
    }

    /// Sets the time. Clones of this clock see the change.
    pub fn set(&self, now: DateTime<Utc>) {
        self.move_to(now, true);
    }

    /// Moves the time forward (or back, with a negative duration).
    pub fn advance(&self, by: Duration) {
        let now = self.now() + by;
        self.move_to(now, true);
    }

    /// Moves the wall time only (a clock step): [`Clock::monotonic`] does not change.
    pub fn step_wall(&self, by: Duration) {
        let now = self.now() + by;
        self.move_to(now, false);
    }

    /// This clock as a [`SharedClock`]; the handle keeps following [`FixedClock::set`].
    pub fn shared(&self) -> SharedClock {
        Arc::new(self.clone())
    }
}

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        self.now.lock().unwrap_or_else(PoisonError::into_inner).0
    }

    fn monotonic(&self) -> StdDuration {
        self.now.lock().unwrap_or_else(PoisonError::into_inner).1
    }
}

/// Formats an instant as RFC 3339 with microseconds and an explicit offset
/// (`2025-01-15T10:30:00.000000+00:00`), the timestamp format of every recops file and
/// database. All values share the same width, so they also sort as text.
pub fn format_timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, false)
}

/// Parses a timestamp written by [`format_timestamp`] or any RFC 3339 value. A value
/// without an offset (as Python's `datetime.isoformat()` writes) is read as local time.
pub fn parse_timestamp(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    let naive = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f"))
        .ok()?;
    naive
        .and_local_timezone(chrono::Local)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn fixed_clock_moves_only_when_told_and_clones_share_time() {
        let t0 = Utc.with_ymd_and_hms(2025, 1, 15, 10, 30, 0).unwrap();
        let clock = FixedClock::new(t0);
        let shared = clock.shared();
        assert_eq!(shared.now(), t0);
        clock.advance(Duration::hours(2));
        assert_eq!(shared.now(), t0 + Duration::hours(2));
        clock.set(t0);
        assert_eq!(shared.now(), t0);
    }

    #[test]
    fn monotonic_time_follows_forward_moves_only_and_ignores_wall_steps() {
        let t0 = Utc.with_ymd_and_hms(2025, 1, 15, 10, 30, 0).unwrap();
        let clock = FixedClock::new(t0);
        let shared = clock.shared();
        clock.advance(Duration::minutes(5));
        assert_eq!(shared.monotonic(), StdDuration::from_secs(300));
        clock.set(t0); // backwards: monotonic stays
        assert_eq!(shared.monotonic(), StdDuration::from_secs(300));
        clock.step_wall(Duration::hours(3));
        assert_eq!(shared.now(), t0 + Duration::hours(3));
        assert_eq!(shared.monotonic(), StdDuration::from_secs(300));
        let a = SystemClock.monotonic();
        assert!(SystemClock.monotonic() >= a);
    }

    #[test]
    fn timestamps_round_trip_and_sort_as_text() {
        let a = Utc.with_ymd_and_hms(2025, 1, 15, 9, 0, 0).unwrap();
        let b = a + Duration::microseconds(1);
        let (sa, sb) = (format_timestamp(a), format_timestamp(b));
        assert_eq!(sa, "2025-01-15T09:00:00.000000+00:00");
        assert!(sa < sb);
        assert_eq!(parse_timestamp(&sa), Some(a));
        assert_eq!(parse_timestamp(&sb), Some(b));
        assert_eq!(
            parse_timestamp("2025-01-15T16:00:00+07:00"),
            Some(Utc.with_ymd_and_hms(2025, 1, 15, 9, 0, 0).unwrap())
        );
        assert!(parse_timestamp("2025-01-15T09:00:00.5").is_some());
        assert!(parse_timestamp("yesterday").is_none());
    }
}
