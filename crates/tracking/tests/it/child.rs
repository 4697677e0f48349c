//! The child side: `entry` does what `RECOPS_TEST_CHILD` says, then exits.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use recops_core::SystemClock;
use recops_tracking::{LockOptions, PipelineLock, PipelineTracker};
use serde_json::json;

const ROLE: &str = "RECOPS_TEST_CHILD";
const PATH: &str = "RECOPS_TEST_CHILD_PATH";
const COUNT: &str = "RECOPS_TEST_CHILD_COUNT";

/// Starts this test binary as a child with `role` on `path`.
pub(crate) fn spawn(role: &str, path: &Path, count: usize) -> Child {
    spawn_with(role, path, count, &[])
}

/// [`spawn`] with extra environment variables.
pub(crate) fn spawn_with(role: &str, path: &Path, count: usize, env: &[(&str, &str)]) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "child::entry",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ROLE, role)
        .env(PATH, path)
        .env(COUNT, count.to_string())
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

/// Reads stdout lines of `child` until one holds `RESULT `, and returns what follows.
/// (The test harness prints `test child::entry ... ` on the same line first.)
pub(crate) fn read_result(child: &mut Child) -> String {
    let out = child.stdout.as_mut().unwrap();
    let mut reader = std::io::BufReader::new(out);
    let mut line = String::new();
    loop {
        line.clear();
        let n = reader.read_line(&mut line).unwrap();
        assert!(n > 0, "child ended without a RESULT line");
        if let Some(at) = line.find("RESULT ") {
            return line[at + "RESULT ".len()..].trim_end().to_owned();
        }
    }
}

#[test]
#[ignore = "child process entry point, run by the cross-process tests"]
fn entry() {
    let Ok(role) = std::env::var(ROLE) else {
        return;
    };
    let path = PathBuf::from(std::env::var(PATH).unwrap());
    let count: usize = std::env::var(COUNT).unwrap().parse().unwrap();
    match role.as_str() {
        "track" => {
            let tracker = PipelineTracker::open_path(&path, SystemClock::shared()).unwrap();
            for i in 0..count {
                let id = tracker
                    .start_run("data_refresh", json!({"pid": std::process::id(), "i": i}))
                    .unwrap();
                tracker
                    .complete_run(&id, json!({"records_processed": i}))
                    .unwrap();
            }
            println!("RESULT done");
        }
        "track_home" => {
            // The store `storage.url` / RECOPS_STORAGE_URL of this home names.
            let home = recops_core::Home::new(&path);
            let tracker = PipelineTracker::open(&home).unwrap();
            let mut errors = 0;
            for i in 0..count {
                let id = tracker.start_run(
                    "data_refresh",
                    json!({"pid": std::process::id(), "i": i, "home": path}),
                );
                let Ok(id) = id else {
                    errors += 1;
                    continue;
                };
                if tracker
                    .complete_run(&id, json!({"records_processed": i}))
                    .is_err()
                {
                    errors += 1;
                }
                // Readers at the same time as the writers.
                if i % 50 == 0 && tracker.get_stats(1).is_err() {
                    errors += 1;
                }
            }
            println!("RESULT done {errors}");
        }
        "hold_lock" | "try_lock" | "hold_home_lock" => {
            let lock = if role == "hold_home_lock" {
                // The lock of a home: an advisory lock when its storage is PostgreSQL.
                PipelineLock::acquire(&recops_core::Home::new(&path), "data_refresh").unwrap()
            } else {
                PipelineLock::acquire_in(&path, "data_refresh", &LockOptions::default()).unwrap()
            };
            println!(
                "RESULT {} {}",
                if lock.acquired() { "acquired" } else { "busy" },
                std::process::id()
            );
            std::io::stdout().flush().unwrap();
            if role != "try_lock" {
                // Hold until the parent closes stdin (or kills us).
                let mut s = String::new();
                let _ = std::io::stdin().read_line(&mut s);
            }
        }
        other => panic!("unknown child role {other}"),
    }
}
