//! recops-registry: the model registry, `artifacts/cf/registry.json` in the spec's
//! shape, with an audit trail in `logs/registry_audit.log`.
//!
//! - [`Registry`]: `register`, `promote` (explicit, or the active model with the best
//!   ndcg@10), `archive`, `list`, `get`, `current_best`, `audit`. Writes are atomic and
//!   serialised across processes by a file lock, so two trainers registering at once
//!   both land; every operation appends one JSON line (time, operation, model_id,
//!   previous and new current_best, reason). `register_with_champion` registers a
//!   model and sets `current_best` in one write (the training job's champion rule), so
//!   a crash leaves neither or both.
//! - [`RegistryFile`], [`ModelEntry`]: the file's content (unknown fields are kept).
//! - The desired serving state and lifecycle ([`DeployedEntry`]): `deployed` (what the
//!   service must run, written by every deployment, rollback and reload, with the
//!   champion at that decision), `record_deployment`, `mark_verification_failed`,
//!   `deployable`, `archive_unused` (refuses the deployed model and the champion) and
//!   `gc` (deletes files of old archived models only). See docs/lifecycle.md.
//!
//! ```
//! use recops_core::{Home, ModelId};
//! use recops_registry::{NewModel, Registry};
//!
//! let dir = tempfile::tempdir()?;
//! let home = Home::new(dir.path());
//! let id: ModelId = "als_20250115_103000".parse()?;
//! std::fs::create_dir_all(home.model_dir(&id))?; // the model files
//! let registry = Registry::open(&home);
//! registry.register(
//!     &NewModel {
//!         model_id: id.clone(),
//!         model_type: recops_core::ModelType::Als,
//!         metrics: [("ndcg@10".to_owned(), 0.189)].into(),
//!         baseline: [("recall@10".to_owned(), 0.145)].into(),
//!         data_version: "2025-01-15".into(),
//!     },
//!     "beats the popularity baseline",
//! )?;
//! assert_eq!(registry.promote(None, "best ndcg@10")?.as_deref(), Some("als_20250115_103000"));
//! assert_eq!(registry.audit()?.len(), 2);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod error;
mod lifecycle;
mod registry;

pub use error::{Error, Result};
pub use lifecycle::{
    DeployedBy, DeployedEntry, FILES_DELETED_AT, GcItem, GcReport, VerificationFailure,
};
pub use registry::{
    AuditRecord, CHAMPION_METRIC, ModelEntry, ModelStatus, NewModel, Registry, RegistryFile,
};
