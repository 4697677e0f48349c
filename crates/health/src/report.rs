//! The health report: the checks of [`crate::checks`] aggregated into one verdict
//! (spec Component 3, `run_health_check`'s result).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::checks::{
    ComponentStatus, DataHealth, DeploymentHealth, EmbeddingsHealth, ModelHealth, PipelineHealth,
    ServiceHealth, ServiceMetricsHealth,
};

/// The health report (`health-check --json`): the spec's four checks, plus embeddings
/// and service metrics, aggregated.
#[derive(Debug, Clone, Serialize)]
pub struct HealthReport {
    /// RFC 3339 time of the check.
    pub timestamp: String,
    /// No component is unhealthy (warnings allowed).
    pub healthy: bool,
    /// `healthy` or `unhealthy`.
    pub status: &'static str,
    /// Status per component.
    pub components: BTreeMap<&'static str, ComponentStatus>,
    /// `/health` of the recommender.
    pub service: ServiceHealth,
    /// The required data files.
    pub data: DataHealth,
    /// Registry and current best model.
    pub model: ModelHealth,
    /// Pipeline success rates.
    pub pipeline: PipelineHealth,
    /// Product embeddings freshness.
    pub embeddings: EmbeddingsHealth,
    /// Service metrics of the last hour and the alert rules they trigger.
    pub service_metrics: ServiceMetricsHealth,
    /// Desired vs actual serving state: the registry's deployed model against what
    /// the service reports.
    pub deployment: DeploymentHealth,
    /// The run in `logs/pipeline_metrics.db`.
    pub run_id: Option<String>,
}

impl HealthReport {
    /// `service: unreachable ...; model: No current best model`.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        let mut add = |name: &str, status: ComponentStatus, why: Option<String>| {
            if status != ComponentStatus::Healthy {
                p.push(format!(
                    "{name} {}: {}",
                    status_str(status),
                    why.unwrap_or_default()
                ));
            }
        };
        add("service", self.service.status, self.service.error.clone());
        add(
            "data",
            self.data.status,
            Some(format!("missing {}", self.data.missing.join(", "))),
        );
        add("model", self.model.status, self.model.error.clone());
        add(
            "pipeline",
            self.pipeline.status,
            Some(match &self.pipeline.error {
                Some(e) => e.clone(),
                None => format!(
                    "success rate below 50 %: {}",
                    self.pipeline.unhealthy_pipelines.join(", ")
                ),
            }),
        );
        add(
            "embeddings",
            self.embeddings.status,
            self.embeddings.message.clone(),
        );
        add(
            "deployment",
            self.deployment.status,
            self.deployment.message.clone(),
        );
        add(
            "service_metrics",
            self.service_metrics.status,
            Some(match &self.service_metrics.error {
                Some(e) => e.clone(),
                None => self
                    .service_metrics
                    .triggered
                    .iter()
                    .filter_map(|t| {
                        t.get("alert_name")
                            .and_then(|n| n.as_str())
                            .map(str::to_owned)
                    })
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
        );
        p
    }
}

fn status_str(s: ComponentStatus) -> &'static str {
    match s {
        ComponentStatus::Healthy => "healthy",
        ComponentStatus::Warning => "warning",
        ComponentStatus::Unhealthy => "unhealthy",
    }
}

/// The results of the seven checks, before aggregation.
#[derive(Debug, Clone)]
pub struct HealthChecks {
    /// `/health` of the recommender.
    pub service: ServiceHealth,
    /// The required data files.
    pub data: DataHealth,
    /// Registry and current best model.
    pub model: ModelHealth,
    /// Pipeline success rates.
    pub pipeline: PipelineHealth,
    /// Product embeddings freshness.
    pub embeddings: EmbeddingsHealth,
    /// Service metrics and the alert rules they trigger.
    pub service_metrics: ServiceMetricsHealth,
    /// Deployed vs served model.
    pub deployment: DeploymentHealth,
}

impl HealthReport {
    /// Aggregates the seven checks: healthy when no component is unhealthy (warnings
    /// allowed). `run_id` is left empty for the job to fill.
    pub fn aggregate(timestamp: String, checks: HealthChecks) -> Self {
        let HealthChecks {
            service,
            data,
            model,
            pipeline,
            embeddings,
            service_metrics,
            deployment,
        } = checks;
        let components = BTreeMap::from([
            ("service", service.status),
            ("data", data.status),
            ("model", model.status),
            ("pipeline", pipeline.status),
            ("embeddings", embeddings.status),
            ("service_metrics", service_metrics.status),
            ("deployment", deployment.status),
        ]);
        let healthy = components
            .values()
            .all(|s| *s != ComponentStatus::Unhealthy);
        HealthReport {
            timestamp,
            healthy,
            status: if healthy { "healthy" } else { "unhealthy" },
            components,
            service,
            data,
            model,
            pipeline,
            embeddings,
            service_metrics,
            deployment,
            run_id: None,
        }
    }

    /// The line of `logs/health_check.log`:
    /// `UNHEALTHY | data=healthy ... service=unhealthy | service unhealthy: ...`.
    pub fn summary_line(&self) -> String {
        let problems = self.problems();
        format!(
            "{} | {}{}",
            if self.healthy { "HEALTHY" } else { "UNHEALTHY" },
            self.components
                .iter()
                .map(|(k, v)| format!("{k}={}", status_str(*v)))
                .collect::<Vec<_>>()
                .join(" "),
            if problems.is_empty() {
                String::new()
            } else {
                format!(" | {}", problems.join("; "))
            }
        )
    }
}
