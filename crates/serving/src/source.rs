//! Where the service gets its models from.

use crate::error::Result;
use crate::model::ServingModel;

/// Loads models by id. The service calls it off the request path (in a blocking task).
pub trait ModelSource: Send + Sync + 'static {
    /// The model to serve at start-up (the registry's `current_best`), if there is one.
    fn initial_model_id(&self) -> Result<Option<String>>;

    /// Loads and validates the model `model_id`. Errors say why it cannot be served
    /// (unknown or archived id, missing or corrupt files, shapes that disagree).
    fn load(&self, model_id: &str) -> Result<ServingModel>;
}

use recops_cf_training::{CfModel, ServingIndex};
use recops_core::{Home, error_chain};
use recops_registry::{Error as RegistryError, Registry};

use crate::error::Error;
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
    fn initial_model_id(&self) -> Result<Option<String>> {
        Registry::open(&self.home)
            .current_best()
            .map(|best| best.map(|(id, _)| id))
            .map_err(|e| Error::ModelUnavailable {
                model_id: "current_best".into(),
                reason: error_chain(&e),
            })
    }

    fn load(&self, model_id: &str) -> Result<ServingModel> {
        let unavailable = |reason: String| Error::ModelUnavailable {
            model_id: model_id.to_owned(),
            reason,
        };
        let invalid = |reason: String| Error::InvalidModel {
            model_id: model_id.to_owned(),
            reason,
        };
        Registry::open(&self.home)
            .servable(model_id)
            .map_err(|e| match e {
                RegistryError::NotFound { .. } => unavailable("not in the registry".into()),
                RegistryError::NotServable { .. } => unavailable("archived in the registry".into()),
                e => unavailable(error_chain(&e)),
            })?;
        let dir = self.home.model_dir(model_id)?;
        if !dir.join(recops_cf_training::MODEL_META_FILE).exists() {
            return Err(unavailable(format!(
                "its files are missing in {}",
                dir.display()
            )));
        }
        let model = CfModel::load(&dir).map_err(|e| invalid(error_chain(&e)))?;
        let (nu, ni) = (model.user_ids.len(), model.item_ids.len());
        let index = ServingIndex::load(&dir, nu, ni).map_err(|e| invalid(error_chain(&e)))?;
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
