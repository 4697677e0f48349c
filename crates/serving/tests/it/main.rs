//! The recommender service over real HTTP on an OS-chosen port.
#![allow(clippy::unwrap_used)]

mod home_source;
mod hostile;
mod service;
