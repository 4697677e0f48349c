//! A mergeable latency histogram with fixed log-spaced buckets.

use serde::{Deserialize, Serialize};

/// Upper bound of bucket 0, in milliseconds (10 µs).
const BASE_MS: f64 = 0.01;
/// Each bucket's upper bound is this factor times the previous one (±5 % resolution).
const GROWTH: f64 = 1.1;
/// Number of buckets; the last one ends near 283 s and also takes anything slower.
pub(crate) const BUCKETS: usize = 180;

/// Request latencies of one series (an endpoint and model, over a minute or a window).
///
/// Buckets are the same everywhere, so histograms of different minutes merge exactly and
/// percentiles of any window can be computed from the stored minutes. Percentiles are
/// interpolated within a bucket (error below 10 %) and clamped to the observed min/max.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatencyHistogram {
    count: u64,
    sum_ms: f64,
    min_ms: f64,
    max_ms: f64,
    /// Sparse `[bucket, count]` pairs, ascending by bucket.
    buckets: Vec<(u16, u64)>,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        LatencyHistogram {
            count: 0,
            sum_ms: 0.0,
            min_ms: f64::INFINITY,
            max_ms: 0.0,
            buckets: Vec::new(),
        }
    }
}

/// The bucket of a latency in milliseconds.
fn bucket_of(ms: f64) -> u16 {
    if ms.is_nan() || ms <= BASE_MS {
        return 0;
    }
    let i = ((ms / BASE_MS).ln() / GROWTH.ln()).ceil();
    (i as usize).min(BUCKETS - 1) as u16
}

/// The upper bound of bucket `i` in milliseconds.
fn upper_bound(i: u16) -> f64 {
    BASE_MS * GROWTH.powi(i32::from(i))
}

impl LatencyHistogram {
    /// An empty histogram.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one latency in milliseconds (negative or NaN values count as 0).
    pub fn record(&mut self, ms: f64) {
        let ms = if ms.is_finite() && ms > 0.0 { ms } else { 0.0 };
        self.count += 1;
        self.sum_ms += ms;
        self.min_ms = self.min_ms.min(ms);
        self.max_ms = self.max_ms.max(ms);
        let b = bucket_of(ms);
        match self.buckets.binary_search_by_key(&b, |&(k, _)| k) {
            Ok(i) => self.buckets[i].1 += 1,
            Err(i) => self.buckets.insert(i, (b, 1)),
        }
    }

    /// Adds every observation of `other`.
    pub fn merge(&mut self, other: &LatencyHistogram) {
        if other.count == 0 {
            return;
        }
        self.count += other.count;
        self.sum_ms += other.sum_ms;
        self.min_ms = self.min_ms.min(other.min_ms);
        self.max_ms = self.max_ms.max(other.max_ms);
        for &(b, c) in &other.buckets {
            match self.buckets.binary_search_by_key(&b, |&(k, _)| k) {
                Ok(i) => self.buckets[i].1 += c,
                Err(i) => self.buckets.insert(i, (b, c)),
            }
        }
    }

    /// Number of observations.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Sum of all latencies, milliseconds.
    pub fn sum_ms(&self) -> f64 {
        self.sum_ms
    }

    /// Mean latency, or `None` when empty.
    pub fn mean_ms(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum_ms / self.count as f64)
    }

    /// Smallest latency seen, or `None` when empty.
    pub fn min_ms(&self) -> Option<f64> {
        (self.count > 0).then_some(self.min_ms)
    }

    /// Largest latency seen, or `None` when empty.
    pub fn max_ms(&self) -> Option<f64> {
        (self.count > 0).then_some(self.max_ms)
    }

    /// The `q` quantile (0..=1) in milliseconds, or `None` when empty.
    pub fn quantile_ms(&self, q: f64) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        let q = q.clamp(0.0, 1.0);
        if q == 0.0 {
            return Some(self.min_ms);
        }
        let rank = (q * self.count as f64).ceil().max(1.0);
        let mut seen = 0u64;
        for &(b, c) in &self.buckets {
            if (seen + c) as f64 >= rank {
                let lower = if b == 0 { 0.0 } else { upper_bound(b - 1) };
                let upper = upper_bound(b);
                let frac = (rank - seen as f64) / c as f64;
                let v = lower + (upper - lower) * frac;
                return Some(v.clamp(self.min_ms, self.max_ms));
            }
            seen += c;
        }
        Some(self.max_ms)
    }

    /// The sparse bucket counts, `(bucket, count)` ascending; for storage.
    pub fn buckets(&self) -> &[(u16, u64)] {
        &self.buckets
    }

    /// Rebuilds a histogram from stored parts. Buckets out of range are clamped into the
    /// last bucket; the count is the sum of the bucket counts.
    pub fn from_parts(sum_ms: f64, min_ms: f64, max_ms: f64, buckets: &[(u16, u64)]) -> Self {
        let mut h = LatencyHistogram::default();
        for &(b, c) in buckets {
            let b = b.min(BUCKETS as u16 - 1);
            h.count += c;
            match h.buckets.binary_search_by_key(&b, |&(k, _)| k) {
                Ok(i) => h.buckets[i].1 += c,
                Err(i) => h.buckets.insert(i, (b, c)),
            }
        }
        if h.count > 0 {
            h.sum_ms = sum_ms;
            h.min_ms = min_ms;
            h.max_ms = max_ms;
        }
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn empty_histogram_has_no_statistics() {
        let h = LatencyHistogram::new();
        assert_eq!(h.mean_ms(), None);
        assert_eq!(h.quantile_ms(0.99), None);
        assert_eq!(h.min_ms(), None);
    }

    #[test]
    fn percentiles_of_a_uniform_sample_are_within_resolution() {
        let mut h = LatencyHistogram::new();
        for i in 1..=1000 {
            h.record(f64::from(i) / 10.0); // 0.1 .. 100 ms
        }
        assert_eq!(h.count(), 1000);
        assert!((h.mean_ms().unwrap() - 50.05).abs() < 1e-9);
        for (q, exact) in [(0.5, 50.0), (0.95, 95.0), (0.99, 99.0)] {
            let got = h.quantile_ms(q).unwrap();
            assert!((got - exact).abs() / exact < 0.1, "q{q}: {got} vs {exact}");
        }
        assert_eq!(h.quantile_ms(1.0), Some(100.0));
        assert_eq!(h.quantile_ms(0.0).unwrap(), 0.1);
    }

    proptest! {
        #[test]
        fn merge_equals_recording_everything(
            a in prop::collection::vec(0.0f64..5000.0, 0..200),
            b in prop::collection::vec(0.0f64..5000.0, 0..200),
        ) {
            let mut ha = LatencyHistogram::new();
            a.iter().for_each(|&x| ha.record(x));
            let mut hb = LatencyHistogram::new();
            b.iter().for_each(|&x| hb.record(x));
            let mut all = LatencyHistogram::new();
            a.iter().chain(&b).for_each(|&x| all.record(x));
            ha.merge(&hb);
            prop_assert_eq!(ha.count(), all.count());
            prop_assert_eq!(ha.buckets(), all.buckets());
            prop_assert!((ha.sum_ms() - all.sum_ms()).abs() < 1e-6);
            let rebuilt = LatencyHistogram::from_parts(ha.sum_ms(), ha.min_ms().unwrap_or(0.0), ha.max_ms().unwrap_or(0.0), ha.buckets());
            prop_assert_eq!(rebuilt.quantile_ms(0.95), ha.quantile_ms(0.95));
        }

        #[test]
        fn quantiles_are_monotone_and_within_min_max(xs in prop::collection::vec(0.0f64..10_000.0, 1..300)) {
            let mut h = LatencyHistogram::new();
            xs.iter().for_each(|&x| h.record(x));
            let (lo, hi) = (h.min_ms().unwrap(), h.max_ms().unwrap());
            let mut prev = 0.0;
            for q in [0.0, 0.1, 0.5, 0.9, 0.95, 0.99, 1.0] {
                let v = h.quantile_ms(q).unwrap();
                prop_assert!(v >= prev - 1e-12 && v >= lo && v <= hi);
                prev = v;
            }
        }
    }
}
