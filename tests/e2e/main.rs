//! End-to-end tests of the recops binaries on temporary homes.
#![allow(clippy::unwrap_used)]

mod bert_embeddings;
mod stats;
