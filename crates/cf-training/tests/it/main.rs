//! Integration tests of recops-cf-training: whole training runs on a temporary home.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod data;
mod faults;
mod runs;
