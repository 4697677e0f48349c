//! [`Registry`]: the registry's rules over a [`RegistryStore`] (the embedded
//! `artifacts/cf/registry.json` with `logs/registry_audit.log`, or PostgreSQL).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use recops_core::{
    Home, ModelId, ModelType, RecopsConfig, SharedClock, StorageUrl, SystemClock, format_timestamp,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::checksum::ModelChecksum;
use crate::error::{Error, Result};
use crate::store::{FileRegistryStore, RegistryStore};
use crate::store_pg::PgRegistryStore;

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
    /// Checksums of the model's files, recorded at registration; every replica checks
    /// them before serving the model. Absent in registries written before checksums
    /// (such models are served with a warning).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<ModelChecksum>,
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

/// The model registry of a home over its [`RegistryStore`], chosen by `storage.url`
/// (`RECOPS_STORAGE_URL`) on first use: the embedded files, where every operation
/// takes an exclusive lock on `artifacts/cf/registry.json.lock`, reads the file,
/// changes it, writes it atomically (temp file, fsync, rename) and appends one audit
/// line; or PostgreSQL, where the same happens in one transaction holding the
/// registry's row lock. Concurrent writers in several processes (and hosts) are
/// serialised and none is lost. Model files always live under the home's
/// `artifacts/cf/` (which may be a shared mount).
#[derive(Debug, Clone)]
pub struct Registry {
    home: Home,
    clock: SharedClock,
    read_only: bool,
    store: Arc<OnceLock<Arc<dyn RegistryStore>>>,
}

/// Opens the registry store `url` names for `home`: the files under the home for
/// `embedded`, else the PostgreSQL tables (created or migrated, unless `read_only`:
/// then nothing is created and a database without them reads as an empty registry).
pub fn open_store(
    home: &Home,
    url: &StorageUrl,
    read_only: bool,
) -> Result<Arc<dyn RegistryStore>> {
    Ok(match url {
        StorageUrl::Embedded => Arc::new(FileRegistryStore::new(home)),
        StorageUrl::Postgres(url) => {
            let db = recops_tracking::PgDatabase::connect(url)?;
            if read_only {
                Arc::new(PgRegistryStore::open_existing(&db)?)
            } else {
                Arc::new(PgRegistryStore::open(&db)?)
            }
        }
    })
}

impl Registry {
    /// The registry of `home` (no I/O until an operation; the backend is resolved
    /// then, from `storage.url`).
    pub fn open(home: &Home) -> Self {
        Self::with_clock(home, SystemClock::shared())
    }

    /// The registry of `home` with a given clock.
    pub fn with_clock(home: &Home, clock: SharedClock) -> Self {
        Registry {
            home: home.clone(),
            clock,
            read_only: false,
            store: Arc::default(),
        }
    }

    /// The registry of `home` for readers that must never create or migrate
    /// anything (the dashboard's panels).
    pub fn open_read_only(home: &Home) -> Self {
        Registry {
            read_only: true,
            ..Self::open(home)
        }
    }

    /// The registry of `home` over a given store (tests, `storage migrate`).
    pub fn with_store(home: &Home, store: Arc<dyn RegistryStore>, clock: SharedClock) -> Self {
        let registry = Self::with_clock(home, clock);
        let _ = registry.store.set(store);
        registry
    }

    /// The store, resolved on first use (a failure is retried at the next call).
    pub fn store(&self) -> Result<&dyn RegistryStore> {
        if let Some(s) = self.store.get() {
            return Ok(s.as_ref());
        }
        let url = RecopsConfig::storage(&self.home)?;
        let store = open_store(&self.home, &url, self.read_only)?;
        Ok(self.store.get_or_init(|| store).as_ref())
    }

    /// Path of `registry.json` (the embedded backend's file).
    pub fn path(&self) -> PathBuf {
        self.home.registry()
    }

    /// Path of the audit log (the embedded backend's file).
    pub fn audit_path(&self) -> PathBuf {
        self.home.registry_audit_log()
    }

    /// The home's root folder.
    pub(crate) fn root(&self) -> &Path {
        self.home.root()
    }

    /// The registry's clock.
    pub(crate) fn clock(&self) -> &SharedClock {
        &self.clock
    }

    /// Reads the registry (nothing recorded yet is an empty registry).
    pub fn load(&self) -> Result<RegistryFile> {
        self.store()?.load()
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
                let dir = self.root().join(&e.path);
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

    /// [`Registry::servable`], then the model's files against the checksum recorded
    /// at registration ([`Error::ChecksumMismatch`], [`Error::FileUnreadable`] name
    /// the file). A model registered before checksums is accepted with a warning.
    /// The check of a replica before it loads a model.
    pub fn servable_verified(&self, model_id: &ModelId) -> Result<ModelEntry> {
        let entry = self.servable(model_id)?;
        match &entry.checksum {
            Some(sum) => sum.verify(model_id, &self.root().join(&entry.path))?,
            None => tracing::warn!(
                model_id = %model_id,
                "the registry has no checksum for this model (registered before checksums): its files are not verified"
            ),
        }
        Ok(entry)
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
    /// champion it did not beat) `current_best` in **one** write of the store, so a
    /// crash leaves the registry as it was or with both changes, never a registered
    /// model whose champion rule was not applied. The audit gets the two records of
    /// [`Registry::register`] then [`Registry::promote`].
    pub fn register_with_champion(
        &self,
        model: &NewModel,
        reason: &str,
        champion: &ModelId,
        champion_reason: &str,
    ) -> Result<ModelEntry> {
        let entry = self.new_entry(model, ModelStatus::Active)?;
        self.update_records(|reg| {
            if reg.models.contains_key(&model.model_id) {
                return Err(Error::AlreadyRegistered {
                    model_id: model.model_id.clone(),
                });
            }
            if champion != &model.model_id {
                check_champion(reg, champion)?;
            }
            let previous = reg.current_best.clone();
            reg.models.insert(model.model_id.clone(), entry.clone());
            let registered = self.audit_record(
                reg,
                "register",
                Some(&model.model_id),
                reason,
                previous.clone(),
                previous.clone(),
            );
            reg.current_best = Some(champion.clone());
            let promoted = self.audit_record(
                reg,
                "promote",
                Some(champion),
                champion_reason,
                previous,
                reg.current_best.clone(),
            );
            Ok(vec![registered, promoted])
        })?;
        Ok(entry)
    }

    fn new_entry(&self, model: &NewModel, status: ModelStatus) -> Result<ModelEntry> {
        let rel = format!("artifacts/cf/{}", model.model_id);
        let dir = self.root().join(&rel);
        if !dir.is_dir() {
            return Err(Error::io(
                "cannot register a model without files:",
                dir,
                std::io::Error::from(std::io::ErrorKind::NotFound),
            ));
        }
        let checksum = ModelChecksum::of_dir(&model.model_id, &dir)?;
        Ok(ModelEntry {
            path: rel,
            model_type: model.model_type,
            metrics: model.metrics.clone(),
            baseline: model.baseline.clone(),
            status,
            registered_at: format_timestamp(self.clock.now()),
            data_version: model.data_version.clone(),
            verification_failed: None,
            checksum: Some(checksum),
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
                    check_champion(reg, id)?;
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
        mut change: F,
    ) -> Result<()>
    where
        F: FnMut(&mut RegistryFile) -> Result<()>,
    {
        let id = model_id.cloned();
        self.update_with(operation, reason, |reg| {
            change(reg)?;
            Ok(id.clone())
        })
    }

    /// Lock, read, change, write, audit (one step of the store). `change` returns the
    /// model id for the audit line; it may run more than once (a retried
    /// transaction), so it must only change the registry it is given.
    pub(crate) fn update_with<F>(&self, operation: &str, reason: &str, mut change: F) -> Result<()>
    where
        F: FnMut(&mut RegistryFile) -> Result<Option<ModelId>>,
    {
        self.update_records(|reg| {
            let previous = reg.current_best.clone();
            let model_id = change(reg)?;
            let current = reg.current_best.clone();
            Ok(vec![self.audit_record(
                reg,
                operation,
                model_id.as_ref(),
                reason,
                previous,
                current,
            )])
        })
    }

    /// One step of the store: `change` returns the audit records of what it did.
    fn update_records<F>(&self, mut change: F) -> Result<()>
    where
        F: FnMut(&mut RegistryFile) -> Result<Vec<AuditRecord>>,
    {
        let mut last = Vec::new();
        self.store()?.update(&mut |reg| {
            let records = change(reg)?;
            last.clone_from(&records);
            Ok(records)
        })?;
        for record in &last {
            tracing::info!(
                operation = record.operation,
                model_id = record.model_id.as_deref().unwrap_or("-"),
                current_best = record.current_best.as_deref().unwrap_or("-"),
                "registry updated"
            );
        }
        Ok(())
    }

    /// The audit record of one operation on `reg`.
    fn audit_record(
        &self,
        reg: &RegistryFile,
        operation: &str,
        model_id: Option<&ModelId>,
        reason: &str,
        previous: Option<ModelId>,
        current: Option<ModelId>,
    ) -> AuditRecord {
        AuditRecord {
            time: format_timestamp(self.clock.now()),
            operation: operation.to_owned(),
            model_id: model_id.map(ToString::to_string),
            previous_current_best: previous.map(String::from),
            current_best: current.map(String::from),
            reason: reason.to_owned(),
            pid: std::process::id(),
            deployed: reg.deployed.as_ref().map(|d| d.model_id.to_string()),
        }
    }

    /// Completes the audit lines of a registry write a crash interrupted (the
    /// embedded store; see [`FileRegistryStore`]): every write does it first, and the
    /// operations that end up writing nothing (archiving an archived model, a gc
    /// finishing a killed one) call it, so the log on disk is whole after them too.
    pub fn complete_audit(&self) -> Result<()> {
        self.store()?.complete_audit()
    }

    /// The audit records, oldest first (in the embedded log, unreadable lines are
    /// skipped with a warning).
    pub fn audit(&self) -> Result<Vec<AuditRecord>> {
        self.store()?.audit()
    }
}

/// `id` may become `current_best`: registered, active (not rejected nor archived).
fn check_champion(reg: &RegistryFile, id: &ModelId) -> Result<()> {
    let entry = reg.models.get(id).ok_or_else(|| Error::NotFound {
        model_id: id.clone(),
    })?;
    match entry.status {
        ModelStatus::Active => Ok(()),
        ModelStatus::Rejected => Err(Error::NotServable {
            model_id: id.clone(),
        }),
        _ => Err(Error::Archived {
            model_id: id.clone(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;
    use recops_core::FixedClock;

    use crate::testing::{Fixture, Setup};

    recops_testkit::on_both_backends!(
        on_files: crate::testing::files, crate::testing::postgres;
        register_promote_archive_list_get_with_audit_lines,
        a_rejected_model_is_kept_with_its_numbers_but_never_champion_or_servable,
        a_model_whose_file_changed_is_not_servable,
        concurrent_writers_all_land_with_one_audit_record_each,
        register_with_champion_is_one_write_with_both_audit_lines,
    );

    fn concurrent_writers_all_land_with_one_audit_record_each(setup: Setup) {
        let Fixture {
            _keep, home, reg, ..
        } = setup();
        let models: Vec<Vec<NewModel>> = (0..4)
            .map(|t| {
                (0..8)
                    .map(|i| {
                        model(
                            &home,
                            &format!("als_{t}_{i}"),
                            0.1 + f64::from(t * 8 + i) / 100.0,
                        )
                    })
                    .collect()
            })
            .collect();
        std::thread::scope(|s| {
            for batch in &models {
                let reg = reg.clone();
                s.spawn(move || {
                    for m in batch {
                        reg.register(m, "concurrent").unwrap();
                        reg.promote(None, "best").unwrap();
                    }
                });
            }
        });
        let file = reg.load().unwrap();
        assert_eq!(file.models.len(), 32);
        assert_eq!(file.current_best.as_deref(), Some("als_3_7"));
        let audit = reg.audit().unwrap();
        assert_eq!(audit.len(), 64);
        assert_eq!(
            audit.iter().filter(|a| a.operation == "register").count(),
            32
        );
    }

    fn setup() -> (Box<dyn std::any::Any>, Home, FixedClock, Registry) {
        let f = crate::testing::files();
        (f._keep, f.home, f.clock, f.reg)
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

    fn register_with_champion_is_one_write_with_both_audit_lines(setup: Setup) {
        let Fixture {
            _keep, home, reg, ..
        } = setup();
        let first = mid("als_20250115_103000");
        reg.register_with_champion(
            &model(&home, first.as_str(), 0.18),
            "beats",
            &first,
            "first",
        )
        .unwrap();
        assert_eq!(reg.load().unwrap().current_best.as_ref(), Some(&first));
        // A new model that loses keeps the champion; the new one is registered.
        let second = mid("als_20250115_103100");
        reg.register_with_champion(&model(&home, second.as_str(), 0.1), "beats", &first, "kept")
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
            reg.register_with_champion(&model(&home, third.as_str(), 0.3), "b", &mid("nope"), "x")
                .unwrap_err(),
            Error::NotFound { .. }
        ));
        assert_eq!(reg.load().unwrap(), file);
    }

    fn register_promote_archive_list_get_with_audit_lines(setup: Setup) {
        let Fixture {
            _keep,
            home,
            clock,
            reg,
            embedded,
        } = setup();
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
        assert_eq!(
            als.checksum.as_ref().map(|c| c.algorithm.as_str()),
            Some("xxh3-128")
        );
        if embedded {
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
        } else {
            assert!(!reg.path().exists(), "no registry.json in PostgreSQL mode");
            assert!(
                !reg.audit_path().exists(),
                "no audit log in PostgreSQL mode"
            );
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

    fn a_rejected_model_is_kept_with_its_numbers_but_never_champion_or_servable(setup: Setup) {
        let Fixture {
            _keep,
            home,
            reg,
            embedded,
            ..
        } = setup();
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
        if embedded {
            let raw: Value = serde_json::from_slice(&std::fs::read(reg.path()).unwrap()).unwrap();
            assert_eq!(raw["models"]["als_20250115_103000"]["status"], "rejected");
        }
        assert_eq!(reg.audit().unwrap()[0].operation, "reject");
    }

    fn a_model_whose_file_changed_is_not_servable(setup: Setup) {
        let Fixture {
            _keep, home, reg, ..
        } = setup();
        let m = model(&home, "als_20250115_103000", 0.2);
        let dir = home.model_dir(&m.model_id);
        std::fs::write(dir.join("model.safetensors"), [7u8; 64]).unwrap();
        reg.register(&m, "x").unwrap();
        reg.servable_verified(&m.model_id).unwrap();
        let mut bytes = std::fs::read(dir.join("model.safetensors")).unwrap();
        bytes[10] ^= 1;
        std::fs::write(dir.join("model.safetensors"), &bytes).unwrap();
        // The cheap check still passes; the replica's check names the file.
        reg.servable(&m.model_id).unwrap();
        let err = reg.servable_verified(&m.model_id).unwrap_err();
        assert!(
            matches!(&err, Error::ChecksumMismatch { file, .. } if file == "model.safetensors"),
            "{err}"
        );
        // An older entry without a checksum is accepted (with a warning).
        reg.update_with("test", "drop checksum", |r| {
            if let Some(e) = r.models.get_mut(&m.model_id) {
                e.checksum = None;
            }
            Ok(None)
        })
        .unwrap();
        reg.servable_verified(&m.model_id).unwrap();
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
