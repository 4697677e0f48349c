//! recops-health: "is everything OK?" (spec Component 3).
//!
//! Checks: service (`/health` within 5 s; every replica of `service.urls` with
//! [`check_replicas_health`]), data (the required files), model (registry,
//! current best, its files), pipelines (success rate over 7 days), embeddings
//! freshness, and the service metrics of the last hour. Every check reports problems
//! as `healthy: false` with a reason; none of them panics or aborts the run.
//!
//! ```
//! use recops_core::Home;
//! use recops_health::check_data_health;
//!
//! let dir = tempfile::tempdir()?;
//! let data = check_data_health(&Home::new(dir.path()), &["data/processed/interactions.parquet".into()]);
//! assert!(!data.healthy);
//! assert_eq!(data.missing, vec!["data/processed/interactions.parquet"]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod checks;
mod error;
mod report;

pub use checks::{
    ComponentStatus, DataHealth, DeploymentHealth, EmbeddingsHealth, FileStatus, ModelHealth,
    PipelineHealth, ServiceHealth, ServiceMetricsHealth, check_data_health, check_deployment,
    check_embeddings_health, check_model_health, check_pipeline_health, check_replicas_health,
    check_service_health, load_model, read_service_metrics,
};
pub use error::{Error, Result};
pub use report::{HealthChecks, HealthReport};
