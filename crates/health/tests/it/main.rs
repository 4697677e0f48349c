//! The model and embeddings checks on real files.
#![allow(clippy::unwrap_used)]

mod embeddings;
mod model;
