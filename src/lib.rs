//! recops, the root package: the `recops` command for people ([`cli`]); the other
//! binaries in `bins/` call their crates directly.

pub mod cli;
