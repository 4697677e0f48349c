//! recops-testkit integration tests: generated files go through recops-data's ingest,
//! and the data has the structure collaborative filtering needs.

mod cf;
mod files;
