//! Helpers shared by the end-to-end tests: how a binary is started (no inherited
//! home, quiet logs) and how its output is read.

use std::path::Path;
use std::process::{Command, Output};

/// The binary at `path` (`env!("CARGO_BIN_EXE_...")`) without the caller's
/// `RECOPS_HOME`, logging at `warn`.
pub(crate) fn command(path: &str) -> Command {
    let mut c = Command::new(path);
    c.env_remove("RECOPS_HOME").env("RECOPS_LOG", "warn");
    c
}

/// Runs `recops --home <home> <args>` and returns its output.
pub(crate) fn recops(home: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_recops"))
        .arg("--home")
        .arg(home)
        .args(args)
        .env_remove("RECOPS_HOME")
        .output()
        .unwrap()
}

/// Runs `c`, asserts it succeeded (printing its output otherwise) and returns the output.
pub(crate) fn ok(c: &mut Command) -> Output {
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}
