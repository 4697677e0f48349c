//! Deploy -> verify -> rollback against a real recommender service on 127.0.0.1.
#![allow(clippy::unwrap_used)]

mod deploy;
