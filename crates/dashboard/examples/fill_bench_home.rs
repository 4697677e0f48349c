//! Fills a home for the dashboard benchmark (written later).
fn main() {}
