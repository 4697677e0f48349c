//! Cross-process tests of recops-tracking: several processes writing one database, and
#![allow(clippy::unwrap_used, clippy::print_stdout)]
//! pipeline locks between processes. Child processes are this same test binary,
//! re-run on the ignored `child::entry` test with instructions in the environment.

mod child;
mod locks;
mod multiprocess;
mod pg_schema;
