//! A small time-bounded cache for results that are slow to compute (a health probe
//! of the service, parsed drift reports), shared by the request handlers.

use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

type Entry = (Instant, Arc<dyn Any + Send + Sync>);

/// Values by key, each kept for the time given when it was read.
#[derive(Default)]
pub(crate) struct Cache {
    entries: Mutex<HashMap<String, Entry>>,
    /// Recompute every time (benchmarks of the uncached cost).
    disabled: bool,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cache")
    }
}

impl Cache {
    /// A cache that never keeps anything.
    pub(crate) fn disabled() -> Self {
        Cache {
            disabled: true,
            ..Cache::default()
        }
    }

    /// The value of `key` computed less than `ttl` ago, else `compute()` (stored).
    pub(crate) fn get_or<T: Send + Sync + 'static>(
        &self,
        key: &str,
        ttl: Duration,
        compute: impl FnOnce() -> T,
    ) -> Arc<T> {
        if self.disabled {
            return Arc::new(compute());
        }
        if let Some(v) = self.fresh::<T>(key, ttl) {
            return v;
        }
        let value = Arc::new(compute());
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.insert(key.to_owned(), (Instant::now(), value.clone()));
        value
    }

    fn fresh<T: Send + Sync + 'static>(&self, key: &str, ttl: Duration) -> Option<Arc<T>> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let (at, value) = entries.get(key)?;
        if at.elapsed() > ttl {
            return None;
        }
        value.clone().downcast::<T>().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_reused_within_their_ttl_only() {
        let cache = Cache::default();
        let a = cache.get_or("k", Duration::from_secs(60), || 1);
        let b = cache.get_or("k", Duration::from_secs(60), || 2);
        assert_eq!((*a, *b), (1, 1));
        let c = cache.get_or("k", Duration::ZERO, || 3);
        assert_eq!(*c, 3);
    }
}
