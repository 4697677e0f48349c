//! Integration tests of recops-alerting against real local servers (SMTP and HTTP on
//! 127.0.0.1, started and stopped by each test).
#![allow(clippy::unwrap_used, clippy::print_stdout)]

mod alertmanager;
mod dedup;
mod email;
mod postgres;
mod prometheus;
mod scenarios;
mod slack;
mod support;
