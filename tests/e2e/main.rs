//! End-to-end tests of the recops binaries on temporary homes.
#![allow(clippy::unwrap_used)]

mod alert;
mod bench_cf;
mod bert_embeddings;
mod data_refresh;
mod demo;
mod failover;
mod model_training;
mod ops;
mod ops_scheduled;
mod pipeline;
mod postgres;
mod replicas;
mod scheduler;
mod stats;
mod support;
