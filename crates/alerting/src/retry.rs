//! Bounded retries with exponential backoff, with an injectable sleeper.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::config::NotificationSettings;

/// Waits between delivery attempts. The real one sleeps the thread; tests inject one
/// that records the waits and returns at once.
pub trait Sleeper: Send + Sync + fmt::Debug {
    /// Waits `duration`.
    fn sleep(&self, duration: Duration);
}

/// The real sleeper: `std::thread::sleep`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ThreadSleeper;

impl Sleeper for ThreadSleeper {
    fn sleep(&self, duration: Duration) {
        std::thread::sleep(duration);
    }
}

/// A shared sleeper handle.
pub type SharedSleeper = Arc<dyn Sleeper>;

/// How often and how patiently a delivery is retried.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Tries in total (>= 1).
    pub max_attempts: u32,
    /// Wait before the second try.
    pub initial_backoff: Duration,
    /// Longest wait.
    pub max_backoff: Duration,
}

impl RetryPolicy {
    /// The policy of `notifications:`.
    pub fn from_settings(s: &NotificationSettings) -> Self {
        RetryPolicy {
            max_attempts: s.max_attempts.max(1),
            initial_backoff: secs(s.initial_backoff_secs),
            max_backoff: secs(s.max_backoff_secs),
        }
    }

    /// The wait after failed try number `attempt` (1-based): initial * 2^(attempt-1),
    /// at most `max_backoff`.
    pub fn backoff_after(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1).min(30));
        self.initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }
}

pub(crate) fn secs(v: f64) -> Duration {
    if v.is_finite() && v > 0.0 {
        Duration::from_secs_f64(v.min(1e9))
    } else {
        Duration::ZERO
    }
}

/// The result of one try.
pub(crate) enum Attempt<T> {
    /// Done.
    Ok(T),
    /// Failed; worth another try (timeout, connection refused, 5xx).
    Transient(String),
    /// Failed for good (login refused, 4xx): no retry.
    Permanent(String),
}

/// Runs `f` until it succeeds, fails permanently or `policy.max_attempts` tries are
/// used. Returns the value or the last reason, and the number of tries.
pub(crate) fn with_retries<T>(
    policy: &RetryPolicy,
    sleeper: &dyn Sleeper,
    mut f: impl FnMut(u32) -> Attempt<T>,
) -> (Result<T, String>, u32) {
    let mut attempt = 1;
    loop {
        match f(attempt) {
            Attempt::Ok(v) => return (Ok(v), attempt),
            Attempt::Permanent(reason) => return (Err(reason), attempt),
            Attempt::Transient(reason) if attempt >= policy.max_attempts => {
                return (Err(reason), attempt);
            }
            Attempt::Transient(reason) => {
                let wait = policy.backoff_after(attempt);
                tracing::debug!(attempt, wait_ms = wait.as_millis() as u64, reason = %reason, "delivery failed, retrying");
                sleeper.sleep(wait);
                attempt += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Debug, Default)]
    struct Recorder(Mutex<Vec<Duration>>);
    impl Sleeper for Recorder {
        fn sleep(&self, d: Duration) {
            self.0.lock().unwrap().push(d);
        }
    }

    fn policy(n: u32) -> RetryPolicy {
        RetryPolicy {
            max_attempts: n,
            initial_backoff: Duration::from_secs(2),
            max_backoff: Duration::from_secs(5),
        }
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let p = policy(5);
        assert_eq!(p.backoff_after(1), Duration::from_secs(2));
        assert_eq!(p.backoff_after(2), Duration::from_secs(4));
        assert_eq!(p.backoff_after(3), Duration::from_secs(5));
        assert_eq!(p.backoff_after(100), Duration::from_secs(5));
    }

    #[test]
    fn transient_failures_are_retried_up_to_the_bound() {
        let rec = Recorder::default();
        let (r, n) =
            with_retries::<()>(&policy(3), &rec, |i| Attempt::Transient(format!("try {i}")));
        assert_eq!(r, Err("try 3".to_owned()));
        assert_eq!(n, 3);
        assert_eq!(
            *rec.0.lock().unwrap(),
            vec![Duration::from_secs(2), Duration::from_secs(4)]
        );
    }

    #[test]
    fn permanent_failures_and_successes_stop_at_once() {
        let rec = Recorder::default();
        let (r, n) = with_retries::<()>(&policy(3), &rec, |_| Attempt::Permanent("535".into()));
        assert_eq!((r, n), (Err("535".to_owned()), 1));
        let (r, n) = with_retries(&policy(3), &rec, |i| {
            if i < 2 {
                Attempt::Transient("500".into())
            } else {
                Attempt::Ok(i)
            }
        });
        assert_eq!((r, n), (Ok(2), 2));
        assert_eq!(rec.0.lock().unwrap().len(), 1);
    }
}
