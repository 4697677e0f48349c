//! recops-deploy: deploy a model to the recommender service, verify it from outside,
//! roll back when it is wrong, and keep `logs/deployment_history.json`.
//!
//! - [`Deployer::deploy`]: the spec's `deploy_model` — `POST /reload_model`, then
//!   [`Deployer::verify`] (health, model id, and recommendations for **every** test user,
//!   plus the fallback for an unknown user), then an automatic rollback to the previous
//!   model when verification fails. Deploying the model already live is a no-op.
//! - [`Deployer::rollback`]: `model-deployment --rollback`.
//! - Several replicas ([`DeployOptions::service_urls`], `service.urls` in
//!   `config/recops.yaml`): every replica is reloaded, then every replica verified; when
//!   any fails, every replica that switched goes back to its previous model and one
//!   history record names the failing replica. Rollbacks reach every replica too.
//! - [`DeploymentHistory`]: the history file, written atomically; a corrupt file is
//!   refused and never overwritten.
//! - **Backends** ([`DeploymentStore`]): [`FileDeploymentStore`]
//!   (`logs/deployment_history.json` and `logs/rollback_intent.json`, the default)
//!   and [`PgDeploymentStore`] (tables `deployment_history`, `deployment_intents`,
//!   [`PG_DEPLOYMENT_MIGRATIONS`]). [`DeploymentLog::open`] picks the one
//!   `storage.url` names on first use; every user goes through it (the deployer,
//!   `model-deployment`, maintenance, `recops deployments`, the dashboard read-only).
//! - [`migrate_records`]: `recops storage migrate` for the registry, its audit and the
//!   deployment history, resumable and verified by counts and checksums.
//!
//! The service is reached over HTTP only; which model to deploy and which users to test
//! with are decided by the caller (the `model_deployment` job reads the registry).
//!
//! ```
//! use recops_deploy::TestUsers;
//!
//! let users = TestUsers::sample(&[10, 20, 30, 40, 50, 60], 3);
//! assert_eq!(users.known, vec![10, 30, 50]);
//! assert_eq!(users.unknown, 61);
//! ```

mod deployer;
mod error;
mod history;
mod migrate;
mod store;

pub use deployer::{DeployOptions, DeployResult, Deployer, DeploymentOutcome, TestUsers};
pub use error::{Error, Result};
pub use history::{
    DeploymentAction, DeploymentHistory, DeploymentRecord, DeploymentStatus, RollbackStatus,
    Verification,
};
pub use migrate::migrate_records;
pub use store::{
    DeploymentLog, DeploymentStore, FileDeploymentStore, PG_DEPLOYMENT_MIGRATIONS,
    PgDeploymentStore, open_store,
};
