//! The service rules (`high_latency`, `critical_latency`, `high_error_rate`,
//! `high_fallback_rate`) evaluated every minute over a sliding window of the
//! recommender's rollups, not only inside the hourly health check.
//!
//! [`evaluate_service_rules`] reads the last [`SERVICE_RULES_WINDOW_MINUTES`] complete
//! minutes of `logs/service_metrics.db` and runs the rules of
//! `config/alerts_config.yaml` on them through the alert manager (so
//! `for_evaluations`, deduplication, repeat intervals, silences and resolve notices
//! work as for every alert). [`spawn_service_rules`] is what the `recommender` binary
//! starts beside the service: a thread that evaluates once a minute.

use std::time::Duration as StdDuration;

use chrono::Duration;
use recops_core::{Home, SharedClock, SystemClock, error_chain, format_timestamp};
use recops_tracking::{ServiceMetricsStore, WindowMetrics, truncate_minute};
use serde::Serialize;
use tracing::warn;

use crate::error::Result;
use crate::job::JobAlerts;

/// Length of the sliding window, in minutes.
pub const SERVICE_RULES_WINDOW_MINUTES: i64 = 5;

/// How often the recommender evaluates the rules.
pub const SERVICE_RULES_EVERY: StdDuration = StdDuration::from_secs(60);

/// One evaluation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceRulesReport {
    /// RFC 3339 time of the evaluation.
    pub at: String,
    /// The window's metrics.
    pub metrics: WindowMetrics,
    /// Rules whose threshold the window breaches.
    pub breached: Vec<String>,
}

/// Evaluates the service rules over the complete minutes of the last
/// `window_minutes` (the current minute is still being collected).
pub fn evaluate_service_rules(
    home: &Home,
    clock: &SharedClock,
    window_minutes: i64,
) -> Result<ServiceRulesReport> {
    let now = clock.now();
    let to = truncate_minute(now);
    let from = to - Duration::minutes(window_minutes.max(1));
    let metrics = ServiceMetricsStore::open(home)?.window(from, to, None)?;
    let alerts = JobAlerts::open(home, clock);
    let breached = match alerts.manager() {
        // No traffic: the rules' metrics are missing and they keep their state.
        Some(m) if metrics.request_count > 0 => m
            .process(&metrics.alert_metrics())
            .into_iter()
            .filter(|e| e.breached)
            .map(|e| e.alert_name)
            .collect(),
        _ => Vec::new(),
    };
    Ok(ServiceRulesReport {
        at: format_timestamp(now),
        metrics,
        breached,
    })
}

/// Starts the thread the `recommender` binary runs beside the service: it evaluates
/// the service rules of `home` once a minute until the process exits. A failed
/// evaluation is logged and retried the next minute.
pub fn spawn_service_rules(home: &Home) {
    let home = home.clone();
    let spawned = std::thread::Builder::new()
        .name("recops-service-rules".into())
        .spawn(move || {
            let clock = SystemClock::shared();
            loop {
                std::thread::sleep(SERVICE_RULES_EVERY);
                if let Err(e) = evaluate_service_rules(&home, &clock, SERVICE_RULES_WINDOW_MINUTES)
                {
                    warn!(error = %error_chain(&e), "cannot evaluate the service alert rules");
                }
            }
        });
    if let Err(e) = spawned {
        warn!(error = %e, "cannot start the service rules thread: rules run in the hourly health check only");
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use recops_core::FixedClock;
    use recops_tracking::{LatencyHistogram, MinuteRollup};

    use super::*;

    fn minute(store: &ServiceMetricsStore, at: chrono::DateTime<Utc>, latency_ms: f64) {
        replica_minute(store, "", at, latency_ms, 50);
    }

    fn replica_minute(
        store: &ServiceMetricsStore,
        instance: &str,
        at: chrono::DateTime<Utc>,
        latency_ms: f64,
        requests: u64,
    ) {
        let mut latency = LatencyHistogram::new();
        for _ in 0..requests {
            latency.record(latency_ms);
        }
        store
            .record(&[MinuteRollup {
                minute: at,
                endpoint: "/recommend".into(),
                model_id: "als_1".into(),
                instance: instance.into(),
                request_count: requests,
                error_count: 0,
                fallback_count: 0,
                latency,
            }])
            .unwrap();
    }

    /// Two replicas: the rules see the requests of both, latency weighted by
    /// requests. 150 requests at 20 ms and 50 at 900 ms average 240 ms: high_latency
    /// (200) fires, critical_latency (500) does not; either replica alone, or the
    /// slower one overwriting the other's row, would give 20 or 900 ms.
    #[test]
    fn the_rules_aggregate_every_replica_of_a_minute() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::new(dir.path());
        let t0 = Utc.with_ymd_and_hms(2025, 1, 15, 10, 0, 0).unwrap();
        let clock = FixedClock::new(t0 + Duration::minutes(5) + Duration::seconds(5));
        let store = ServiceMetricsStore::open(&home).unwrap();
        for m in 0..5 {
            replica_minute(&store, "shop-1:8000", t0 + Duration::minutes(m), 20.0, 150);
            replica_minute(&store, "shop-2:8000", t0 + Duration::minutes(m), 900.0, 50);
        }
        let r =
            evaluate_service_rules(&home, &clock.shared(), SERVICE_RULES_WINDOW_MINUTES).unwrap();
        assert_eq!(r.metrics.request_count, 5 * 200);
        let avg = r.metrics.avg_latency_ms.unwrap();
        assert!((avg - 240.0).abs() < 1e-9, "{avg}");
        assert_eq!(r.breached, ["high_latency"]);
    }

    #[test]
    fn a_latency_spike_fires_high_latency_within_two_evaluation_periods() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::new(dir.path());
        let t0 = Utc.with_ymd_and_hms(2025, 1, 15, 10, 0, 0).unwrap();
        let clock = FixedClock::new(t0);
        let shared = clock.shared();
        let store = ServiceMetricsStore::open(&home).unwrap();
        // Quiet minutes: nothing fires.
        for m in 0..5 {
            minute(&store, t0 + Duration::minutes(m), 20.0);
        }
        clock.set(t0 + Duration::minutes(5) + Duration::seconds(5));
        let r = evaluate_service_rules(&home, &shared, SERVICE_RULES_WINDOW_MINUTES).unwrap();
        assert!(r.breached.is_empty(), "{r:?}");
        // The spike: two minutes at 900 ms.
        minute(&store, t0 + Duration::minutes(5), 900.0);
        minute(&store, t0 + Duration::minutes(6), 900.0);
        let mut fired_after = None;
        for period in 1..=2 {
            clock.set(t0 + Duration::minutes(5 + period) + Duration::seconds(5));
            let r = evaluate_service_rules(&home, &shared, SERVICE_RULES_WINDOW_MINUTES).unwrap();
            let log = std::fs::read_to_string(home.alerts_log()).unwrap_or_default();
            if log.contains("| high_latency triggered: ") {
                assert_eq!(r.breached, ["high_latency"]);
                fired_after = Some(period);
                break;
            }
        }
        assert!(
            fired_after.is_some(),
            "high_latency did not fire within two periods"
        );
    }
}
