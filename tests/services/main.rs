//! The systemd units of `packaging/systemd/`: each names a binary this package builds,
//! carries the options docs/operations.md promises (restart on failure, a dedicated
//! user, secrets from the environment file, sandboxing) and passes
//! `systemd-analyze verify` with its binary replaced by the freshly built one.

use std::path::{Path, PathBuf};
use std::process::Command;

const UNITS: [(&str, &str, &str); 3] = [
    (
        "recops-recommender.service",
        "recommender",
        env!("CARGO_BIN_EXE_recommender"),
    ),
    (
        "recops-scheduler.service",
        "scheduler",
        env!("CARGO_BIN_EXE_scheduler"),
    ),
    (
        "recops-dashboard.service",
        "dashboard",
        env!("CARGO_BIN_EXE_dashboard"),
    ),
];

fn packaging() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/systemd")
}

fn read(name: &str) -> String {
    let path = packaging().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The value of `key=` in a unit (the first occurrence).
fn value<'a>(unit: &'a str, key: &str) -> Option<&'a str> {
    unit.lines()
        .find_map(|line| line.strip_prefix(key)?.strip_prefix('='))
        .map(str::trim)
}

#[test]
fn every_unit_runs_its_binary_on_the_home_with_restart_user_and_sandbox() {
    for (name, binary, _) in UNITS {
        let unit = read(name);
        assert_eq!(
            value(&unit, "ExecStart"),
            Some(format!("/usr/local/bin/{binary} --home /var/lib/recops").as_str()),
            "{name}"
        );
        for (key, expected) in [
            ("User", "recops"),
            ("Group", "recops"),
            ("Restart", "on-failure"),
            ("EnvironmentFile", "/etc/recops/recops.env"),
            ("ProtectSystem", "strict"),
            ("ReadWritePaths", "/var/lib/recops"),
            ("NoNewPrivileges", "yes"),
            ("ProtectHome", "yes"),
            ("PrivateTmp", "yes"),
            ("WantedBy", "multi-user.target"),
        ] {
            assert_eq!(value(&unit, key), Some(expected), "{name}: {key}");
        }
    }
    // The scheduler waits for its jobs on SIGTERM: systemd must signal it alone, and
    // wait longer than its default shutdown grace (120 s).
    let scheduler = read("recops-scheduler.service");
    assert_eq!(value(&scheduler, "KillMode"), Some("mixed"));
    let stop: u64 = value(&scheduler, "TimeoutStopSec")
        .and_then(|v| v.parse().ok())
        .unwrap_or_default();
    assert!(stop > 120, "TimeoutStopSec {stop}");
}

#[test]
fn the_environment_file_names_every_secret_and_sets_none() {
    let env = read("recops.env.example");
    for key in [
        "RECOPS_HOME",
        "RECOPS_ADMIN_TOKEN",
        "SMTP_PASSWORD",
        "SLACK_WEBHOOK_URL",
    ] {
        let line = env
            .lines()
            .find(|l| l.starts_with(&format!("{key}=")))
            .unwrap_or_else(|| panic!("recops.env.example has no {key}="));
        if key != "RECOPS_HOME" {
            assert_eq!(line, format!("{key}="), "a secret shipped with a value");
        }
    }
}

#[test]
fn systemd_analyze_verifies_every_unit() {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("NOTICE: systemd-analyze not installed; unit files not verified");
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let env_file = packaging().join("recops.env.example");
    let mut paths = Vec::new();
    for (name, binary, built) in UNITS {
        let unit = read(name)
            .replace(&format!("/usr/local/bin/{binary}"), built)
            .replace("/etc/recops/recops.env", &env_file.to_string_lossy());
        let path = dir.path().join(name);
        std::fs::write(&path, unit).expect("write unit");
        paths.push(path);
    }
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .args(&paths)
        .output()
        .expect("run systemd-analyze");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "systemd-analyze verify: {stderr}");
    // verify exits 0 on some warnings; none is expected from our units.
    let ours: Vec<&str> = stderr.lines().filter(|l| l.contains("recops-")).collect();
    assert!(ours.is_empty(), "warnings: {ours:?}");
}
