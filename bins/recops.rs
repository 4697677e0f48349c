//! `recops`: the entry point for people (`recops demo`, `recops stats`, `recops models`,
//! `recops runs`, ...); the argument tree and dispatch live in `recops::cli`.

use std::process::ExitCode;

fn main() -> ExitCode {
    recops::cli::main()
}
