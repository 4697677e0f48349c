//! `logs/deployment_history.json` in the spec's format.

use std::path::Path;

use recops_core::ModelId;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The three checks of the spec's `verify_deployment`, plus what went wrong.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verification {
    /// `GET /health` answered 200.
    pub health_check: bool,
    /// The service reports the expected model id.
    pub model_id_match: bool,
    /// Every test user got a non-empty answer from the expected model (known users a
    /// personalised one, the unknown user a popularity fallback).
    pub recommendations_work: bool,
    /// Why a check failed, one line per problem.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

impl Verification {
    /// All three checks passed.
    pub fn success(&self) -> bool {
        self.health_check && self.model_id_match && self.recommendations_work
    }
}

/// How a deployment ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeploymentStatus {
    /// The model is serving and verified.
    Success,
    /// The deployment did not take (reload refused, service down, or verification
    /// failed).
    Failed,
}

/// Outcome of a rollback.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RollbackStatus {
    /// The previous model serves again and passed verification.
    Success,
    /// The rollback failed; the service state must be checked by a person.
    Failed,
}

/// What a record is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum DeploymentAction {
    /// A deployment of a new model.
    #[default]
    Deploy,
    /// An operator-requested return to the previous model (`--rollback`).
    Rollback,
}

/// One entry of `deployments`: the spec's fields plus `action`, `reason`,
/// `rollback_verification` and `duration_seconds`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeploymentRecord {
    /// RFC 3339 time the deployment started.
    pub timestamp: String,
    /// The model deployed.
    pub model_id: ModelId,
    /// The model serving before.
    pub previous_model_id: Option<ModelId>,
    /// `success` or `failed`.
    pub status: DeploymentStatus,
    /// Verification of the new model (absent when not verified).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification: Option<Verification>,
    /// Whether an automatic rollback ran.
    pub rollback_triggered: bool,
    /// Outcome of that rollback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_status: Option<RollbackStatus>,
    /// Verification of the model rolled back to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_verification: Option<Verification>,
    /// Deploy or operator rollback.
    #[serde(default)]
    pub action: DeploymentAction,
    /// Why it failed, in one line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Wall time of the whole deployment.
    #[serde(default)]
    pub duration_seconds: f64,
}

/// The history file: `{"deployments": [...]}`, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeploymentHistory {
    /// Every deployment, oldest first.
    pub deployments: Vec<DeploymentRecord>,
}

impl DeploymentHistory {
    /// Reads the history at `path`; a missing file is an empty history. A file that is
    /// not the spec's format is an error and is never overwritten.
    pub fn load(path: &Path) -> Result<Self> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| Error::CorruptHistory {
                path: path.to_path_buf(),
                message: e.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(recops_core::Error::io("cannot read", path, e).into()),
        }
    }

    /// Appends `record` to the history at `path` (lock, read, append, atomic
    /// replace): concurrent writers in several processes are serialised by an
    /// exclusive lock on `<path>.lock`, so none of their records is lost.
    pub fn append(path: &Path, record: DeploymentRecord) -> Result<()> {
        Self::append_all(path, std::slice::from_ref(&record))
    }

    /// Appends `records` to the history file `path` under its lock, atomically.
    pub fn append_all(path: &Path, records: &[DeploymentRecord]) -> Result<()> {
        let _lock = lock(path)?;
        let mut history = Self::load(path)?;
        history.deployments.extend_from_slice(records);
        Self::write(path, &history)
    }

    /// Moves records older than `cutoff` (by `timestamp`) from the history at `path` to
    /// the history file `archive` (appended, same format), keeping at least the newest
    /// `keep_newest` records. Both writes are atomic, under the history lock. Returns
    /// how many records moved.
    pub fn archive_before(
        path: &Path,
        cutoff: chrono::DateTime<chrono::Utc>,
        keep_newest: usize,
        archive: &Path,
    ) -> Result<usize> {
        let _lock = lock(path)?;
        let mut history = Self::load(path)?;
        let protected_from = history.deployments.len().saturating_sub(keep_newest);
        let (mut old, mut keep) = (Vec::new(), Vec::new());
        for (i, d) in history.deployments.drain(..).enumerate() {
            let t = recops_core::parse_timestamp(&d.timestamp);
            if i < protected_from && t.is_some_and(|t| t < cutoff) {
                old.push(d);
            } else {
                keep.push(d);
            }
        }
        let moved = old.len();
        if moved == 0 {
            return Ok(0);
        }
        let mut archived = Self::load(archive)?;
        archived.deployments.extend(old);
        Self::write(archive, &archived)?;
        Self::write(path, &DeploymentHistory { deployments: keep })?;
        Ok(moved)
    }

    pub(crate) fn write(path: &Path, history: &DeploymentHistory) -> Result<()> {
        let text = serde_json::to_vec_pretty(history).map_err(|e| Error::CorruptHistory {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        recops_core::write_atomic(path, &text)?;
        Ok(())
    }

    /// Where `--rollback` goes from `current`: the model deployed successfully (by a
    /// deployment, not a rollback) before the newest successful deployment of
    /// `current`, skipping `current` itself and models `skip` refuses (archived,
    /// without files). Rolling back twice therefore walks further back in time and
    /// never returns to the model just rolled back from.
    pub fn rollback_target(
        &self,
        current: &str,
        skip: &dyn Fn(&ModelId) -> bool,
    ) -> Option<ModelId> {
        // The timeline of served models: each successful deployment's predecessor
        // (the model serving before the first recorded deployment counts), then it.
        let mut deployed: Vec<&ModelId> = Vec::new();
        for d in self.deployments.iter().filter(|d| {
            d.status == DeploymentStatus::Success && d.action == DeploymentAction::Deploy
        }) {
            if let Some(prev) = d.previous_model_id.as_ref()
                && deployed.last() != Some(&prev)
            {
                deployed.push(prev);
            }
            deployed.push(&d.model_id);
        }
        let end = deployed.iter().rposition(|m| m.as_str() == current)?;
        deployed[..end]
            .iter()
            .rev()
            .find(|m| m.as_str() != current && !skip(m))
            .map(|m| (*m).clone())
    }

    /// The newest successful deployment, if any.
    pub fn last_success(&self) -> Option<&DeploymentRecord> {
        self.deployments
            .iter()
            .rev()
            .find(|d| d.status == DeploymentStatus::Success)
    }
}

/// An exclusive lock on `<path>.lock`, released when dropped (the file closes).
fn lock(path: &Path) -> Result<std::fs::File> {
    let mut lock_name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    lock_name.push(".lock");
    let lock_path = path.with_file_name(lock_name);
    recops_core::ensure_parent(&lock_path)?;
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| recops_core::Error::io("cannot open", &lock_path, e))?;
    lock.lock()
        .map_err(|e| recops_core::Error::io("cannot lock", &lock_path, e))?;
    Ok(lock)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spec_example_parses_and_round_trips() {
        let spec = r#"{
          "deployments": [
            {"timestamp": "2025-01-15T10:00:00", "model_id": "als_20250115_100000",
             "previous_model_id": "als_20250110_090000", "status": "success",
             "verification": {"health_check": true, "model_id_match": true, "recommendations_work": true},
             "rollback_triggered": false},
            {"timestamp": "2025-01-16T10:00:00", "model_id": "bpr_20250116_100000",
             "previous_model_id": "als_20250115_100000", "status": "failed",
             "verification": {"health_check": true, "model_id_match": true, "recommendations_work": false},
             "rollback_triggered": true, "rollback_status": "success"}
          ]
        }"#;
        let h: DeploymentHistory = serde_json::from_str(spec).unwrap();
        assert_eq!(h.deployments.len(), 2);
        assert_eq!(
            h.deployments[1].rollback_status,
            Some(RollbackStatus::Success)
        );
        assert_eq!(h.last_success().unwrap().model_id, "als_20250115_100000");
        let again: DeploymentHistory =
            serde_json::from_str(&serde_json::to_string(&h).unwrap()).unwrap();
        assert_eq!(again, h);
    }

    fn rec(model_id: &str, action: DeploymentAction, status: DeploymentStatus) -> DeploymentRecord {
        DeploymentRecord {
            timestamp: "t".into(),
            model_id: model_id.parse().unwrap(),
            previous_model_id: None,
            status,
            verification: None,
            rollback_triggered: false,
            rollback_status: None,
            rollback_verification: None,
            action,
            reason: None,
            duration_seconds: 0.0,
        }
    }

    #[test]
    fn rollback_walks_back_and_never_back_and_forth() {
        use DeploymentAction::{Deploy, Rollback};
        use DeploymentStatus::{Failed, Success};
        let mut h = DeploymentHistory::default();
        for id in ["a", "b", "c"] {
            h.deployments.push(rec(id, Deploy, Success));
        }
        h.deployments.push(rec("d", Deploy, Failed));
        let none = |_: &ModelId| false;
        assert_eq!(h.rollback_target("c", &none).as_deref(), Some("b"));
        h.deployments.push(rec("b", Rollback, Success));
        // The second rollback goes further back, not to c.
        assert_eq!(h.rollback_target("b", &none).as_deref(), Some("a"));
        h.deployments.push(rec("a", Rollback, Success));
        assert_eq!(h.rollback_target("a", &none), None);
        // Refused models are skipped.
        assert_eq!(h.rollback_target("c", &|m| m == "b").as_deref(), Some("a"));
        assert_eq!(h.rollback_target("zzz", &none), None);
    }

    #[test]
    fn old_records_move_to_the_archive_keeping_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("deployment_history.json");
        let archive = dir.path().join("archive/deployment_history.2026.json");
        for (i, day) in ["2024-01-01", "2024-02-01", "2025-06-01", "2025-07-01"]
            .iter()
            .enumerate()
        {
            let mut r = rec(
                &format!("m{i}"),
                DeploymentAction::Deploy,
                DeploymentStatus::Success,
            );
            r.timestamp = format!("{day}T00:00:00+00:00");
            DeploymentHistory::append(&path, r).unwrap();
        }
        let cutoff = recops_core::parse_timestamp("2025-01-01T00:00:00+00:00").unwrap();
        // Keep at least the 3 newest: only m0 moves.
        assert_eq!(
            DeploymentHistory::archive_before(&path, cutoff, 3, &archive).unwrap(),
            1
        );
        assert_eq!(DeploymentHistory::load(&path).unwrap().deployments.len(), 3);
        assert_eq!(
            DeploymentHistory::archive_before(&path, cutoff, 1, &archive).unwrap(),
            1
        );
        let kept = DeploymentHistory::load(&path).unwrap();
        assert_eq!(kept.deployments[0].model_id, "m2");
        let archived = DeploymentHistory::load(&archive).unwrap();
        let ids: Vec<&str> = archived
            .deployments
            .iter()
            .map(|d| d.model_id.as_str())
            .collect();
        assert_eq!(ids, ["m0", "m1"]);
    }

    #[test]
    fn concurrent_appends_all_land() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("deployment_history.json");
        std::thread::scope(|s| {
            for t in 0..4 {
                let path = &path;
                s.spawn(move || {
                    for i in 0..10 {
                        let r = rec(
                            &format!("m{t}_{i}"),
                            DeploymentAction::Deploy,
                            DeploymentStatus::Success,
                        );
                        DeploymentHistory::append(path, r).unwrap();
                    }
                });
            }
        });
        assert_eq!(
            DeploymentHistory::load(&path).unwrap().deployments.len(),
            40
        );
    }

    #[test]
    fn a_corrupt_history_is_refused_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("deployment_history.json");
        std::fs::write(&path, b"{\"deployments\": [tr").unwrap();
        let record = DeploymentRecord {
            timestamp: "t".into(),
            model_id: "als_1".parse().unwrap(),
            previous_model_id: None,
            status: DeploymentStatus::Success,
            verification: None,
            rollback_triggered: false,
            rollback_status: None,
            rollback_verification: None,
            action: DeploymentAction::Deploy,
            reason: None,
            duration_seconds: 0.0,
        };
        let err = DeploymentHistory::append(&path, record.clone()).unwrap_err();
        assert!(err.to_string().contains("deployment_history.json"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), b"{\"deployments\": [tr");
        std::fs::remove_file(&path).unwrap();
        DeploymentHistory::append(&path, record.clone()).unwrap();
        DeploymentHistory::append(&path, record).unwrap();
        assert_eq!(DeploymentHistory::load(&path).unwrap().deployments.len(), 2);
    }
}
