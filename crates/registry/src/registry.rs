//! `artifacts/cf/registry.json`, its lock and `logs/registry_audit.log`.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use recops_core::{
    Home, ModelId, ModelType, SharedClock, SystemClock, format_timestamp, write_atomic,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// The metric that elects `current_best`.
pub const CHAMPION_METRIC: &str = "ndcg@10";

/// Status of a registered model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelStatus {
    /// Usable; a candidate for `current_best`.
    Active,
    /// Kept for the record; never served.
    Archived,
    /// Trained but did not beat the strongest popularity baseline on its own split:
    /// kept with its numbers for the record; never champion, never served.
    Rejected,
}

/// One model in `registry.json` (the spec's fields; unknown fields are kept as they are).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelEntry {
    /// The model folder relative to the home (`artifacts/cf/<model_id>`).
    pub path: String,
    /// `als` or `bpr`.
    pub model_type: ModelType,
    /// Test metrics (`recall@10`, `ndcg@10`, `coverage@10`, ...).
    #[serde(default)]
    pub metrics: BTreeMap<String, f64>,
    /// The popularity baseline's metrics on the same split.
    #[serde(default)]
    pub baseline: BTreeMap<String, f64>,
    /// `active` or `archived`.
    pub status: ModelStatus,
    /// RFC 3339 registration time.
    pub registered_at: String,
    /// Version of the data the model was trained on.
    #[serde(default)]
    pub data_version: String,
    /// Set when a deployment of this model failed verification: such a model is never
    /// deployed automatically again (an operator may still deploy it by id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification_failed: Option<crate::lifecycle::VerificationFailure>,
    /// Fields written by other tools, preserved on rewrite.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ModelEntry {
    /// ndcg@10, the champion metric (`-inf` when absent).
    pub fn score(&self) -> f64 {
        self.metrics
            .get(CHAMPION_METRIC)
            .copied()
            .filter(|v| v.is_finite())
            .unwrap_or(f64::NEG_INFINITY)
    }
}

/// The whole `registry.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct RegistryFile {
    /// The champion: the model the scheduled deployment deploys, or null.
    pub current_best: Option<ModelId>,
    /// The desired serving state: the model the service must run, written by every
    /// deployment and rollback (absent until the first one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployed: Option<crate::lifecycle::DeployedEntry>,
    /// Every registered model by id.
    #[serde(default)]
    pub models: BTreeMap<ModelId, ModelEntry>,
    /// Fields written by other tools, preserved on rewrite.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl RegistryFile {
    /// The active model with the best ndcg@10 (ties: the later registration, then the
    /// larger id).
    pub fn best_active(&self) -> Option<(&ModelId, &ModelEntry)> {
        self.models
            .iter()
            .filter(|(_, m)| m.status == ModelStatus::Active)
            .max_by(|a, b| {
                a.1.score()
                    .total_cmp(&b.1.score())
                    .then_with(|| a.1.registered_at.cmp(&b.1.registered_at))
                    .then_with(|| a.0.cmp(b.0))
            })
    }

    /// The newest active model of `model_type` (by registration time, then id).
    pub fn latest_active(&self, model_type: ModelType) -> Option<(&ModelId, &ModelEntry)> {
        self.models
            .iter()
            .filter(|(_, m)| m.status == ModelStatus::Active && m.model_type == model_type)
            .max_by(|a, b| {
                a.1.registered_at
                    .cmp(&b.1.registered_at)
                    .then_with(|| a.0.cmp(b.0))
            })
    }

    /// The newest model of `model_type` whatever its status.
    pub fn latest_registered(&self, model_type: ModelType) -> Option<(&ModelId, &ModelEntry)> {
        self.models
            .iter()
            .filter(|(_, m)| m.model_type == model_type)
            .max_by(|a, b| {
                a.1.registered_at
                    .cmp(&b.1.registered_at)
                    .then_with(|| a.0.cmp(b.0))
            })
    }

    /// The entry of `current_best`, if set and present.
    pub fn current(&self) -> Option<(&ModelId, &ModelEntry)> {
        let id = self.current_best.as_ref()?;
        self.models.get_key_value(id)
    }
}

/// A model to register.
#[derive(Debug, Clone, PartialEq)]
pub struct NewModel {
    /// `{type}_{YYYYMMDD_HHMMSS}`.
    pub model_id: ModelId,
    /// `als` or `bpr`.
    pub model_type: ModelType,
    /// Test metrics.
    pub metrics: BTreeMap<String, f64>,
    /// Baseline metrics.
    pub baseline: BTreeMap<String, f64>,
    /// Data version.
    pub data_version: String,
}

/// One line of `logs/registry_audit.log`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// RFC 3339 time of the operation.
    pub time: String,
    /// `register`, `promote` or `archive`.
    pub operation: String,
    /// The model operated on (for a promotion: the new current_best).
    pub model_id: Option<String>,
    /// `current_best` before the operation.
    pub previous_current_best: Option<String>,
    /// `current_best` after the operation.
    pub current_best: Option<String>,
    /// Why (given by the caller).
    pub reason: String,
    /// Process id of the writer.
    pub pid: u32,
    /// The deployed model after the operation (absent in older lines).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployed: Option<String>,
}

/// The model registry of a home. Every operation takes an exclusive lock on
/// `artifacts/cf/registry.json.lock`, reads the file, changes it, writes it atomically
/// (temp file, fsync, rename) and appends one audit line, so concurrent writers in
/// several processes are serialised and none is lost.
#[derive(Debug, Clone)]
pub struct Registry {
    path: PathBuf,
    lock_path: PathBuf,
    audit_path: PathBuf,
    root: PathBuf,
    clock: SharedClock,
}

pub(crate) struct Locked {
    file: File,
}

impl Drop for Locked {
    fn drop(&mut self) {
        let _ = self.file.unlock();
    }
}

impl Registry {
    /// The registry of `home` (no I/O until an operation).
    pub fn open(home: &Home) -> Self {
        Self::with_clock(home, SystemClock::shared())
    }

    /// The registry of `home` with a given clock.
    pub fn with_clock(home: &Home, clock: SharedClock) -> Self {
        let path = home.registry();
        let mut lock_name = path
            .file_name()
            .map(|n| n.to_os_string())
            .unwrap_or_default();
        lock_name.push(".lock");
        Registry {
            lock_path: path.with_file_name(lock_name),
            path,
            audit_path: home.registry_audit_log(),
            root: home.root().to_path_buf(),
            clock,
        }
    }

    /// Path of `registry.json`.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Path of the audit log.
    pub fn audit_path(&self) -> &Path {
        &self.audit_path
    }

    /// The home's root folder.
    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    /// The registry's clock.
    pub(crate) fn clock(&self) -> &SharedClock {
        &self.clock
    }

    pub(crate) fn lock(&self) -> Result<Locked> {
        recops_core::ensure_parent(&self.lock_path)?;
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&self.lock_path)
            .map_err(|e| Error::io("cannot open", &self.lock_path, e))?;
        file.lock()
            .map_err(|e| Error::io("cannot lock", &self.lock_path, e))?;
        Ok(Locked { file })
    }

    /// Reads the registry (an absent file is an empty registry).
    pub fn load(&self) -> Result<RegistryFile> {
        let text = match std::fs::read(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(RegistryFile::default());
            }
            Err(e) => return Err(Error::io("cannot read", &self.path, e)),
        };
        let reg: RegistryFile = serde_json::from_slice(&text).map_err(|e| Error::Corrupt {
            path: self.path.clone(),
            message: e.to_string(),
        })?;
        if let Some(cb) = reg
            .current_best
            .as_ref()
            .filter(|cb| !reg.models.contains_key(*cb))
        {
            return Err(Error::Corrupt {
                path: self.path.clone(),
                message: format!("current_best {cb:?} is not one of the models"),
            });
        }
        if let Some(d) = reg
            .deployed
            .as_ref()
            .filter(|d| !reg.models.contains_key(&d.model_id))
        {
            return Err(Error::Corrupt {
                path: self.path.clone(),
                message: format!("deployed model {:?} is not one of the models", d.model_id),
            });
        }
        Ok(reg)
    }

    /// Every model, by id.
    pub fn list(&self) -> Result<Vec<(ModelId, ModelEntry)>> {
        Ok(self.load()?.models.into_iter().collect())
    }

    /// One model.
    pub fn get(&self, model_id: &str) -> Result<Option<ModelEntry>> {
        Ok(self.load()?.models.remove(model_id))
    }

    /// The entry of `model_id` if it may be deployed and served: registered, active,
    /// with its folder in place ([`Error::NotFound`], [`Error::NotServable`],
    /// [`Error::MissingFiles`] otherwise). The one answer of the deployer and the
    /// recommender.
    pub fn servable(&self, model_id: &ModelId) -> Result<ModelEntry> {
        match self.get(model_id)? {
            None => Err(Error::NotFound {
                model_id: model_id.clone(),
            }),
            Some(e) if e.status != ModelStatus::Active => Err(Error::NotServable {
                model_id: model_id.clone(),
            }),
            Some(e) => {
                let dir = self.root.join(&e.path);
                if !dir.is_dir() {
                    return Err(Error::MissingFiles {
                        model_id: model_id.clone(),
                        path: dir,
                    });
                }
                Ok(e)
            }
        }
    }

    /// `current_best` and its entry.
    pub fn current_best(&self) -> Result<Option<(ModelId, ModelEntry)>> {
        let reg = self.load()?;
        Ok(reg.current().map(|(k, v)| (k.clone(), v.clone())))
    }

    /// Registers an active model (its folder must exist under the home). Does not
    /// change `current_best`: call [`Registry::promote`].
    pub fn register(&self, model: &NewModel, reason: &str) -> Result<ModelEntry> {
        self.insert(model, ModelStatus::Active, "register", reason)
    }

    /// Records a model that failed the gate (did not beat the strongest popularity
    /// baseline) as `rejected`, with its numbers: never a candidate for `current_best`,
    /// never servable. Audit operation `reject`.
    pub fn reject(&self, model: &NewModel, reason: &str) -> Result<ModelEntry> {
        self.insert(model, ModelStatus::Rejected, "reject", reason)
    }

    /// Registers an active model and makes `champion` (the new model itself, or the
    /// champion it did not beat) `current_best` in **one** write of `registry.json`, so a
    /// crash leaves the registry as it was or with both changes, never a registered
    /// model whose champion rule was not applied. The audit gets the two lines of
    /// [`Registry::register`] then [`Registry::promote`].
    pub fn register_with_champion(
        &self,
        model: &NewModel,
        reason: &str,
        champion: &ModelId,
        champion_reason: &str,
    ) -> Result<ModelEntry> {
        let entry = self.new_entry(model, ModelStatus::Active)?;
        let _guard = self.lock()?;
        let mut reg = self.load()?;
        let previous = reg.current_best.clone();
        if reg.models.contains_key(&model.model_id) {
            return Err(Error::AlreadyRegistered {
                model_id: model.model_id.clone(),
            });
        }
        if champion != &model.model_id {
            match reg.models.get(champion) {
                None => {
                    return Err(Error::NotFound {
                        model_id: champion.clone(),
                    });
                }
                Some(e) if e.status == ModelStatus::Rejected => {
                    return Err(Error::NotServable {
                        model_id: champion.clone(),
                    });
                }
                Some(e) if e.status != ModelStatus::Active => {
                    return Err(Error::Archived {
                        model_id: champion.clone(),
                    });
                }
                Some(_) => {}
            }
        }
        reg.models.insert(model.model_id.clone(), entry.clone());
        reg.current_best = Some(champion.clone());
        self.write_file(&reg)?;
        recops_core::faults::point("registry.register.written");
        self.audit_change(
            "register",
            Some(&model.model_id),
            reason,
            previous.clone(),
            previous.clone(),
            &reg,
        )?;
        self.audit_change(
            "promote",
            Some(champion),
            champion_reason,
            previous,
            reg.current_best.clone(),
            &reg,
        )?;
        Ok(entry)
    }

    fn new_entry(&self, model: &NewModel, status: ModelStatus) -> Result<ModelEntry> {
        let rel = format!("artifacts/cf/{}", model.model_id);
        let dir = self.root.join(&rel);
        if !dir.is_dir() {
            return Err(Error::io(
                "cannot register a model without files:",
                dir,
                std::io::Error::from(std::io::ErrorKind::NotFound),
            ));
        }
        Ok(ModelEntry {
            path: rel,
            model_type: model.model_type,
            metrics: model.metrics.clone(),
            baseline: model.baseline.clone(),
            status,
            registered_at: format_timestamp(self.clock.now()),
            data_version: model.data_version.clone(),
            verification_failed: None,
            extra: Map::new(),
        })
    }

    fn insert(
        &self,
        model: &NewModel,
        status: ModelStatus,
        operation: &str,
        reason: &str,
    ) -> Result<ModelEntry> {
        let entry = self.new_entry(model, status)?;
        self.update(operation, Some(&model.model_id), reason, |reg| {
            if reg.models.contains_key(&model.model_id) {
                return Err(Error::AlreadyRegistered {
                    model_id: model.model_id.clone(),
                });
            }
            reg.models.insert(model.model_id.clone(), entry.clone());
            Ok(())
        })?;
        Ok(entry)
    }

    /// Sets `current_best` to `model_id`, or (when `None`) to the active model with the
    /// best ndcg@10. Returns the new `current_best`.
    pub fn promote(&self, model_id: Option<&ModelId>, reason: &str) -> Result<Option<ModelId>> {
        let mut chosen = None;
        self.update_with("promote", reason, |reg| {
            let id = match model_id {
                Some(id) => {
                    let entry = reg.models.get(id).ok_or_else(|| Error::NotFound {
                        model_id: id.clone(),
                    })?;
                    if entry.status == ModelStatus::Rejected {
                        return Err(Error::NotServable {
                            model_id: id.clone(),
                        });
                    }
                    if entry.status != ModelStatus::Active {
                        return Err(Error::Archived {
                            model_id: id.clone(),
                        });
                    }
                    Some(id.clone())
                }
                None => reg.best_active().map(|(k, _)| k.clone()),
            };
            reg.current_best = id.clone();
            chosen = id.clone();
            Ok(id)
        })?;
        Ok(chosen)
    }

    /// Archives a model. If it was `current_best`, the best remaining active model takes
    /// its place (or none).
    pub fn archive(&self, model_id: &ModelId, reason: &str) -> Result<Option<ModelId>> {
        let mut after = None;
        self.update("archive", Some(model_id), reason, |reg| {
            let entry = reg
                .models
                .get_mut(model_id)
                .ok_or_else(|| Error::NotFound {
                    model_id: model_id.clone(),
                })?;
            entry.status = ModelStatus::Archived;
            if reg.current_best.as_ref() == Some(model_id) {
                reg.current_best = reg.best_active().map(|(k, _)| k.clone());
            }
            after = reg.current_best.clone();
            Ok(())
        })?;
        Ok(after)
    }

    fn update<F>(
        &self,
        operation: &str,
        model_id: Option<&ModelId>,
        reason: &str,
        change: F,
    ) -> Result<()>
    where
        F: FnOnce(&mut RegistryFile) -> Result<()>,
    {
        let id = model_id.cloned();
        self.update_with(operation, reason, |reg| {
            change(reg)?;
            Ok(id)
        })
    }

    /// Lock, read, change, write, audit. `change` returns the model id for the audit line.
    pub(crate) fn update_with<F>(&self, operation: &str, reason: &str, change: F) -> Result<()>
    where
        F: FnOnce(&mut RegistryFile) -> Result<Option<ModelId>>,
    {
        let _guard = self.lock()?;
        let mut reg = self.load()?;
        let previous = reg.current_best.clone();
        let model_id = change(&mut reg)?;
        self.write_file(&reg)?;
        recops_core::faults::point(&format!("registry.{operation}.written"));
        let current = reg.current_best.clone();
        self.audit_change(
            operation,
            model_id.as_ref(),
            reason,
            previous,
            current,
            &reg,
        )
    }

    fn write_file(&self, reg: &RegistryFile) -> Result<()> {
        let json = serde_json::to_vec_pretty(reg).map_err(|e| Error::Corrupt {
            path: self.path.clone(),
            message: e.to_string(),
        })?;
        Ok(write_atomic(&self.path, &json)?)
    }

    /// Appends the audit line of one change (and logs it).
    fn audit_change(
        &self,
        operation: &str,
        model_id: Option<&ModelId>,
        reason: &str,
        previous: Option<ModelId>,
        current: Option<ModelId>,
        reg: &RegistryFile,
    ) -> Result<()> {
        let record = AuditRecord {
            time: format_timestamp(self.clock.now()),
            operation: operation.to_owned(),
            model_id: model_id.map(ToString::to_string),
            previous_current_best: previous.map(String::from),
            current_best: current.map(String::from),
            reason: reason.to_owned(),
            pid: std::process::id(),
            deployed: reg.deployed.as_ref().map(|d| d.model_id.to_string()),
        };
        self.append_audit(&record)?;
        tracing::info!(
            operation,
            model_id = record.model_id.as_deref().unwrap_or("-"),
            current_best = record.current_best.as_deref().unwrap_or("-"),
            "registry updated"
        );
        Ok(())
    }

    fn append_audit(&self, record: &AuditRecord) -> Result<()> {
        recops_core::ensure_parent(&self.audit_path)?;
        let mut line = serde_json::to_string(record).map_err(|e| Error::Corrupt {
            path: self.audit_path.clone(),
            message: e.to_string(),
        })?;
        line.push('\n');
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.audit_path)
            .map_err(|e| Error::io("cannot open", &self.audit_path, e))?;
        f.write_all(line.as_bytes())
            .map_err(|e| Error::io("cannot append to", &self.audit_path, e))
    }

    /// The audit records, oldest first (unreadable lines are skipped with a warning).
    pub fn audit(&self) -> Result<Vec<AuditRecord>> {
        let text = match std::fs::read_to_string(&self.audit_path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io("cannot read", &self.audit_path, e)),
        };
        Ok(text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .filter_map(|(n, l)| match serde_json::from_str(l) {
                Ok(r) => Some(r),
                Err(e) => {
                    tracing::warn!(line = n + 1, error = %recops_core::error_chain(&e), "skipping unreadable audit line");
                    None
                }
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone, Utc};
    use recops_core::FixedClock;

    fn setup() -> (tempfile::TempDir, Home, FixedClock, Registry) {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::new(dir.path());
        let clock = FixedClock::new(Utc.with_ymd_and_hms(2025, 1, 15, 10, 30, 0).unwrap());
        let reg = Registry::with_clock(&home, clock.shared());
        (dir, home, clock, reg)
    }

    fn mid(id: &str) -> ModelId {
        id.parse().unwrap()
    }

    fn model(home: &Home, id: &str, ndcg: f64) -> NewModel {
        let model_id: ModelId = id.parse().unwrap();
        std::fs::create_dir_all(home.model_dir(&model_id)).unwrap();
        NewModel {
            model_id,
            model_type: id.split('_').next().unwrap().parse().unwrap(),
            metrics: [
                ("ndcg@10".to_owned(), ndcg),
                ("recall@10".to_owned(), ndcg * 1.2),
            ]
            .into(),
            baseline: [("recall@10".to_owned(), 0.1)].into(),
            data_version: "v1".into(),
        }
    }

    #[test]
    fn register_with_champion_is_one_write_with_both_audit_lines() {
        let (_d, home, _clock, reg) = setup();
        let first = mid("als_20250115_103000");
        reg.register_with_champion(&model(&home, &first, 0.18), "beats", &first, "first")
            .unwrap();
        assert_eq!(reg.load().unwrap().current_best.as_ref(), Some(&first));
        // A new model that loses keeps the champion; the new one is registered.
        let second = mid("als_20250115_103100");
        reg.register_with_champion(&model(&home, &second, 0.1), "beats", &first, "kept")
            .unwrap();
        let file = reg.load().unwrap();
        assert_eq!(file.current_best.as_ref(), Some(&first));
        assert_eq!(file.models[&second].status, ModelStatus::Active);
        let audit = reg.audit().unwrap();
        let ops: Vec<(&str, Option<&str>, Option<&str>)> = audit
            .iter()
            .map(|a| {
                (
                    a.operation.as_str(),
                    a.previous_current_best.as_deref(),
                    a.current_best.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            ops,
            [
                ("register", None, None),
                ("promote", None, Some("als_20250115_103000")),
                (
                    "register",
                    Some("als_20250115_103000"),
                    Some("als_20250115_103000")
                ),
                (
                    "promote",
                    Some("als_20250115_103000"),
                    Some("als_20250115_103000")
                ),
            ]
        );
        // An unknown champion changes nothing.
        let third = mid("als_20250115_103200");
        assert!(matches!(
            reg.register_with_champion(&model(&home, &third, 0.3), "b", &mid("nope"), "x")
                .unwrap_err(),
            Error::NotFound { .. }
        ));
        assert_eq!(reg.load().unwrap(), file);
    }

    #[test]
    fn register_promote_archive_list_get_with_audit_lines() {
        let (_d, home, clock, reg) = setup();
        assert_eq!(reg.load().unwrap(), RegistryFile::default());
        reg.register(&model(&home, "als_20250115_103000", 0.18), "beats baseline")
            .unwrap();
        clock.advance(Duration::minutes(1));
        reg.register(&model(&home, "bpr_20250115_103100", 0.20), "beats baseline")
            .unwrap();
        assert_eq!(
            reg.promote(None, "best ndcg@10").unwrap().as_deref(),
            Some("bpr_20250115_103100")
        );
        // Explicit promotion.
        assert_eq!(
            reg.promote(Some(&mid("als_20250115_103000")), "operator choice")
                .unwrap()
                .as_deref(),
            Some("als_20250115_103000")
        );
        // Archiving the current best elects the best remaining active model.
        assert_eq!(
            reg.archive(&mid("als_20250115_103000"), "superseded")
                .unwrap()
                .as_deref(),
            Some("bpr_20250115_103100")
        );
        assert!(matches!(
            reg.promote(Some(&mid("als_20250115_103000")), "x")
                .unwrap_err(),
            Error::Archived { .. }
        ));
        assert!(matches!(
            reg.promote(Some(&mid("nope")), "x").unwrap_err(),
            Error::NotFound { .. }
        ));
        assert!(matches!(
            reg.register(&model(&home, "bpr_20250115_103100", 0.3), "again")
                .unwrap_err(),
            Error::AlreadyRegistered { .. }
        ));
        let file = reg.load().unwrap();
        assert_eq!(file.current_best.as_deref(), Some("bpr_20250115_103100"));
        let als = reg.get("als_20250115_103000").unwrap().unwrap();
        assert_eq!(als.status, ModelStatus::Archived);
        assert_eq!(als.path, "artifacts/cf/als_20250115_103000");
        assert_eq!(als.registered_at, "2025-01-15T10:30:00.000000+00:00");
        assert_eq!(reg.list().unwrap().len(), 2);
        // The spec's shape on disk.
        let raw: Value = serde_json::from_slice(&std::fs::read(reg.path()).unwrap()).unwrap();
        let m = &raw["models"]["bpr_20250115_103100"];
        for key in [
            "path",
            "model_type",
            "metrics",
            "baseline",
            "status",
            "registered_at",
            "data_version",
        ] {
            assert!(m.get(key).is_some(), "missing {key}");
        }
        // One audit line per operation.
        let audit = reg.audit().unwrap();
        let ops: Vec<&str> = audit.iter().map(|a| a.operation.as_str()).collect();
        assert_eq!(
            ops,
            ["register", "register", "promote", "promote", "archive"]
        );
        assert_eq!(
            audit[3].previous_current_best.as_deref(),
            Some("bpr_20250115_103100")
        );
        assert_eq!(
            audit[3].current_best.as_deref(),
            Some("als_20250115_103000")
        );
        assert_eq!(audit[3].reason, "operator choice");
        assert_eq!(audit[4].model_id.as_deref(), Some("als_20250115_103000"));
    }

    #[test]
    fn a_rejected_model_is_kept_with_its_numbers_but_never_champion_or_servable() {
        let (_d, home, _c, reg) = setup();
        reg.reject(
            &model(&home, "als_20250115_103000", 0.5),
            "loses to popularity",
        )
        .unwrap();
        let entry = reg.get("als_20250115_103000").unwrap().unwrap();
        assert_eq!(entry.status, ModelStatus::Rejected);
        assert_eq!(entry.metrics["ndcg@10"], 0.5);
        assert_eq!(reg.promote(None, "best").unwrap(), None);
        assert!(matches!(
            reg.promote(Some(&mid("als_20250115_103000")), "x")
                .unwrap_err(),
            Error::NotServable { .. }
        ));
        assert!(matches!(
            reg.servable(&mid("als_20250115_103000")).unwrap_err(),
            Error::NotServable { .. }
        ));
        let raw: Value = serde_json::from_slice(&std::fs::read(reg.path()).unwrap()).unwrap();
        assert_eq!(raw["models"]["als_20250115_103000"]["status"], "rejected");
        assert_eq!(reg.audit().unwrap()[0].operation, "reject");
    }

    #[test]
    fn corrupt_registry_is_refused_and_left_untouched() {
        let (_d, home, _c, reg) = setup();
        std::fs::create_dir_all(reg.path().parent().unwrap()).unwrap();
        std::fs::write(reg.path(), b"{\"current_best\": 3").unwrap();
        let err = reg
            .register(&model(&home, "als_20250101_000000", 0.1), "x")
            .unwrap_err();
        assert!(err.to_string().contains("invalid registry"), "{err}");
        assert_eq!(std::fs::read(reg.path()).unwrap(), b"{\"current_best\": 3");
        assert!(reg.audit().unwrap().is_empty());
    }

    #[test]
    fn unknown_fields_survive_a_rewrite_and_names_are_checked() {
        let (_d, home, _c, reg) = setup();
        std::fs::create_dir_all(reg.path().parent().unwrap()).unwrap();
        std::fs::write(
            reg.path(),
            br#"{"current_best": null, "models": {}, "owner": "ml-team"}"#,
        )
        .unwrap();
        reg.register(&model(&home, "als_20250101_000000", 0.1), "x")
            .unwrap();
        let raw: Value = serde_json::from_slice(&std::fs::read(reg.path()).unwrap()).unwrap();
        assert_eq!(raw["owner"], "ml-team");
        // A path-like id cannot be built, so it never reaches the registry.
        assert!("../etc".parse::<ModelId>().is_err());
        let mut missing = model(&home, "als_20250101_000002", 0.1);
        missing.model_id = mid("als_20990101_000000");
        assert!(
            reg.register(&missing, "x")
                .unwrap_err()
                .to_string()
                .contains("without files")
        );
    }
}
