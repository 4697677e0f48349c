//! The desired serving state and the model lifecycle: the `deployed` entry of
//! `registry.json`, verification failures, archiving with guards, and garbage
//! collection of archived models' files.
//!
//! `current_best` is the champion (what the scheduled deployment would deploy);
//! `deployed` is what the service must run. Every deployment, rollback and direct
//! reload writes `deployed` (atomically, with an audit line); the recommender starts
//! from it. `deployed.champion` remembers `current_best` at that decision, so the
//! scheduled deployment acts again only when a new champion appears: an operator's
//! choice sticks until then.

use std::fmt;

use recops_core::{ModelId, ModelType, format_timestamp};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::registry::{ModelEntry, ModelStatus, Registry};

/// Who changed the served model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeployedBy {
    /// The scheduled (unattended) deployment of `current_best`.
    Scheduled,
    /// An operator's `model-deployment --model-id`.
    Operator,
    /// `model-deployment --rollback`.
    Rollback,
    /// A direct `POST /reload_model`.
    Reload,
}

impl DeployedBy {
    /// The JSON spelling, also the audit operation (`deploy` for the first two).
    pub fn as_str(self) -> &'static str {
        match self {
            DeployedBy::Scheduled => "scheduled",
            DeployedBy::Operator => "operator",
            DeployedBy::Rollback => "rollback",
            DeployedBy::Reload => "reload",
        }
    }

    fn operation(self) -> &'static str {
        match self {
            DeployedBy::Scheduled | DeployedBy::Operator => "deploy",
            DeployedBy::Rollback => "rollback",
            DeployedBy::Reload => "reload",
        }
    }
}

impl fmt::Display for DeployedBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// The `deployed` entry of `registry.json`: the model the service must serve.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployedEntry {
    /// The model.
    pub model_id: ModelId,
    /// RFC 3339 time of the decision.
    pub deployed_at: String,
    /// Who made it.
    pub action: DeployedBy,
    /// `current_best` when the decision was made: the scheduled deployment deploys
    /// `current_best` only when it differs from this.
    pub champion: Option<ModelId>,
    /// Why (given by the caller).
    #[serde(default)]
    pub reason: String,
}

/// A failed verification of a model (on its [`ModelEntry`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerificationFailure {
    /// RFC 3339 time of the failed deployment.
    pub at: String,
    /// What failed.
    pub reason: String,
}

/// Key in a model entry's extra fields set when `gc` deleted its files.
pub const FILES_DELETED_AT: &str = "files_deleted_at";

/// One archived model whose files `gc` deletes (or would delete).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GcItem {
    /// The model.
    pub model_id: ModelId,
    /// `als` or `bpr`.
    pub model_type: ModelType,
    /// The folder relative to the home.
    pub path: String,
    /// Bytes of the folder.
    pub bytes: u64,
}

/// What [`Registry::gc`] did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GcReport {
    /// Nothing was deleted.
    pub dry_run: bool,
    /// Archived models kept per type.
    pub keep: usize,
    /// The folders deleted (or that would be).
    pub deleted: Vec<GcItem>,
    /// Bytes freed (or that would be).
    pub bytes: u64,
}

impl fmt::Display for GcReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = if self.dry_run {
            "would delete"
        } else {
            "deleted"
        };
        writeln!(
            f,
            "gc {verb} the files of {} archived model(s), {} bytes (keeping the {} newest archived per type)",
            self.deleted.len(),
            self.bytes,
            self.keep
        )?;
        for item in &self.deleted {
            writeln!(
                f,
                "  {:<28} {:<4} {:>12} B  {}",
                item.model_id, item.model_type, item.bytes, item.path
            )?;
        }
        Ok(())
    }
}

impl ModelEntry {
    /// True when `gc` deleted the model's files.
    pub fn files_deleted(&self) -> bool {
        self.extra.contains_key(FILES_DELETED_AT)
    }
}

impl Registry {
    /// The `deployed` entry, if any deployment was recorded.
    pub fn deployed(&self) -> Result<Option<DeployedEntry>> {
        Ok(self.load()?.deployed)
    }

    /// Records that the service now serves `model_id` (the model must be registered
    /// and active): sets `deployed` with the current `current_best` as the champion
    /// of this decision, clears any verification failure of the model, writes the
    /// registry atomically and appends an audit line (`deploy`, `rollback` or
    /// `reload`).
    pub fn record_deployment(
        &self,
        model_id: &ModelId,
        action: DeployedBy,
        reason: &str,
    ) -> Result<DeployedEntry> {
        let mut written = None;
        let now = format_timestamp(self.clock().now());
        self.update_with(action.operation(), reason, |reg| {
            let entry = reg
                .models
                .get_mut(model_id)
                .ok_or_else(|| Error::NotFound {
                    model_id: model_id.clone(),
                })?;
            if entry.status != ModelStatus::Active {
                return Err(Error::Archived {
                    model_id: model_id.clone(),
                });
            }
            entry.verification_failed = None;
            let deployed = DeployedEntry {
                model_id: model_id.clone(),
                deployed_at: now.clone(),
                action,
                champion: reg.current_best.clone(),
                reason: reason.to_owned(),
            };
            reg.deployed = Some(deployed.clone());
            written = Some(deployed);
            Ok(Some(model_id.clone()))
        })?;
        written.ok_or_else(|| Error::NotFound {
            model_id: model_id.clone(),
        })
    }

    /// Marks `model_id` as having failed verification: the scheduled deployment never
    /// deploys it again (an operator still can, by id).
    pub fn mark_verification_failed(&self, model_id: &ModelId, reason: &str) -> Result<()> {
        let now = format_timestamp(self.clock().now());
        self.update_with("verification_failed", reason, |reg| {
            let entry = reg
                .models
                .get_mut(model_id)
                .ok_or_else(|| Error::NotFound {
                    model_id: model_id.clone(),
                })?;
            entry.verification_failed = Some(VerificationFailure {
                at: now.clone(),
                reason: reason.to_owned(),
            });
            Ok(Some(model_id.clone()))
        })
    }

    /// Archives `model_id` for an operator: refuses the deployed model and the
    /// champion (`current_best`), which [`Registry::archive`] would replace silently.
    /// Archiving a model already archived changes nothing and writes no audit line
    /// (a command run again after a crash ends like one uninterrupted run).
    pub fn archive_unused(&self, model_id: &ModelId, reason: &str) -> Result<()> {
        if self
            .get(model_id)?
            .is_some_and(|m| m.status == ModelStatus::Archived)
        {
            return self.complete_audit();
        }
        self.update_with("archive", reason, |reg| {
            if reg.deployed.as_ref().map(|d| &d.model_id) == Some(model_id) {
                return Err(Error::InUse {
                    model_id: model_id.clone(),
                    role: "the deployed model",
                });
            }
            if reg.current_best.as_ref() == Some(model_id) {
                return Err(Error::InUse {
                    model_id: model_id.clone(),
                    role: "the champion (current_best)",
                });
            }
            let entry = reg
                .models
                .get_mut(model_id)
                .ok_or_else(|| Error::NotFound {
                    model_id: model_id.clone(),
                })?;
            entry.status = ModelStatus::Archived;
            Ok(Some(model_id.clone()))
        })
    }

    /// Deletes the files of archived models, keeping the `keep` newest archived models
    /// of each type; the deployed model and the champion are never touched. Entries
    /// stay in the registry (with `files_deleted_at`) so history keeps its ids; one
    /// audit line per deleted model. `dry_run` only reports.
    pub fn gc(&self, keep: usize, dry_run: bool) -> Result<GcReport> {
        let reg = self.load()?;
        let protected: Vec<&str> = reg
            .deployed
            .iter()
            .map(|d| d.model_id.as_str())
            .chain(reg.current_best.as_deref())
            .collect();
        let mut archived: Vec<(&ModelId, &ModelEntry)> = reg
            .models
            .iter()
            .filter(|(id, m)| {
                m.status == ModelStatus::Archived && !protected.contains(&id.as_str())
            })
            .collect();
        // Newest first within each type.
        archived.sort_by(|a, b| {
            a.1.model_type
                .cmp(&b.1.model_type)
                .then_with(|| b.1.registered_at.cmp(&a.1.registered_at))
                .then_with(|| b.0.cmp(a.0))
        });
        let mut deleted = Vec::new();
        let mut seen_of_type = 0usize;
        let mut last_type: Option<ModelType> = None;
        for (id, m) in archived {
            if last_type != Some(m.model_type) {
                last_type = Some(m.model_type);
                seen_of_type = 0;
            }
            seen_of_type += 1;
            if seen_of_type <= keep {
                continue;
            }
            let dir = self.root().join(&m.path);
            // A folder already gone counts when the registry does not say so yet (a gc
            // killed between the delete and the registry update): it is marked now.
            let marked = m.extra.contains_key(FILES_DELETED_AT);
            if !dir.is_dir() && marked && !trash_dir(&dir).exists() {
                continue;
            }
            deleted.push(GcItem {
                model_id: id.clone(),
                model_type: m.model_type,
                path: m.path.clone(),
                bytes: dir_bytes(&dir) + dir_bytes(&trash_dir(&dir)),
            });
        }
        if !dry_run {
            self.complete_audit()?;
            for item in &deleted {
                // Renamed aside first (atomic), so a kill leaves the folder whole or
                // gone, never half-deleted under its name; then the registry marks the
                // files deleted (the commit point), then the moved folder is deleted. A
                // kill leaves the unmarked model with its folder moved aside whole, or
                // the marked one with a leftover `.<id>.deleting`: the next gc finishes
                // both.
                let dir = self.root().join(&item.path);
                let trash = trash_dir(&dir);
                if dir.is_dir() {
                    std::fs::rename(&dir, &trash)
                        .map_err(|e| Error::io("cannot move aside the model folder", &dir, e))?;
                    recops_core::sync_parent(&dir)?;
                    recops_core::faults::point("gc.moved_aside");
                }
                // Marked by a gc killed before its delete: no second mark nor line.
                let marked = reg
                    .models
                    .get(&item.model_id)
                    .is_some_and(|m| m.extra.contains_key(FILES_DELETED_AT));
                let now = format_timestamp(self.clock().now());
                if !marked {
                    self.update_with("gc", "files of an archived model deleted", |reg| {
                        if let Some(m) = reg.models.get_mut(&item.model_id) {
                            m.extra
                                .entry(FILES_DELETED_AT.to_owned())
                                .or_insert_with(|| Value::String(now.clone()));
                        }
                        Ok(Some(item.model_id.clone()))
                    })?;
                }
                if trash.exists() {
                    std::fs::remove_dir_all(&trash)
                        .map_err(|e| Error::io("cannot delete the model folder", &trash, e))?;
                    recops_core::faults::point("gc.deleted");
                }
            }
        }
        let bytes = deleted.iter().map(|d| d.bytes).sum();
        Ok(GcReport {
            dry_run,
            keep,
            deleted,
            bytes,
        })
    }
}

impl Registry {
    /// Moves audit lines older than `cutoff` to `archive` (appended; created with its
    /// folder), under the registry lock, and rewrites the audit log atomically with
    /// the rest. Unreadable lines stay. Returns how many lines moved.
    pub fn archive_audit_before(
        &self,
        cutoff: chrono::DateTime<chrono::Utc>,
        archive: &std::path::Path,
    ) -> Result<usize> {
        self.store()?.archive_audit_before(cutoff, archive)
    }
}

/// Where gc moves a model folder before deleting it: `.<name>.deleting` beside it.
fn trash_dir(dir: &std::path::Path) -> std::path::PathBuf {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    dir.with_file_name(format!(".{name}.deleting"))
}

fn dir_bytes(dir: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_bytes(&e.path()),
            Ok(_) => e.metadata().map(|m| m.len()).unwrap_or(0),
            Err(_) => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use chrono::Duration;
    use recops_core::{Clock, FixedClock, Home};

    use super::*;
    use crate::registry::NewModel;

    use crate::testing::{Fixture, Setup};

    recops_testkit::on_both_backends!(
        on_files: crate::testing::files, crate::testing::postgres;
        deployments_are_recorded_audited_and_validated,
        archive_refuses_the_deployed_model_and_the_champion,
        old_audit_lines_move_to_the_archive_and_the_rest_stays,
        gc_deletes_only_old_archived_files_and_keeps_the_newest_per_type,
    );

    fn open(setup: Setup) -> (Box<dyn std::any::Any>, Home, FixedClock, Registry) {
        let Fixture {
            _keep,
            home,
            clock,
            reg,
            ..
        } = setup();
        (_keep, home, clock, reg)
    }

    fn mid(id: &str) -> ModelId {
        id.parse().unwrap()
    }

    fn add(home: &Home, reg: &Registry, clock: &FixedClock, id: &str, ndcg: f64) {
        let dir = home.model_dir(&mid(id));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("model.json"), b"{}").unwrap();
        reg.register(
            &NewModel {
                model_id: mid(id),
                model_type: id.split('_').next().unwrap().parse().unwrap(),
                metrics: [("ndcg@10".to_owned(), ndcg)].into(),
                baseline: Default::default(),
                data_version: "v1".into(),
            },
            "test",
        )
        .unwrap();
        clock.advance(Duration::minutes(1));
    }

    fn deployments_are_recorded_audited_and_validated(setup: Setup) {
        let (_d, home, clock, reg) = open(setup);
        add(&home, &reg, &clock, "als_1", 0.1);
        add(&home, &reg, &clock, "als_2", 0.2);
        reg.promote(None, "best").unwrap();
        assert_eq!(reg.deployed().unwrap(), None);
        let d = reg
            .record_deployment(&mid("als_1"), DeployedBy::Operator, "pinned")
            .unwrap();
        assert_eq!(d.champion.as_deref(), Some("als_2"));
        assert_eq!(reg.deployed().unwrap().unwrap().model_id, "als_1");
        let audit = reg.audit().unwrap();
        let last = audit.last().unwrap();
        assert_eq!(
            (last.operation.as_str(), last.deployed.as_deref()),
            ("deploy", Some("als_1"))
        );
        assert!(matches!(
            reg.record_deployment(&mid("nope"), DeployedBy::Reload, "x")
                .unwrap_err(),
            Error::NotFound { .. }
        ));
        reg.mark_verification_failed(&mid("als_2"), "no answers")
            .unwrap();
        assert!(
            reg.get("als_2")
                .unwrap()
                .unwrap()
                .verification_failed
                .is_some()
        );
        // A successful deployment clears the mark.
        reg.record_deployment(&mid("als_2"), DeployedBy::Operator, "fixed")
            .unwrap();
        assert!(
            reg.get("als_2")
                .unwrap()
                .unwrap()
                .verification_failed
                .is_none()
        );
    }

    #[test]
    fn a_deployed_entry_pointing_to_a_deleted_model_is_a_clear_error() {
        let (_d, home, clock, reg) = open(crate::testing::files);
        add(&home, &reg, &clock, "als_1", 0.1);
        reg.record_deployment(&mid("als_1"), DeployedBy::Operator, "x")
            .unwrap();
        let text = std::fs::read_to_string(reg.path()).unwrap();
        let mut raw: Value = serde_json::from_str(&text).unwrap();
        raw["models"].as_object_mut().unwrap().remove("als_1");
        let broken = serde_json::to_vec(&raw).unwrap();
        std::fs::write(reg.path(), &broken).unwrap();
        let err = reg.deployed().unwrap_err().to_string();
        assert!(err.contains("deployed model \"als_1\""), "{err}");
        assert!(reg.promote(None, "x").is_err());
        assert_eq!(std::fs::read(reg.path()).unwrap(), broken);
    }

    fn archive_refuses_the_deployed_model_and_the_champion(setup: Setup) {
        let (_d, home, clock, reg) = open(setup);
        add(&home, &reg, &clock, "als_1", 0.1);
        add(&home, &reg, &clock, "als_2", 0.2);
        add(&home, &reg, &clock, "bpr_3", 0.05);
        reg.promote(None, "best").unwrap();
        reg.record_deployment(&mid("als_1"), DeployedBy::Operator, "x")
            .unwrap();
        let e = reg
            .archive_unused(&mid("als_1"), "x")
            .unwrap_err()
            .to_string();
        assert!(e.contains("deployed"), "{e}");
        let e = reg
            .archive_unused(&mid("als_2"), "x")
            .unwrap_err()
            .to_string();
        assert!(e.contains("champion"), "{e}");
        reg.archive_unused(&mid("bpr_3"), "old").unwrap();
        assert_eq!(
            reg.get("bpr_3").unwrap().unwrap().status,
            ModelStatus::Archived
        );
        assert!(matches!(
            reg.servable(&mid("bpr_3")).unwrap_err(),
            Error::NotServable { .. }
        ));
        assert!(reg.servable(&mid("als_1")).is_ok());
    }

    fn old_audit_lines_move_to_the_archive_and_the_rest_stays(setup: Setup) {
        let (_d, home, clock, reg) = open(setup);
        add(&home, &reg, &clock, "als_1", 0.1);
        clock.advance(Duration::days(400));
        add(&home, &reg, &clock, "als_2", 0.1);
        let archive = home
            .logs_dir()
            .join("archive/registry_audit.2026-02-19.log");
        let moved = reg
            .archive_audit_before(clock.now() - Duration::days(365), &archive)
            .unwrap();
        assert_eq!(moved, 1);
        let kept = reg.audit().unwrap();
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].model_id.as_deref(), Some("als_2"));
        let archived = std::fs::read_to_string(&archive).unwrap();
        assert!(archived.contains("als_1"), "{archived}");
        assert_eq!(
            reg.archive_audit_before(clock.now() - Duration::days(365), &archive)
                .unwrap(),
            0
        );
    }

    fn gc_deletes_only_old_archived_files_and_keeps_the_newest_per_type(setup: Setup) {
        let (_d, home, clock, reg) = open(setup);
        for id in ["als_1", "als_2", "als_3", "als_4", "bpr_5", "bpr_6"] {
            add(&home, &reg, &clock, id, 0.1);
        }
        reg.promote(Some(&mid("als_4")), "champion").unwrap();
        reg.record_deployment(&mid("bpr_6"), DeployedBy::Operator, "x")
            .unwrap();
        for id in ["als_1", "als_2", "als_3", "bpr_5"] {
            reg.archive_unused(&mid(id), "old").unwrap();
        }
        let plan = reg.gc(1, true).unwrap();
        let ids: Vec<&str> = plan.deleted.iter().map(|d| d.model_id.as_str()).collect();
        assert_eq!(ids, ["als_2", "als_1"]);
        assert!(home.model_dir(&mid("als_1")).is_dir(), "dry run deletes");
        let done = reg.gc(1, false).unwrap();
        assert_eq!(done.deleted.len(), 2);
        for id in ["als_1", "als_2"] {
            assert!(!home.model_dir(&mid(id)).exists());
            assert!(reg.get(id).unwrap().unwrap().files_deleted());
        }
        for id in ["als_3", "als_4", "bpr_5", "bpr_6"] {
            assert!(home.model_dir(&mid(id)).is_dir(), "{id} kept");
        }
        assert_eq!(
            reg.audit()
                .unwrap()
                .iter()
                .filter(|a| a.operation == "gc")
                .count(),
            2
        );
        assert!(reg.gc(0, false).unwrap().deleted.len() == 2); // als_3, bpr_5
        assert!(home.model_dir(&mid("als_4")).is_dir());
        assert!(home.model_dir(&mid("bpr_6")).is_dir());
        // Run again after a crash: archiving an archived model and finishing a gc
        // killed between its mark and its delete write no second line.
        let lines = reg.audit().unwrap().len();
        reg.archive_unused(&mid("als_1"), "again").unwrap();
        let trash = trash_dir(&home.model_dir(&mid("als_1")));
        std::fs::create_dir_all(&trash).unwrap();
        reg.gc(0, false).unwrap();
        assert!(!trash.exists(), "the moved folder is deleted");
        assert_eq!(reg.audit().unwrap().len(), lines);
    }
}
