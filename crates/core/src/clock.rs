use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Duration, Utc};

/// A source of the current time.
///
/// Every time window, staleness check and schedule in recops reads time through a
/// `Clock`, so tests use a [`FixedClock`] and never sleep.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The current instant.
    fn now(&self) -> DateTime<Utc>;
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
#[derive(Debug, Clone)]
pub struct FixedClock {
    now: Arc<Mutex<DateTime<Utc>>>,
}

impl FixedClock {
    /// A clock stopped at `now`.
    pub fn new(now: DateTime<Utc>) -> Self {
        FixedClock {
            now: Arc::new(Mutex::new(now)),
        }
    }

    /// Sets the time. Clones of this clock see the change.
    pub fn set(&self, now: DateTime<Utc>) {
        *self.now.lock().unwrap_or_else(PoisonError::into_inner) = now;
    }

    /// Moves the time forward (or back, with a negative duration).
    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(PoisonError::into_inner);
        *now += by;
    }

    /// This clock as a [`SharedClock`]; the handle keeps following [`FixedClock::set`].
    pub fn shared(&self) -> SharedClock {
        Arc::new(self.clone())
    }
}

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap_or_else(PoisonError::into_inner)
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
