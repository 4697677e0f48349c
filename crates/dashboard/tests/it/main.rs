//! Integration tests of recops-dashboard: the API and pages over real HTTP on an
//! empty and a filled home, the actions, and the pages in a real headless Chromium.

// Helpers outside #[test] functions assert too; the NOTICE of a skipped test is printed.
#![allow(clippy::unwrap_used, clippy::print_stderr)]

mod api;
mod browser;
mod fill;
mod postgres;
mod support;
