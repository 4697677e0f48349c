//! Phase timings of drift detection on a home: load, detect, report.
//!
//! ```text
//! cargo run --release -p recops-drift --example drift_timing -- HOME
//! ```
#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::time::Instant;

use recops_core::{Clock, DriftSettings, Home, SystemClock};
use recops_drift::{DriftInput, detect_drift, generate_drift_report};

fn main() {
    let home = Home::new(std::env::args().nth(1).expect("usage: drift_timing HOME"));
    for _ in 0..3 {
        let t0 = Instant::now();
        let (input, version) = DriftInput::load(&home).unwrap();
        let t1 = Instant::now();
        let r = detect_drift(&input, &DriftSettings::default());
        let t2 = Instant::now();
        generate_drift_report(&home, &r, version.as_deref(), SystemClock.now()).unwrap();
        let t3 = Instant::now();
        println!(
            "rows {} load {:.1} ms, detect {:.1} ms, report {:.1} ms, total {:.1} ms",
            input.len(),
            (t1 - t0).as_secs_f64() * 1e3,
            (t2 - t1).as_secs_f64() * 1e3,
            (t3 - t2).as_secs_f64() * 1e3,
            (t3 - t0).as_secs_f64() * 1e3
        );
    }
}
