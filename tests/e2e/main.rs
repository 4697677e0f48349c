//! End-to-end tests of the recops binaries on temporary homes.
#![allow(clippy::unwrap_used)]

mod data_refresh;
mod stats;
