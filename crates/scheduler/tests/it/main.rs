//! Integration tests of the scheduler: a fixed clock drives the schedule, the jobs are
//! real processes (small sh scripts written by each test).
#![allow(clippy::unwrap_used, clippy::print_stderr)]

mod catch_up;
mod config_errors;
mod failover;
mod overdue;
mod running;
mod shutdown;
mod timeout;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use chrono::{DateTime, TimeZone, Utc};
use recops_core::{FixedClock, Home};
use recops_scheduler::{AlertSink, Scheduler, SchedulerAlert, SchedulerOptions};
use recops_tracking::{PipelineRun, PipelineTracker};
use serde_json::{Value, json};

/// Records the alerts it is given.
#[derive(Debug, Default)]
pub(crate) struct RecordingSink {
    pub(crate) alerts: Mutex<Vec<SchedulerAlert>>,
}

impl AlertSink for RecordingSink {
    fn send(&self, alert: &SchedulerAlert) -> bool {
        self.alerts.lock().unwrap().push(alert.clone());
        true
    }
}

/// A temporary home with a folder of job scripts and a fixed clock.
pub(crate) struct Fixture {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) home: Home,
    pub(crate) bins: PathBuf,
    pub(crate) clock: FixedClock,
    pub(crate) alerts: Arc<RecordingSink>,
}

/// 2025-01-15 `h:m:s` in Ho Chi Minh City (UTC+7).
pub(crate) fn hcm(day: u32, h: u32, m: u32, s: u32) -> DateTime<Utc> {
    chrono_tz::Asia::Ho_Chi_Minh
        .with_ymd_and_hms(2025, 1, day, h, m, s)
        .unwrap()
        .with_timezone(&Utc)
}

impl Fixture {
    pub(crate) fn new(now: DateTime<Utc>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::new(dir.path().join("home"));
        let bins = dir.path().join("bin");
        std::fs::create_dir_all(&bins).unwrap();
        std::fs::create_dir_all(home.root()).unwrap();
        Fixture {
            dir,
            home,
            bins,
            clock: FixedClock::new(now),
            alerts: Arc::new(RecordingSink::default()),
        }
    }

    /// A scratch folder for the scripts' marker files.
    pub(crate) fn work(&self) -> PathBuf {
        let p = self.dir.path().join("work");
        std::fs::create_dir_all(&p).unwrap();
        p
    }

    /// Writes an executable sh script `name` into the binary folder.
    pub(crate) fn script(&self, name: &str, body: &str) -> PathBuf {
        let p = self.bins.join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    /// Writes `config/scheduler_config.json` (Ho Chi Minh time, 1 s kill grace unless
    /// `extra` says otherwise) with `jobs` as (id, cron, timeout minutes).
    pub(crate) fn config(&self, jobs: &[(&str, &str, f64)], extra: Value) -> PathBuf {
        let mut j = serde_json::Map::new();
        for (name, cron, timeout) in jobs {
            j.insert(
                (*name).to_owned(),
                json!({"enabled": true, "cron": cron, "timeout_minutes": timeout}),
            );
        }
        let mut v = json!({"timezone": "Asia/Ho_Chi_Minh", "jobs": j, "kill_grace_seconds": 1});
        if let (Some(obj), Some(extra)) = (v.as_object_mut(), extra.as_object()) {
            for (k, val) in extra {
                obj.insert(k.clone(), val.clone());
            }
        }
        self.write_config(&serde_json::to_string_pretty(&v).unwrap())
    }

    pub(crate) fn write_config(&self, text: &str) -> PathBuf {
        let path = self.home.scheduler_config();
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        path
    }

    pub(crate) fn options(&self) -> SchedulerOptions {
        let mut o = SchedulerOptions::new(&self.bins);
        o.clock = self.clock.shared();
        o.alerts = self.alerts.clone();
        o.poll_interval = StdDuration::from_millis(10);
        o
    }

    pub(crate) fn scheduler(&self) -> Scheduler {
        Scheduler::open(&self.home, self.options()).unwrap()
    }

    pub(crate) fn runs(&self, job: &str) -> Vec<PipelineRun> {
        let tracker = PipelineTracker::open(&self.home).unwrap();
        let mut runs = tracker
            .get_recent_runs(Some(&format!("scheduler.{job}")), 1000, None)
            .unwrap();
        runs.reverse();
        runs
    }

    /// The scheduler log, rotated parts (oldest first) included: a new scheduler's log
    /// file rotates on its first line when the fixed clock's day differs from the
    /// file's modification day.
    pub(crate) fn log(&self) -> String {
        let path = self.home.scheduler_log();
        let mut parts = recops_core::rotated_files(&path);
        parts.reverse();
        parts.push(path);
        parts
            .iter()
            .map(|p| std::fs::read_to_string(p).unwrap_or_default())
            .collect()
    }

    pub(crate) fn job_log(&self, job: &str) -> String {
        std::fs::read_to_string(self.home.job_log(job).unwrap()).unwrap_or_default()
    }
}

/// Ticks (with short real pauses, the jobs being real processes) until `cond` holds;
/// fails after 15 s.
pub(crate) fn tick_until(s: &mut Scheduler, what: &str, cond: impl Fn(&Scheduler) -> bool) {
    for _ in 0..1500 {
        s.tick().unwrap();
        if cond(s) {
            return;
        }
        std::thread::sleep(StdDuration::from_millis(10));
    }
    panic!("timed out waiting for: {what}");
}

/// Waits (real time, up to 15 s) until `path` exists.
pub(crate) fn wait_for_file(path: &Path) {
    for _ in 0..1500 {
        if path.exists() {
            return;
        }
        std::thread::sleep(StdDuration::from_millis(10));
    }
    panic!("timed out waiting for {}", path.display());
}

/// True while `pid` exists and is not a zombie.
pub(crate) fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let after = &stat[stat.rfind(')').unwrap() + 2..];
            !after.starts_with('Z') && !after.starts_with('X')
        }
        Err(_) => false,
    }
}

pub(crate) fn read_pid(path: &Path) -> u32 {
    wait_for_file(path);
    for _ in 0..500 {
        if let Ok(pid) = std::fs::read_to_string(path).unwrap().trim().parse() {
            return pid;
        }
        std::thread::sleep(StdDuration::from_millis(10));
    }
    panic!("no pid in {}", path.display());
}

/// Lines of the scheduler log, without their timestamp: `LEVEL | message`.
pub(crate) fn messages(log: &str) -> Vec<String> {
    log.lines()
        .map(|l| {
            assert!(
                l.len() > 22 && &l[19..22] == " | ",
                "not in the spec's line format: {l}"
            );
            chrono::NaiveDateTime::parse_from_str(&l[..19], "%Y-%m-%d %H:%M:%S")
                .unwrap_or_else(|e| panic!("bad timestamp in {l}: {e}"));
            l[22..].to_owned()
        })
        .collect()
}
