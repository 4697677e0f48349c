//! `config/scheduler_config.json`: the time zone and the jobs.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use chrono::Duration;
use chrono_tz::Tz;
use recops_core::{ConfigFormat, EnvSource, Home, ProcessEnv, Validate, parse_config};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::schedule::CronSchedule;

/// The shipped `config/scheduler_config.json` (the spec's six jobs), used when the
/// home has none.
pub const DEFAULT_SCHEDULER_CONFIG: &str = include_str!("../../../config/scheduler_config.json");

fn default_true() -> bool {
    true
}
fn default_kill_grace_seconds() -> u64 {
    30
}
fn default_shutdown_grace_seconds() -> u64 {
    120
}

/// `config/scheduler_config.json`, the spec's format plus optional keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchedulerConfig {
    /// IANA time zone the cron expressions are read in (spec: `Asia/Ho_Chi_Minh`).
    pub timezone: String,
    /// The jobs by id (`data_refresh`, `health_check`, ...); ids are lowercase letters,
    /// digits and `_`.
    pub jobs: BTreeMap<String, JobConfig>,
    /// Seconds between SIGTERM and SIGKILL when a job is stopped (timeout, shutdown);
    /// default 30.
    #[serde(default = "default_kill_grace_seconds")]
    pub kill_grace_seconds: u64,
    /// Seconds the scheduler waits for running jobs after SIGINT/SIGTERM before it stops
    /// them; default 120.
    #[serde(default = "default_shutdown_grace_seconds")]
    pub shutdown_grace_seconds: u64,
    /// Leader election between schedulers of several hosts sharing one PostgreSQL
    /// (`storage.url`); ignored with the embedded SQLite store (one host).
    #[serde(default, skip_serializing_if = "FailoverConfig::is_default")]
    pub failover: FailoverConfig,
}

fn default_lease_seconds() -> f64 {
    30.0
}
fn default_renew_interval_seconds() -> f64 {
    10.0
}

/// `failover` of `config/scheduler_config.json`: the leader lease.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailoverConfig {
    /// Seconds a leader's lease lasts without renewal; a follower takes over at most
    /// this long (plus one renew interval) after the leader died. Default 30, at least 1.
    #[serde(default = "default_lease_seconds")]
    pub lease_seconds: f64,
    /// Seconds between renewals by the leader, and between takeover attempts by a
    /// follower. Default 10; at most half of `lease_seconds`.
    #[serde(default = "default_renew_interval_seconds")]
    pub renew_interval_seconds: f64,
}

impl Default for FailoverConfig {
    fn default() -> Self {
        FailoverConfig {
            lease_seconds: default_lease_seconds(),
            renew_interval_seconds: default_renew_interval_seconds(),
        }
    }
}

impl FailoverConfig {
    fn is_default(&self) -> bool {
        *self == FailoverConfig::default()
    }

    fn problems(&self) -> Vec<(String, String)> {
        let mut p = Vec::new();
        let lease = self.lease_seconds;
        if !(lease.is_finite() && (1.0..=86_400.0).contains(&lease)) {
            p.push((
                "failover.lease_seconds".to_owned(),
                format!("expected seconds from 1 to 86400, got {lease}"),
            ));
        }
        let renew = self.renew_interval_seconds;
        if !(renew.is_finite() && renew > 0.0 && renew <= lease / 2.0) {
            p.push((
                "failover.renew_interval_seconds".to_owned(),
                format!(
                    "expected seconds > 0 and at most half of failover.lease_seconds ({}), got {renew}",
                    lease / 2.0
                ),
            ));
        }
        p
    }
}

/// One job of `config/scheduler_config.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobConfig {
    /// Whether the scheduler runs it (default true); `--run-now` runs it either way.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// 5-field cron expression (`minute hour day-of-month month day-of-week`) in the
    /// configured time zone, e.g. `"0 2 * * *"`.
    pub cron: String,
    /// Minutes a run may take before it is stopped (SIGTERM to its process group, then
    /// SIGKILL after `kill_grace_seconds`) and recorded as failed with reason `timeout`.
    /// Fractions are allowed.
    pub timeout_minutes: f64,
    /// The program to run. A bare name (`data-refresh`) is looked up next to the
    /// scheduler executable; a path with `/` is used as is (relative to the home).
    /// Default: the job id with `_` replaced by `-`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binary: Option<String>,
    /// Extra command-line arguments (default none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Minutes after its time a missed fire is still run (as `catch-up`) when the
    /// scheduler starts late; default half the job's period, at most 6 hours. 0
    /// disables catch-up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catch_up_grace_minutes: Option<f64>,
    /// Exit codes that mean "the job ran" (default `[0]`). `health-check` exits 1 when it
    /// *finds* an unhealthy system: listing 1 here records that run as a success (the
    /// finding is alerted by the job itself), so an outage does not also show as a
    /// failing pipeline.
    #[serde(default = "default_ok_exit_codes")]
    pub ok_exit_codes: Vec<i32>,
}

fn default_ok_exit_codes() -> Vec<i32> {
    vec![0]
}

impl JobConfig {
    /// The configured binary, or the default name for `job`.
    pub fn binary_name(&self, job: &str) -> String {
        self.binary.clone().unwrap_or_else(|| job.replace('_', "-"))
    }
}

impl Validate for SchedulerConfig {
    fn problems(&self) -> Vec<(String, String)> {
        let mut p = Vec::new();
        let tz = match self.timezone.parse::<Tz>() {
            Ok(tz) => Some(tz),
            Err(_) => {
                p.push((
                    "timezone".to_owned(),
                    format!(
                        "unknown time zone {:?}; expected an IANA name such as \
                         Asia/Ho_Chi_Minh or Europe/Berlin",
                        self.timezone
                    ),
                ));
                None
            }
        };
        if self.jobs.is_empty() {
            p.push(("jobs".to_owned(), "expected at least one job".to_owned()));
        }
        p.extend(self.failover.problems());
        for (name, job) in &self.jobs {
            let key = |field: &str| format!("jobs.{name}.{field}");
            if job.ok_exit_codes.iter().any(|c| !(0..=255).contains(c)) {
                p.push((key("ok_exit_codes"), "exit codes are 0 to 255".to_owned()));
            }
            if recops_core::validate_name("job name", name).is_err() {
                p.push((
                    format!("jobs.{name}"),
                    "job ids may only contain lowercase letters, digits and '_'".to_owned(),
                ));
            }
            if let Err(e) = CronSchedule::parse(&job.cron, tz.unwrap_or(Tz::UTC)) {
                p.push((key("cron"), e));
            }
            if !(job.timeout_minutes.is_finite() && job.timeout_minutes > 0.0) {
                p.push((
                    key("timeout_minutes"),
                    format!(
                        "expected a number of minutes > 0, got {}",
                        job.timeout_minutes
                    ),
                ));
            }
            if let Some(g) = job.catch_up_grace_minutes
                && !(g.is_finite() && g >= 0.0)
            {
                p.push((
                    key("catch_up_grace_minutes"),
                    format!("expected a number of minutes >= 0, got {g}"),
                ));
            }
            if let Some(b) = &job.binary
                && b.trim().is_empty()
            {
                p.push((
                    key("binary"),
                    "expected a program name or path, got an empty string".to_owned(),
                ));
            }
        }
        p
    }
}

/// A job ready to run: the config resolved against the home and the binary folder.
#[derive(Debug, Clone)]
pub struct JobSpec {
    /// The job id (`data_refresh`).
    pub name: String,
    /// Whether the scheduler fires it.
    pub enabled: bool,
    /// Its schedule in the configured time zone.
    pub schedule: CronSchedule,
    /// How long a run may take.
    pub timeout: Duration,
    /// The program (absolute, or relative to the home).
    pub binary: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
    /// The catch-up grace (`None`: half the period, at most 6 h).
    pub catch_up_grace: Option<Duration>,
    /// Exit codes recorded as success.
    pub ok_exit_codes: Vec<i32>,
}

impl JobSpec {
    /// The pipeline name of its runs in `pipeline_runs`: `scheduler.<job>`.
    pub fn pipeline_name(&self) -> String {
        format!("scheduler.{}", self.name)
    }
}

/// The scheduler config, validated, with every job resolved.
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    /// The file it came from (or `<built-in default for …>`).
    pub file: PathBuf,
    /// The parsed config.
    pub config: SchedulerConfig,
    /// The configured time zone.
    pub timezone: Tz,
    /// The jobs, by id order.
    pub jobs: Vec<JobSpec>,
    /// Seconds between SIGTERM and SIGKILL.
    pub kill_grace: Duration,
    /// How long shutdown waits for running jobs.
    pub shutdown_grace: Duration,
    /// How long a leader lease lasts without renewal (`failover.lease_seconds`).
    pub lease: Duration,
    /// How often the lease is renewed or a takeover tried
    /// (`failover.renew_interval_seconds`).
    pub renew_interval: Duration,
    /// (key, reason) for each enabled job whose binary is missing or not executable.
    binary_problems: Vec<(String, String)>,
}

impl LoadedConfig {
    /// Loads `config/scheduler_config.json` of `home` (or the built-in default) with
    /// `${VAR}` substitution from the process environment and validates it. Bare
    /// binary names are looked up in `bin_dir`; whether they exist is checked by
    /// [`check_binaries`](Self::check_binaries).
    pub fn load(home: &Home, bin_dir: &Path) -> Result<Self> {
        Self::load_with_env(home, bin_dir, &ProcessEnv)
    }

    /// [`load`](Self::load) with an explicit environment.
    pub fn load_with_env(home: &Home, bin_dir: &Path, env: &dyn EnvSource) -> Result<Self> {
        let path = home.scheduler_config();
        let (text, file) = match std::fs::read_to_string(&path) {
            Ok(text) => (text, path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (
                DEFAULT_SCHEDULER_CONFIG.to_owned(),
                PathBuf::from(format!("<built-in default for {}>", path.display())),
            ),
            Err(e) => {
                return Err(recops_core::Error::io("cannot read config", &path, e).into());
            }
        };
        Self::from_text(&text, &file, home, bin_dir, env)
    }

    /// Parses and resolves config `text` read from `file` (named in errors).
    pub fn from_text(
        text: &str,
        file: &Path,
        home: &Home,
        bin_dir: &Path,
        env: &dyn EnvSource,
    ) -> Result<Self> {
        let config: SchedulerConfig = parse_config(text, file, ConfigFormat::Json, env)?;
        let config_err = |key: String, message: String| {
            Error::Core(recops_core::Error::Config {
                file: file.to_path_buf(),
                key: Some(key),
                message,
            })
        };
        let timezone: Tz = config
            .timezone
            .parse()
            .map_err(|_| config_err("timezone".into(), "unknown time zone".into()))?;
        let mut jobs = Vec::new();
        let mut missing = Vec::new();
        for (name, job) in &config.jobs {
            let schedule = CronSchedule::parse(&job.cron, timezone)
                .map_err(|e| config_err(format!("jobs.{name}.cron"), e))?;
            let binary = resolve_binary(&job.binary_name(name), home, bin_dir);
            if job.enabled
                && let Err(reason) = check_executable(&binary)
            {
                missing.push((format!("jobs.{name}.binary"), reason));
            }
            jobs.push(JobSpec {
                name: name.clone(),
                enabled: job.enabled,
                schedule,
                timeout: minutes(job.timeout_minutes),
                binary,
                args: job.args.clone(),
                catch_up_grace: job.catch_up_grace_minutes.map(minutes),
                ok_exit_codes: job.ok_exit_codes.clone(),
            });
        }
        Ok(LoadedConfig {
            file: file.to_path_buf(),
            kill_grace: Duration::seconds(config.kill_grace_seconds.min(86_400) as i64),
            shutdown_grace: Duration::seconds(config.shutdown_grace_seconds.min(86_400) as i64),
            lease: Duration::milliseconds((config.failover.lease_seconds * 1000.0) as i64),
            renew_interval: Duration::milliseconds(
                (config.failover.renew_interval_seconds * 1000.0) as i64,
            ),
            config,
            timezone,
            jobs,
            binary_problems: missing,
        })
    }

    /// Fails, naming the file, each job and the reason, when an enabled job's binary
    /// does not exist or is not executable.
    pub fn check_binaries(&self) -> Result<()> {
        let err = |key: Option<String>, message: String| {
            Err(Error::Core(recops_core::Error::Config {
                file: self.file.clone(),
                key,
                message,
            }))
        };
        match self.binary_problems.as_slice() {
            [] => Ok(()),
            [(key, reason)] => err(Some(key.clone()), reason.clone()),
            many => err(
                None,
                format!(
                    "{} problems: {}",
                    many.len(),
                    many.iter()
                        .map(|(k, m)| format!("`{k}`: {m}"))
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
            ),
        }
    }

    /// The problem with the binary of `job`, if any (enabled jobs only).
    pub fn binary_problem(&self, job: &str) -> Option<&str> {
        let key = format!("jobs.{job}.binary");
        self.binary_problems
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, m)| m.as_str())
    }

    /// The job with id `name`.
    pub fn job(&self, name: &str) -> Result<&JobSpec> {
        self.jobs
            .iter()
            .find(|j| j.name == name)
            .ok_or_else(|| Error::UnknownJob {
                job: name.to_owned(),
                file: self.file.clone(),
                known: self
                    .jobs
                    .iter()
                    .map(|j| j.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }
}

fn minutes(m: f64) -> Duration {
    Duration::milliseconds((m * 60_000.0).round().min(i64::MAX as f64 / 2.0) as i64)
}

/// Where a job's `binary` points: bare names in `bin_dir`, other relative paths in the
/// home.
pub fn resolve_binary(binary: &str, home: &Home, bin_dir: &Path) -> PathBuf {
    let p = Path::new(binary);
    if p.is_absolute() {
        p.to_path_buf()
    } else if binary.contains('/') {
        home.root().join(p)
    } else {
        bin_dir.join(p)
    }
}

fn check_executable(path: &Path) -> Result<(), String> {
    match std::fs::metadata(path) {
        Ok(m) if !m.is_file() => Err(format!("job binary {} is not a file", path.display())),
        Ok(m) if m.permissions().mode() & 0o111 == 0 => Err(format!(
            "job binary {} is not executable (chmod +x it)",
            path.display()
        )),
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(format!(
            "job binary {} does not exist (set `binary` to the program's path, or pass \
             --bin-dir)",
            path.display()
        )),
        Err(e) => Err(format!("job binary {}: {e}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn bin_dir_with(names: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for n in names {
            let p = dir.path().join(n);
            std::fs::write(&p, "#!/bin/sh\nexit 0\n").unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        dir
    }

    const SIX: [&str; 7] = [
        "recops",
        "data-refresh",
        "bert-embeddings",
        "drift-detection",
        "model-training",
        "model-deployment",
        "health-check",
    ];

    #[test]
    fn shipped_config_is_the_spec_and_parses() {
        let cfg: SchedulerConfig = parse_config(
            DEFAULT_SCHEDULER_CONFIG,
            Path::new("config/scheduler_config.json"),
            ConfigFormat::Json,
            &HashMap::new(),
        )
        .unwrap();
        assert_eq!(cfg.timezone, "Asia/Ho_Chi_Minh");
        let expect = [
            ("data_refresh", "0 2 * * *", 30.0),
            ("bert_embeddings", "0 3 * * 2", 60.0),
            ("drift_detection", "0 9 * * 1", 15.0),
            ("model_training", "0 3 * * 0", 120.0),
            ("model_deployment", "0 5 * * *", 10.0),
            ("health_check", "0 * * * *", 5.0),
        ];
        assert_eq!(cfg.jobs.len(), 7);
        let m = &cfg.jobs["maintenance"];
        assert_eq!(
            (m.cron.as_str(), m.binary_name("maintenance").as_str()),
            ("30 4 * * *", "recops")
        );
        assert_eq!(m.args, ["maintenance"]);
        for (name, cron, timeout) in expect {
            let j = &cfg.jobs[name];
            assert!(j.enabled, "{name}");
            assert_eq!(j.cron, cron, "{name}");
            assert_eq!(j.timeout_minutes, timeout, "{name}");
            assert_eq!(j.binary_name(name), name.replace('_', "-"));
            let ok: &[i32] = if name == "health_check" {
                &[0, 1]
            } else {
                &[0]
            };
            assert_eq!(j.ok_exit_codes, ok, "{name}");
        }
        assert_eq!(cfg.kill_grace_seconds, 30);
        assert_eq!(cfg.shutdown_grace_seconds, 120);

        let home_dir = tempfile::tempdir().unwrap();
        let bins = bin_dir_with(&SIX);
        let loaded =
            LoadedConfig::load_with_env(&Home::new(home_dir.path()), bins.path(), &HashMap::new())
                .unwrap();
        loaded.check_binaries().unwrap();
        let no_bins = tempfile::tempdir().unwrap();
        let e = LoadedConfig::load_with_env(
            &Home::new(home_dir.path()),
            no_bins.path(),
            &HashMap::new(),
        )
        .unwrap()
        .check_binaries()
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("7 problems") && e.contains("data-refresh does not exist"),
            "{e}"
        );
        assert_eq!(loaded.timezone, chrono_tz::Asia::Ho_Chi_Minh);
        let dr = loaded.job("data_refresh").unwrap();
        assert_eq!(dr.binary, bins.path().join("data-refresh"));
        assert_eq!(dr.timeout, Duration::minutes(30));
        assert_eq!(dr.pipeline_name(), "scheduler.data_refresh");
        assert!(loaded.file.to_string_lossy().contains("built-in default"));
    }

    fn load_text(text: &str, bins: &Path) -> Result<LoadedConfig> {
        let home = tempfile::tempdir().unwrap();
        let cfg = LoadedConfig::from_text(
            text,
            Path::new("config/scheduler_config.json"),
            &Home::new(home.path()),
            bins,
            &HashMap::new(),
        )?;
        cfg.check_binaries()?;
        Ok(cfg)
    }

    #[test]
    fn every_problem_names_the_file_job_and_reason() {
        let bins = bin_dir_with(&["a"]);
        let text = r#"{
          "timezone": "Asia/Saigon_City",
          "jobs": {
            "data_refresh": {"enabled": true, "cron": "0 2 * *", "timeout_minutes": 30},
            "health_check": {"enabled": true, "cron": "0 * * * *", "timeout_minutes": 0}
          }
        }"#;
        let e = load_text(text, bins.path()).unwrap_err().to_string();
        assert!(e.contains("config/scheduler_config.json"), "{e}");
        assert!(e.contains("3 problems"), "{e}");
        assert!(
            e.contains("`timezone`: unknown time zone \"Asia/Saigon_City\""),
            "{e}"
        );
        assert!(e.contains("`jobs.data_refresh.cron`"), "{e}");
        assert!(e.contains("4 fields; expected 5"), "{e}");
        assert!(e.contains("`jobs.health_check.timeout_minutes`"), "{e}");
    }

    #[test]
    fn unknown_keys_are_rejected_with_their_path() {
        let bins = bin_dir_with(&["data-refresh"]);
        let text = r#"{"timezone": "UTC", "jobs": {"data_refresh":
            {"enabled": true, "cron": "0 2 * * *", "timeout_minutes": 30, "timeout_minuts": 5}}}"#;
        let e = load_text(text, bins.path()).unwrap_err().to_string();
        assert!(
            e.contains("at key `jobs.data_refresh.timeout_minuts`"),
            "{e}"
        );
        assert!(e.contains("unknown field `timeout_minuts`"), "{e}");
        let text = r#"{"timezone": "UTC", "jobz": {}}"#;
        let e = load_text(text, bins.path()).unwrap_err().to_string();
        assert!(e.contains("unknown field `jobz`"), "{e}");
    }

    #[test]
    fn failover_keys_default_parse_and_are_validated_with_their_key() {
        let bins = bin_dir_with(&["data-refresh"]);
        let job = r#""jobs": {"data_refresh": {"cron": "0 2 * * *", "timeout_minutes": 30}}"#;
        let cfg = load_text(&format!(r#"{{"timezone": "UTC", {job}}}"#), bins.path()).unwrap();
        assert_eq!(
            (cfg.lease, cfg.renew_interval),
            (Duration::seconds(30), Duration::seconds(10))
        );
        let text = format!(
            r#"{{"timezone": "UTC", {job}, "failover": {{"lease_seconds": 2, "renew_interval_seconds": 0.5}}}}"#
        );
        let cfg = load_text(&text, bins.path()).unwrap();
        assert_eq!(
            (cfg.lease, cfg.renew_interval),
            (Duration::seconds(2), Duration::milliseconds(500))
        );
        let text = format!(
            r#"{{"timezone": "UTC", {job}, "failover": {{"lease_seconds": 0.5, "renew_interval_seconds": 1}}}}"#
        );
        let e = load_text(&text, bins.path()).unwrap_err().to_string();
        assert!(e.contains("`failover.lease_seconds`"), "{e}");
        assert!(e.contains("`failover.renew_interval_seconds`"), "{e}");
        let text = format!(r#"{{"timezone": "UTC", {job}, "failover": {{"lease_secs": 5}}}}"#);
        let e = load_text(&text, bins.path()).unwrap_err().to_string();
        assert!(e.contains("unknown field `lease_secs`"), "{e}");
    }

    #[test]
    fn missing_or_non_executable_binaries_are_rejected_for_enabled_jobs_only() {
        let bins = bin_dir_with(&["data-refresh"]);
        let p = bins.path().join("not-exec");
        std::fs::write(&p, "x").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let text = r#"{"timezone": "UTC", "jobs": {
            "data_refresh": {"enabled": true, "cron": "0 2 * * *", "timeout_minutes": 30},
            "health_check": {"enabled": true, "cron": "0 * * * *", "timeout_minutes": 5},
            "odd": {"enabled": true, "cron": "0 * * * *", "timeout_minutes": 5, "binary": "not-exec"},
            "old": {"enabled": false, "cron": "0 * * * *", "timeout_minutes": 5}
        }}"#;
        let e = load_text(text, bins.path()).unwrap_err().to_string();
        assert!(e.contains("2 problems"), "{e}");
        assert!(e.contains("`jobs.health_check.binary`"), "{e}");
        assert!(e.contains("health-check does not exist"), "{e}");
        assert!(
            e.contains("`jobs.odd.binary`") && e.contains("not executable"),
            "{e}"
        );
        assert!(!e.contains("jobs.old"), "{e}");
        // Loading alone (for --list) succeeds and says which binary is missing.
        let home = tempfile::tempdir().unwrap();
        let cfg = LoadedConfig::from_text(
            text,
            Path::new("c.json"),
            &Home::new(home.path()),
            bins.path(),
            &HashMap::new(),
        )
        .unwrap();
        assert!(cfg.binary_problem("health_check").is_some());
        assert!(cfg.binary_problem("data_refresh").is_none());
    }

    #[test]
    fn binaries_resolve_by_name_path_or_home_relative_path() {
        let home = Home::new("/srv/recops");
        let bins = Path::new("/opt/recops/bin");
        assert_eq!(
            resolve_binary("data-refresh", &home, bins),
            PathBuf::from("/opt/recops/bin/data-refresh")
        );
        assert_eq!(
            resolve_binary("/usr/bin/true", &home, bins),
            PathBuf::from("/usr/bin/true")
        );
        assert_eq!(
            resolve_binary("scripts/job.sh", &home, bins),
            PathBuf::from("/srv/recops/scripts/job.sh")
        );
    }

    #[test]
    fn unknown_job_lists_the_known_ones() {
        let bins = bin_dir_with(&["a-job"]);
        let text = r#"{"timezone": "UTC", "jobs": {
            "a_job": {"cron": "0 2 * * *", "timeout_minutes": 1}}}"#;
        let cfg = load_text(text, bins.path()).unwrap();
        let e = cfg.job("nope").unwrap_err().to_string();
        assert!(
            e.contains("unknown job \"nope\"") && e.contains("a_job"),
            "{e}"
        );
    }
}
