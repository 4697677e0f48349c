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
//! - **Backends** ([`RegistryStore`]): [`FileRegistryStore`], the files above in the
//!   spec's format (the default; each write of `registry.json` carries its audit
//!   records under [`AUDIT_JOURNAL_KEY`], so a kill between the file and the log
//!   loses no line: the next writer appends what the log lacks, readers merge it in
//!   memory, [`Registry::complete_audit`] repairs without writing the registry), and [`PgRegistryStore`], tables `registry_state`,
//!   `registry_models` and `registry_audit` with versioned migrations
//!   ([`PG_REGISTRY_MIGRATIONS`]), each write one transaction holding the state row's
//!   lock and retried on serialization failures. [`Registry::open`] picks the one
//!   `storage.url` / `RECOPS_STORAGE_URL` names on first use (through
//!   `recops_tracking::PgDatabase`); [`Registry::open_read_only`] never creates or
//!   migrates anything (the dashboard, health). See docs/storage.md.
//! - **Checksums** ([`ModelChecksum`]): registration records xxh3-128 of every file
//!   of the model folder; [`Registry::servable_verified`], the replica's check before
//!   it loads a model, refuses a file it cannot read or whose checksum differs,
//!   naming the model and the file. Entries without a checksum (older registries) are
//!   accepted with a warning.
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

mod checksum;
mod error;
mod lifecycle;
mod registry;
mod store;
mod store_pg;

pub use checksum::{CHECKSUM_ALGORITHM, ModelChecksum};
pub use store::{AUDIT_JOURNAL_KEY, FileRegistryStore, RegistryStore};
pub use store_pg::{PG_REGISTRY_MIGRATIONS, PgRegistryStore};

pub use error::{Error, Result};
pub use lifecycle::{
    DeployedBy, DeployedEntry, FILES_DELETED_AT, GcItem, GcReport, VerificationFailure,
};
pub use registry::{
    AuditRecord, CHAMPION_METRIC, ModelEntry, ModelStatus, NewModel, Registry, RegistryFile,
    open_store,
};

/// The fixtures of the same-body tests over both backends.
#[cfg(test)]
pub(crate) mod testing {
    use chrono::{TimeZone, Utc};
    use recops_core::{FixedClock, Home};

    use crate::Registry;

    /// The home (kept alive by the first field), its clock and its registry, and
    /// whether it is the embedded backend.
    pub(crate) struct Fixture {
        pub _keep: Box<dyn std::any::Any>,
        pub home: Home,
        pub clock: FixedClock,
        pub reg: Registry,
        pub embedded: bool,
    }

    /// A fixture maker.
    pub(crate) type Setup = fn() -> Fixture;

    fn clock() -> FixedClock {
        FixedClock::new(Utc.with_ymd_and_hms(2025, 1, 15, 10, 30, 0).unwrap())
    }

    /// The embedded files of a temporary home.
    pub(crate) fn files() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::new(dir.path());
        let clock = clock();
        let reg = Registry::with_clock(&home, clock.shared());
        Fixture {
            _keep: Box::new(dir),
            home,
            clock,
            reg,
            embedded: true,
        }
    }

    /// A fresh PostgreSQL database of the shared throwaway cluster.
    pub(crate) fn postgres() -> Fixture {
        let pg = recops_testkit::PgCluster::shared().unwrap();
        let db = recops_tracking::PgDatabase::connect_new(&pg.fresh_database()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let home = Home::new(dir.path());
        let clock = clock();
        let store = std::sync::Arc::new(crate::PgRegistryStore::open(&db).unwrap());
        let reg = Registry::with_store(&home, store, clock.shared());
        Fixture {
            _keep: Box::new((dir, db)),
            home,
            clock,
            reg,
            embedded: false,
        }
    }
}
