//! recops-automation integration tests: the jobs on temporary homes.
#![allow(clippy::unwrap_used)]

mod data_refresh;
mod health_and_drift;
