//! Cost of one evaluation round of the shipped rules (criterion): the stateless
//! `check_alert_conditions`, and `process` with its state database, on a quiet
//! service and on one whose alerts keep firing (deduplicated after the first).
#![allow(missing_docs, clippy::unwrap_used)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use recops_alerting::AlertManager;
use recops_core::{FixedClock, Home};

fn rounds(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::new(dir.path());
    let clock = FixedClock::new(chrono::Utc::now());
    let alerts = AlertManager::builder(&home)
        .clock(clock.shared())
        .build()
        .unwrap();
    let rules = alerts.config().alerts.len() as u64;
    let quiet = [
        ("avg_latency_ms", 120.0),
        ("error_rate", 0.01),
        ("fallback_rate", 0.1),
        ("data_drift", 0.0),
        ("model_degradation", 0.0),
    ];
    let firing = [
        ("avg_latency_ms", 612.0),
        ("error_rate", 0.08),
        ("fallback_rate", 0.4),
        ("data_drift", 1.0),
        ("model_degradation", 0.2),
    ];
    let mut group = c.benchmark_group("alert_rules");
    group.throughput(Throughput::Elements(rules));
    group.bench_function("check_alert_conditions", |b| {
        b.iter(|| alerts.check_alert_conditions(&firing))
    });
    group.bench_function("process_quiet", |b| b.iter(|| alerts.process(&quiet)));
    // The first round notifies (log channel; e-mail and Slack are not configured),
    // every later one is deduplicated within the 4 h repeat interval.
    alerts.process(&firing);
    group.bench_function("process_firing_deduplicated", |b| {
        b.iter(|| alerts.process(&firing))
    });
    group.finish();
}

criterion_group!(benches, rounds);
criterion_main!(benches);
