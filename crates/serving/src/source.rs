//! Where the service gets its models from.

use recops_core::ModelId;

use crate::error::Result;
use crate::model::ServingModel;

/// Loads models by id. The service calls it off the request path (in a blocking task).
pub trait ModelSource: Send + Sync + 'static {
    /// The model to serve at start-up (the registry's `deployed` model, else its
    /// `current_best`), if there is one.
    fn initial_model_id(&self) -> Result<Option<ModelId>>;

    /// Loads and validates the model `model_id`. Errors say why it cannot be served
    /// (unknown or archived id, missing or corrupt files, shapes that disagree).
    fn load(&self, model_id: &ModelId) -> Result<ServingModel>;

    /// The servable check of `model_id` without loading it: every reload must pass it,
    /// also one served from memory (the previous model). Default: accept.
    fn admit(&self, model_id: &ModelId) -> Result<()> {
        let _ = model_id;
        Ok(())
    }

    /// Called after a `/reload_model` request swapped `model_id` in, so that a direct
    /// reload leaves a deployment record. Default: nothing.
    fn reloaded(&self, model_id: &ModelId, previous_model_id: Option<&ModelId>) -> Result<()> {
        let _ = (model_id, previous_model_id);
        Ok(())
    }
}

use recops_cf_training::{CfModel, ServingIndex};
use recops_core::Home;
use recops_registry::{DeployedBy, Error as RegistryError, Registry};

use crate::error::{Error, Unavailable};
use crate::model::ModelParts;

/// Models of a recops home: ids from `artifacts/cf/registry.json`, files from
/// `artifacts/cf/<model_id>/` (`model.json`, `model.safetensors`,
/// `serving.safetensors`).
#[derive(Debug, Clone)]
pub struct HomeModelSource {
    home: Home,
}

impl HomeModelSource {
    /// The models of `home`.
    pub fn new(home: Home) -> Self {
        HomeModelSource { home }
    }
}

impl ModelSource for HomeModelSource {
    fn initial_model_id(&self) -> Result<Option<ModelId>> {
        let reg = Registry::open(&self.home).load().map_err(Error::Registry)?;
        if let Some(d) = reg.deployed {
            tracing::info!(model_id = %d.model_id, by = %d.action, since = %d.deployed_at, "starting from the deployed model");
            return Ok(Some(d.model_id));
        }
        Ok(reg.current_best)
    }

    fn admit(&self, model_id: &ModelId) -> Result<()> {
        Registry::open(&self.home)
            .servable(model_id)
            .map(|_| ())
            .map_err(|e| unavailable(model_id, e))
    }

    fn reloaded(&self, model_id: &ModelId, previous_model_id: Option<&ModelId>) -> Result<()> {
        let reason = format!(
            "POST /reload_model (previous: {})",
            previous_model_id.map_or("none", ModelId::as_str)
        );
        Registry::open(&self.home)
            .record_deployment(model_id, DeployedBy::Reload, &reason)
            .map(|_| ())
            .map_err(|e| Error::ModelUnavailable {
                model_id: model_id.to_string(),
                reason: Unavailable::Record(e),
            })
    }

    fn load(&self, model_id: &ModelId) -> Result<ServingModel> {
        let invalid = |source| Error::ModelFiles {
            model_id: model_id.to_string(),
            source,
        };
        // The registry's checksum of every file first: a replica on a shared
        // artifacts mount refuses a torn or damaged copy, naming the file.
        Registry::open(&self.home)
            .servable_verified(model_id)
            .map_err(|e| unavailable(model_id, e))?;
        let dir = self.home.model_dir(model_id);
        if !dir.join(recops_cf_training::MODEL_META_FILE).exists() {
            return Err(Error::ModelUnavailable {
                model_id: model_id.to_string(),
                reason: Unavailable::MissingFiles(dir),
            });
        }
        let model = CfModel::load(&dir).map_err(invalid)?;
        let (nu, ni) = (model.user_ids.len(), model.item_ids.len());
        let index = ServingIndex::load(&dir, nu, ni).map_err(invalid)?;
        let factors = model.item_factors.cols();
        ServingModel::new(ModelParts {
            model_id: model.meta.model_id.clone(),
            model_type: model.meta.model_type,
            user_ids: model.user_ids,
            item_ids: model.item_ids,
            factors,
            user_factors: model.user_factors.into_vec(),
            item_factors: model.item_factors.into_vec(),
            seen_indptr: index.seen_indptr,
            seen_indices: index.seen_indices,
            item_popularity: index.item_popularity,
        })
    }
}

/// The registry's refusal of `model_id` as a serving error.
fn unavailable(model_id: &ModelId, e: RegistryError) -> Error {
    let reason = match e {
        RegistryError::NotFound { .. } => Unavailable::NotRegistered,
        RegistryError::NotServable { .. } | RegistryError::Archived { .. } => Unavailable::Archived,
        RegistryError::MissingFiles { path, .. } => Unavailable::MissingFiles(path),
        e @ (RegistryError::ChecksumMismatch { .. } | RegistryError::FileUnreadable { .. }) => {
            Unavailable::Damaged(e)
        }
        e => Unavailable::Registry(e),
    };
    Error::ModelUnavailable {
        model_id: model_id.to_string(),
        reason,
    }
}
