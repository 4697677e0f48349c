//! End-to-end tests of the recops binaries on temporary homes.
#![allow(clippy::unwrap_used)]

mod alert;
mod bert_embeddings;
mod scheduler;
mod stats;
