//! Throughput harness for the pipeline tracker, in the shape of
//! `shared/bench/tracker_ref.py`: N start_run + complete_run pairs on one database.
//!
//! ```text
//! cargo run --release -p recops-tracking --example tracker_load -- DB N [PROCS]
//! ```
//! With PROCS > 1 it starts PROCS copies of itself on the same database at once and
//! reports the combined rate. Prints one JSON line: runs, seconds, runs_per_s.
#![allow(clippy::unwrap_used, clippy::print_stdout, clippy::print_stderr)]

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use recops_core::SystemClock;
use recops_tracking::PipelineTracker;
use serde_json::json;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: tracker_load DB N [PROCS]");
        std::process::exit(2);
    }
    let db = PathBuf::from(&args[1]);
    let n: u64 = args[2].parse().unwrap();
    let procs: u64 = args.get(3).map(|p| p.parse().unwrap()).unwrap_or(1);
    if procs > 1 {
        // Create the database first so the children measure writes, not creation.
        drop(PipelineTracker::open_path(&db, SystemClock::shared()).unwrap());
        let t0 = Instant::now();
        let children: Vec<_> = (0..procs)
            .map(|_| {
                Command::new(std::env::current_exe().unwrap())
                    .arg(&db)
                    .arg(n.to_string())
                    .stdout(std::process::Stdio::null())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for mut c in children {
            assert!(c.wait().unwrap().success());
        }
        let dt = t0.elapsed().as_secs_f64();
        let total = n * procs;
        println!(
            "{}",
            json!({"runs": total, "processes": procs, "seconds": dt, "runs_per_s": total as f64 / dt})
        );
        return;
    }
    let tracker = PipelineTracker::open_path(&db, SystemClock::shared()).unwrap();
    let t0 = Instant::now();
    for i in 0..n {
        let id = tracker.start_run("data_refresh", json!({"i": i})).unwrap();
        tracker
            .complete_run(&id, json!({"records_processed": i}))
            .unwrap();
    }
    let dt = t0.elapsed().as_secs_f64();
    println!(
        "{}",
        json!({"runs": n, "processes": 1, "seconds": dt, "runs_per_s": n as f64 / dt})
    );
}
