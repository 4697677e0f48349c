//! Browser tests (next).
