//! Integration tests of recops-dashboard: the API and pages over real HTTP on an
//! empty and a filled home, the actions, and the pages in a real headless Chromium.

mod api;
mod browser;
mod fill;
mod support;
