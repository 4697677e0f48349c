//! Integration tests of recops-embeddings: the tiny fixture model (fixtures/) and, when
//! `scripts/fetch_models.sh` has run, the real multilingual-e5-small.
//!
//! Both need the ONNX Runtime library from the models folder (or `ORT_DYLIB_PATH`).
//! Without it they print a notice and pass, unless `RECOPS_REQUIRE_MODELS=1` (CI sets
//! it after running the setup), which turns a missing setup into a failure.
#![allow(clippy::unwrap_used, clippy::print_stderr, missing_docs)]

mod generate;
mod real_model;
mod support;
mod tiny;
