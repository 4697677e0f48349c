//! Integration tests of recops-dashboard: the API over real HTTP, and the pages in a
//! real headless Chromium.
