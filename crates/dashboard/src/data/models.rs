//! `/models`: the registry (status, metrics vs baseline, data version, champion and
//! serving model), the deployment timeline with verifications and rollbacks, and the
//! registry audit trail.

use std::collections::BTreeMap;

use recops_deploy::{DeploymentLog, DeploymentRecord};
use recops_registry::{AuditRecord, Registry};
use serde::Serialize;

use super::{Ctx, When};
use crate::store::Panel;

/// Newest audit records shown.
const AUDIT_SHOWN: usize = 200;

/// One registered model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct ModelRow {
    pub(crate) model_id: String,
    pub(crate) model_type: String,
    pub(crate) status: String,
    pub(crate) metrics: BTreeMap<String, f64>,
    pub(crate) baseline: BTreeMap<String, f64>,
    pub(crate) registered_at: Option<When>,
    pub(crate) data_version: String,
    /// The registry's `current_best`.
    pub(crate) champion: bool,
    /// What the service runs (its `/health`, else the last successful deployment).
    pub(crate) serving: bool,
}

/// Everything `/models` shows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct ModelsView {
    pub(crate) champion: Option<String>,
    /// The registry's `deployed` (what operators decided to serve), when the registry
    /// has that field.
    pub(crate) deployed: Option<String>,
    pub(crate) serving: Serving,
    pub(crate) models: Panel<Vec<ModelRow>>,
    pub(crate) deployments: Panel<Vec<DeploymentRow>>,
    pub(crate) audit: Panel<Vec<AuditRecord>>,
}

/// Which model serves, and how we know.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Serving {
    pub(crate) model_id: Option<String>,
    /// `service /health`, `deployment history` or `unknown`.
    pub(crate) source: String,
}

/// One deployment, as shown.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct DeploymentRow {
    pub(crate) at: Option<When>,
    #[serde(flatten)]
    pub(crate) record: DeploymentRecord,
}

/// Reads `/models`.
pub(crate) fn load(ctx: &Ctx) -> ModelsView {
    let registry = Registry::open_read_only(&ctx.home);
    let serving = serving(ctx);
    let file = registry.load();
    let champion = file
        .as_ref()
        .ok()
        .and_then(|f| f.current_best.clone().map(String::from));
    let deployed = file.as_ref().ok().and_then(|f| deployed(&f.extra));
    let models = match file {
        Ok(f) => {
            let rows: Vec<ModelRow> = f
                .models
                .into_iter()
                .rev()
                .map(|(id, m)| ModelRow {
                    champion: champion.as_deref() == Some(id.as_str()),
                    serving: serving.model_id.as_deref() == Some(id.as_str()),
                    registered_at: ctx.when_str(&m.registered_at),
                    status: format!("{:?}", m.status).to_lowercase(),
                    model_id: id.into_string(),
                    model_type: m.model_type.to_string(),
                    metrics: m.metrics,
                    baseline: m.baseline,
                    data_version: m.data_version,
                })
                .collect();
            let empty = rows.is_empty();
            Panel::of(rows, empty, "no models registered yet: run model-training")
        }
        Err(e) => Panel::Unavailable {
            message: e.to_string(),
        },
    };
    ModelsView {
        champion,
        deployed,
        serving,
        models,
        deployments: history(ctx).map(|h| {
            h.into_iter()
                .map(|record| DeploymentRow {
                    at: ctx.when_str(&record.timestamp),
                    record,
                })
                .collect()
        }),
        audit: audit(&registry),
    }
}

/// `deployed` of the registry: a model id, or an object with `model_id`.
fn deployed(extra: &serde_json::Map<String, serde_json::Value>) -> Option<String> {
    let v = extra.get("deployed")?;
    v.as_str()
        .or_else(|| v.get("model_id")?.as_str())
        .map(str::to_owned)
}

/// The deployment history, newest first.
pub(crate) fn history(ctx: &Ctx) -> Panel<Vec<DeploymentRecord>> {
    match DeploymentLog::open_read_only(&ctx.home).load() {
        Ok(h) => {
            let rows: Vec<DeploymentRecord> = h.deployments.into_iter().rev().collect();
            let empty = rows.is_empty();
            Panel::of(rows, empty, "no deployments yet: run model-deployment")
        }
        Err(e) => Panel::Unavailable {
            message: e.to_string(),
        },
    }
}

fn audit(registry: &Registry) -> Panel<Vec<AuditRecord>> {
    match registry.audit() {
        Ok(a) => {
            let rows: Vec<AuditRecord> = a.into_iter().rev().take(AUDIT_SHOWN).collect();
            let empty = rows.is_empty();
            Panel::of(
                rows,
                empty,
                "no registry operations yet: model-training registers models",
            )
        }
        Err(e) => Panel::Unavailable {
            message: e.to_string(),
        },
    }
}

/// The model serving now: the service's `/health` when it answers, else the newest
/// successful deployment.
pub(crate) fn serving(ctx: &Ctx) -> Serving {
    let probe = super::overview::service_probe(ctx);
    if let Some(id) = probe
        .response
        .as_ref()
        .and_then(|r| r.get("model_id"))
        .and_then(|m| m.as_str())
    {
        return Serving {
            model_id: Some(id.to_owned()),
            source: "service /health".into(),
        };
    }
    let last = history(ctx).data().and_then(|h| {
        h.iter()
            .find(|d| d.status == recops_deploy::DeploymentStatus::Success)
            .map(|d| d.model_id.to_string())
    });
    match last {
        Some(id) => Serving {
            model_id: Some(id),
            source: "deployment history (service not reachable)".into(),
        },
        None => Serving {
            model_id: None,
            source: "unknown: the service is not reachable and nothing was deployed".into(),
        },
    }
}
