//! Asking a running scheduler to stop: from SIGINT/SIGTERM in the binary, or directly in
//! tests.

use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

use nix::sys::signal::{SigSet, Signal};

use crate::error::{Error, Result};

/// A stop request shared between the signal thread and the scheduler loop.
///
/// The first request makes the scheduler stop starting jobs and wait for the running
/// ones (up to `shutdown_grace_seconds`); a second request stops the running jobs at
/// once (SIGTERM, then SIGKILL after `kill_grace_seconds`).
#[derive(Debug, Clone, Default)]
pub struct StopSignal {
    inner: Arc<(Mutex<u32>, Condvar)>,
}

impl StopSignal {
    /// A signal nobody has requested yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Requests a stop (again).
    pub fn request(&self) {
        let (count, cv) = &*self.inner;
        *count.lock().unwrap_or_else(PoisonError::into_inner) += 1;
        cv.notify_all();
    }

    /// How many stops were requested.
    pub fn requests(&self) -> u32 {
        *self.inner.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether a stop was requested.
    pub fn is_requested(&self) -> bool {
        self.requests() > 0
    }

    /// Waits up to `timeout` for a new request; returns whether any stop is requested.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        let (count, cv) = &*self.inner;
        let guard = count.lock().unwrap_or_else(PoisonError::into_inner);
        let before = *guard;
        let (guard, _) = cv
            .wait_timeout_while(guard, timeout, |c| *c == before)
            .unwrap_or_else(PoisonError::into_inner);
        *guard > 0
    }

    /// Routes SIGINT and SIGTERM to this signal: blocks them in the calling thread
    /// (call it first thing in `main`, before other threads start, so every thread
    /// inherits the mask) and starts a thread that waits for them. Child processes
    /// start with an empty signal mask (the standard library resets it), so jobs still
    /// receive the SIGTERM the scheduler sends them.
    pub fn install_os_handlers(&self) -> Result<()> {
        let mut set = SigSet::empty();
        set.add(Signal::SIGINT);
        set.add(Signal::SIGTERM);
        set.thread_block().map_err(|e| Error::Io {
            action: "cannot block SIGINT/SIGTERM".into(),
            source: e.into(),
        })?;
        let stop = self.clone();
        std::thread::Builder::new()
            .name("recops-signals".into())
            .spawn(move || {
                while let Ok(sig) = set.wait() {
                    tracing::info!(signal = sig.as_str(), "stop requested");
                    stop.request();
                }
            })
            .map_err(|e| Error::Io {
                action: "cannot start the signal thread".into(),
                source: e,
            })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_wake_a_waiter_and_are_counted() {
        let stop = StopSignal::new();
        assert!(!stop.wait_timeout(Duration::from_millis(1)));
        let s2 = stop.clone();
        let t = std::thread::spawn(move || s2.wait_timeout(Duration::from_secs(30)));
        std::thread::sleep(Duration::from_millis(20));
        stop.request();
        assert!(t.join().unwrap());
        stop.request();
        assert_eq!(stop.requests(), 2);
    }
}
