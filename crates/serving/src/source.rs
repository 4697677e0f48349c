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
