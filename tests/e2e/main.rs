//! End-to-end tests of the recops binaries on temporary homes.
#![allow(clippy::unwrap_used)]

mod alert;
mod bench_cf;
mod data_refresh;
mod model_training;
mod scheduler;
mod stats;
