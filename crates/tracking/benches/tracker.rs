//! start_run + complete_run pairs per second in one process (criterion).
#![allow(missing_docs, clippy::unwrap_used)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use recops_core::SystemClock;
use recops_tracking::PipelineTracker;
use serde_json::json;

fn start_complete(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let tracker = PipelineTracker::open_path(
        &dir.path().join("pipeline_metrics.db"),
        SystemClock::shared(),
    )
    .unwrap();
    let mut group = c.benchmark_group("pipeline_tracker");
    group.throughput(Throughput::Elements(1));
    let mut i = 0u64;
    group.bench_function("start_run+complete_run", |b| {
        b.iter(|| {
            i += 1;
            let id = tracker.start_run("data_refresh", json!({"i": i})).unwrap();
            tracker
                .complete_run(&id, json!({"records_processed": i}))
                .unwrap();
        })
    });
    group.finish();
}

criterion_group!(benches, start_complete);
criterion_main!(benches);
