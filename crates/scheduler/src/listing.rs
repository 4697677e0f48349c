//! `scheduler --list` and `scheduler --check-config`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use recops_core::Home;
use serde::Serialize;

use crate::config::LoadedConfig;
use crate::error::Result;
use crate::schedule::format_local;
use crate::state::StateStore;

/// One job in `scheduler --list`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobListing {
    /// The job id.
    pub job: String,
    /// Whether the scheduler fires it.
    pub enabled: bool,
    /// Its cron expression.
    pub cron: String,
    /// Its timeout.
    pub timeout_minutes: f64,
    /// The program it runs.
    pub binary: PathBuf,
    /// Why the program cannot run (missing, not executable), for enabled jobs.
    pub binary_problem: Option<String>,
    /// The next fires in the configured time zone (RFC 3339 with offset).
    pub next_fires: Vec<String>,
    /// The same, as `Tue 2025-01-21 03:00 +07`.
    pub next_fires_local: Vec<String>,
    /// End of the last successful run (RFC 3339), from the scheduler state.
    pub last_success: Option<String>,
    /// `success` or `failed`: the last run's status.
    pub last_status: Option<String>,
    /// True while an instance runs.
    pub running: bool,
}

/// The result of `scheduler --list`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Listing {
    /// The config file (or the built-in default).
    pub config_file: PathBuf,
    /// The configured time zone.
    pub timezone: String,
    /// The jobs, by id.
    pub jobs: Vec<JobListing>,
}

/// Lists the jobs of `home` with their next `n` fires after `now`, and what the state
/// database knows about their last runs (read only: nothing is created).
pub fn list_jobs(home: &Home, bin_dir: &Path, now: DateTime<Utc>, n: usize) -> Result<Listing> {
    let config = LoadedConfig::load(home, bin_dir)?;
    let states = match StateStore::open_existing(home)? {
        Some(store) => store.all()?,
        None => Vec::new(),
    };
    let tz = config.timezone;
    let jobs = config
        .jobs
        .iter()
        .map(|j| {
            let st = states.iter().find(|s| s.job == j.name);
            let fires = j.schedule.upcoming(now, n);
            JobListing {
                job: j.name.clone(),
                enabled: j.enabled,
                cron: j.schedule.expression().to_owned(),
                timeout_minutes: j.timeout.num_milliseconds() as f64 / 60_000.0,
                binary: j.binary.clone(),
                binary_problem: config.binary_problem(&j.name).map(str::to_owned),
                next_fires: fires.iter().map(|f| f.to_rfc3339()).collect(),
                next_fires_local: fires
                    .iter()
                    .map(|f| {
                        format!(
                            "{} {}",
                            f.format("%a"),
                            format_local(f.with_timezone(&Utc), tz)
                        )
                    })
                    .collect(),
                last_success: st
                    .and_then(|s| s.last_success)
                    .map(recops_core::format_timestamp),
                last_status: st.and_then(|s| s.last_status.clone()),
                running: st.is_some_and(|s| s.running.is_some()),
            }
        })
        .collect();
    Ok(Listing {
        config_file: config.file.clone(),
        timezone: tz.name().to_owned(),
        jobs,
    })
}

impl Listing {
    /// A table for people.
    pub fn to_table(&self) -> String {
        let mut out = format!(
            "Jobs of {} (times in {})\n",
            self.config_file.display(),
            self.timezone
        );
        let w = self
            .jobs
            .iter()
            .map(|j| j.job.len())
            .max()
            .unwrap_or(3)
            .max(3);
        let cw = self
            .jobs
            .iter()
            .map(|j| j.cron.len())
            .max()
            .unwrap_or(4)
            .max(4);
        let _ = writeln!(
            out,
            "{:<w$}  {:<7}  {:<cw$}  {:>7}  NEXT FIRES",
            "JOB", "ENABLED", "CRON", "TIMEOUT"
        );
        for j in &self.jobs {
            let timeout = format!("{}m", trim_float(j.timeout_minutes));
            let next = if j.enabled {
                j.next_fires_local.join(", ")
            } else {
                "- (disabled)".to_owned()
            };
            let _ = writeln!(
                out,
                "{:<w$}  {:<7}  {:<cw$}  {:>7}  {next}",
                j.job,
                if j.enabled { "yes" } else { "no" },
                j.cron,
                timeout
            );
            if let Some(p) = &j.binary_problem {
                let _ = writeln!(out, "{:<w$}  ! {p}", "");
            }
        }
        out
    }
}

fn trim_float(x: f64) -> String {
    if x.fract() == 0.0 {
        format!("{x:.0}")
    } else {
        format!("{x}")
    }
}

/// The result of `scheduler --check-config`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConfigCheck {
    /// The config file (or the built-in default).
    pub config_file: PathBuf,
    /// The configured time zone.
    pub timezone: String,
    /// Enabled jobs.
    pub enabled: Vec<String>,
    /// Disabled jobs (their binaries are not checked).
    pub disabled: Vec<String>,
}

impl ConfigCheck {
    /// One line for people: `config OK: <file> (time zone ...; enabled: ...)`.
    pub fn to_text(&self) -> String {
        format!(
            "config OK: {} (time zone {}; enabled: {}; disabled: {})\n",
            self.config_file.display(),
            self.timezone,
            if self.enabled.is_empty() {
                "none".to_owned()
            } else {
                self.enabled.join(", ")
            },
            if self.disabled.is_empty() {
                "none".to_owned()
            } else {
                self.disabled.join(", ")
            }
        )
    }
}

/// Loads and validates the scheduler config of `home` and checks every enabled job's
/// binary: the same checks the scheduler makes at start.
pub fn check_config(home: &Home, bin_dir: &Path) -> Result<ConfigCheck> {
    let config = LoadedConfig::load(home, bin_dir)?;
    config.check_binaries()?;
    let (enabled, disabled): (Vec<_>, Vec<_>) = config.jobs.iter().partition(|j| j.enabled);
    Ok(ConfigCheck {
        config_file: config.file.clone(),
        timezone: config.timezone.name().to_owned(),
        enabled: enabled.iter().map(|j| j.name.clone()).collect(),
        disabled: disabled.iter().map(|j| j.name.clone()).collect(),
    })
}
