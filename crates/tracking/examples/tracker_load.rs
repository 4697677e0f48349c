//! Throughput harness for the tracking stores, in the shape of
//! `shared/bench/tracker_ref.py`: N start_run + complete_run pairs (or N service
//! rollup writes with `--rollups`) on one store, SQLite file or PostgreSQL URL.
//!
//! ```text
//! cargo run --release -p recops-tracking --example tracker_load -- TARGET N [PROCS] [--rollups]
//! ```
//! TARGET is an SQLite path or `postgres://USER@HOST:PORT/DB` (password from
//! PGPASSWORD). With PROCS > 1 it starts PROCS copies of itself on the same store at
//! once and reports the combined rate. Prints one JSON line: what, backend, runs or
//! writes, processes, seconds, per_s. Each process writes rollups of its own model id,
//! like replicas labelled by instance.
#![allow(clippy::unwrap_used, clippy::print_stdout, clippy::print_stderr)]

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use chrono::{Duration, Utc};
use recops_core::SystemClock;
use recops_tracking::{
    LatencyHistogram, MinuteRollup, PgDatabase, PgPipelineStore, PgRollupStore, PipelineTracker,
    ServiceMetricsStore,
};
use serde_json::json;

fn is_pg(target: &str) -> bool {
    target.starts_with("postgres://") || target.starts_with("postgresql://")
}

fn tracker(target: &str) -> PipelineTracker {
    if is_pg(target) {
        let db = PgDatabase::connect(target).unwrap();
        PipelineTracker::with_store(
            Box::new(PgPipelineStore::open(&db).unwrap()),
            SystemClock::shared(),
        )
    } else {
        PipelineTracker::open_path(Path::new(target), SystemClock::shared()).unwrap()
    }
}

fn rollups(target: &str) -> ServiceMetricsStore {
    if is_pg(target) {
        let db = PgDatabase::connect(target).unwrap();
        ServiceMetricsStore::with_store(Box::new(PgRollupStore::open(&db).unwrap()))
    } else {
        ServiceMetricsStore::open_path(Path::new(&format!("{target}.service"))).unwrap()
    }
}

fn main() {
    let args: Vec<String> = std::env::args().filter(|a| a != "--rollups").collect();
    let rollup_mode = std::env::args().any(|a| a == "--rollups");
    if args.len() < 3 {
        eprintln!("usage: tracker_load TARGET N [PROCS] [--rollups]");
        std::process::exit(2);
    }
    let target = args[1].clone();
    let n: u64 = args[2].parse().unwrap();
    let procs: u64 = args.get(3).map(|p| p.parse().unwrap()).unwrap_or(1);
    let what = if rollup_mode {
        "rollup_writes"
    } else {
        "start_complete"
    };
    let backend = if is_pg(&target) {
        "postgresql"
    } else {
        "sqlite"
    };
    if procs > 1 {
        // Create the store first so the children measure writes, not creation.
        if rollup_mode {
            drop(rollups(&target));
        } else {
            drop(tracker(&target));
        }
        let t0 = Instant::now();
        let children: Vec<_> = (0..procs)
            .map(|_| {
                let mut c = Command::new(std::env::current_exe().unwrap());
                c.arg(&target).arg(n.to_string());
                if rollup_mode {
                    c.arg("--rollups");
                }
                c.stdout(std::process::Stdio::null()).spawn().unwrap()
            })
            .collect();
        for mut c in children {
            assert!(c.wait().unwrap().success());
        }
        let dt = t0.elapsed().as_secs_f64();
        let total = n * procs;
        println!(
            "{}",
            json!({"what": what, "backend": backend, "count": total, "processes": procs,
                   "seconds": dt, "per_s": total as f64 / dt})
        );
        return;
    }
    let t0 = Instant::now();
    if rollup_mode {
        let store = rollups(&target);
        let model = format!("pid{}", std::process::id());
        let base = Utc::now() - Duration::days(30);
        let mut hist = LatencyHistogram::new();
        hist.record(4.0);
        hist.record(12.0);
        for i in 0..n {
            store
                .record(&[MinuteRollup {
                    minute: base + Duration::minutes(i64::try_from(i).unwrap()),
                    endpoint: "/recommend".into(),
                    model_id: model.clone(),
                    instance: model.clone(),
                    request_count: 2,
                    error_count: 0,
                    fallback_count: 0,
                    latency: hist.clone(),
                }])
                .unwrap();
        }
    } else {
        let tracker = tracker(&target);
        for i in 0..n {
            let id = tracker.start_run("data_refresh", json!({"i": i})).unwrap();
            tracker
                .complete_run(&id, json!({"records_processed": i}))
                .unwrap();
        }
    }
    let dt = t0.elapsed().as_secs_f64();
    println!(
        "{}",
        json!({"what": what, "backend": backend, "count": n, "processes": 1, "seconds": dt,
               "per_s": n as f64 / dt})
    );
}
