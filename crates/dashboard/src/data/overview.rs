//! `/`: the whole system in one glance: health per component with the reason, the
//! model serving vs the registry's champion, alerts firing, the last run of each
//! pipeline, the latest drift severity and the next scheduled jobs.

use std::sync::Arc;
use std::time::Duration;

use recops_health::{ComponentStatus, ServiceHealth};
use serde::Serialize;

use super::{Ctx, When, alerts, drift, models, pipelines, scheduler};
use crate::store::Panel;

/// How long a probe of the service is reused.
const PROBE_TTL: Duration = Duration::from_secs(10);

/// Green, amber or red.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Light {
    Green,
    Amber,
    Red,
}

/// One component's health.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct ComponentRow {
    pub(crate) component: &'static str,
    pub(crate) light: Light,
    pub(crate) reason: String,
}

/// Everything `/` shows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct OverviewView {
    pub(crate) health: Vec<ComponentRow>,
    pub(crate) serving: models::Serving,
    pub(crate) champion: Option<String>,
    pub(crate) firing: Panel<Vec<alerts::StateRow>>,
    pub(crate) last_runs: Panel<Vec<pipelines::RunRow>>,
    pub(crate) drift: Panel<drift::ReportRow>,
    pub(crate) next_jobs: Panel<Vec<(String, When)>>,
}

/// Reads `/`.
pub(crate) fn load(ctx: &Ctx) -> OverviewView {
    let models = models::load(ctx);
    let firing = alerts::states(ctx).and_then(|s| {
        let firing: Vec<_> = s.into_iter().filter(|s| s.status == "firing").collect();
        let empty = firing.is_empty();
        Panel::of(firing, empty, "no alert is firing")
    });
    let last_runs = last_runs(ctx);
    let drift = drift::latest_row(ctx);
    OverviewView {
        health: health(ctx, &models, &last_runs),
        serving: models.serving,
        champion: models.champion,
        firing,
        last_runs,
        drift,
        next_jobs: scheduler::next_jobs(ctx, 5),
    }
}

/// The recommender's `/health`, probed at most every 10 s.
pub(crate) fn service_probe(ctx: &Ctx) -> Arc<ServiceHealth> {
    ctx.cache.get_or("probe:service", PROBE_TTL, || {
        recops_health::check_service_health(&ctx.service_url, Duration::from_secs(1))
    })
}

fn last_runs(ctx: &Ctx) -> Panel<Vec<pipelines::RunRow>> {
    let hint = "no pipeline runs yet: run data-refresh, model-training or start the scheduler";
    pipelines::latest_of_each(ctx, hint)
}

fn health(
    ctx: &Ctx,
    m: &models::ModelsView,
    runs: &Panel<Vec<pipelines::RunRow>>,
) -> Vec<ComponentRow> {
    vec![
        service_light(ctx),
        data_light(ctx),
        model_light(m),
        pipeline_light(runs),
        embeddings_light(ctx),
    ]
}

fn light(s: ComponentStatus) -> Light {
    match s {
        ComponentStatus::Healthy => Light::Green,
        ComponentStatus::Warning => Light::Amber,
        ComponentStatus::Unhealthy => Light::Red,
    }
}

fn service_light(ctx: &Ctx) -> ComponentRow {
    let p = service_probe(ctx);
    let reason = match (&p.error, p.latency_ms) {
        (Some(e), _) => e.clone(),
        (None, Some(ms)) => format!("{} answered in {ms:.0} ms", p.url),
        (None, None) => p.url.clone(),
    };
    ComponentRow {
        component: "service",
        light: light(p.status),
        reason,
    }
}

fn data_light(ctx: &Ctx) -> ComponentRow {
    let required = recops_core::RecopsConfig::load(&ctx.home)
        .map(|c| c.health.required_files)
        .unwrap_or_default();
    let d = recops_health::check_data_health(&ctx.home, &required);
    let reason = if d.missing.is_empty() {
        format!("{} required files present", d.files.len())
    } else {
        format!("missing: {} (run data-refresh)", d.missing.join(", "))
    };
    ComponentRow {
        component: "data",
        light: light(d.status),
        reason,
    }
}

fn model_light(m: &models::ModelsView) -> ComponentRow {
    let (l, reason) = match (&m.champion, &m.serving.model_id) {
        (None, _) => (
            Light::Red,
            "no champion in the registry: run model-training".to_owned(),
        ),
        (Some(c), Some(s)) if c == s => (Light::Green, format!("{s} serves and is the champion")),
        (Some(c), Some(s)) => (
            Light::Amber,
            format!("{s} serves, the champion is {c} (run model-deployment)"),
        ),
        (Some(c), None) => (
            Light::Amber,
            format!("champion {c}; serving model unknown ({})", m.serving.source),
        ),
    };
    ComponentRow {
        component: "model",
        light: l,
        reason,
    }
}

fn pipeline_light(runs: &Panel<Vec<pipelines::RunRow>>) -> ComponentRow {
    let (l, reason) = match runs {
        Panel::Ready { data } => {
            let failed: Vec<&str> = data
                .iter()
                .filter(|r| r.status == "failed")
                .map(|r| r.pipeline_name.as_str())
                .collect();
            let stale: Vec<&str> = data
                .iter()
                .filter(|r| r.stale)
                .map(|r| r.pipeline_name.as_str())
                .collect();
            if !failed.is_empty() {
                (
                    Light::Red,
                    format!("last run failed: {}", failed.join(", ")),
                )
            } else if !stale.is_empty() {
                (
                    Light::Amber,
                    format!("running for too long: {}", stale.join(", ")),
                )
            } else {
                (
                    Light::Green,
                    format!(
                        "last run of all {} pipelines succeeded or is running",
                        data.len()
                    ),
                )
            }
        }
        Panel::Empty { hint } => (Light::Amber, hint.clone()),
        Panel::Stale { notice } => (Light::Amber, notice.clone()),
        Panel::Unavailable { message } => (Light::Red, message.clone()),
    };
    ComponentRow {
        component: "pipeline",
        light: l,
        reason,
    }
}

fn embeddings_light(ctx: &Ctx) -> ComponentRow {
    let e = ctx
        .cache
        .get_or("probe:embeddings", Duration::from_secs(60), || {
            recops_health::check_embeddings_health(&ctx.home, ctx.clock.as_ref())
        });
    let reason = e
        .message
        .clone()
        .unwrap_or_else(|| match (e.age_days, e.num_embeddings) {
            (Some(a), Some(n)) => format!("{n} vectors, {a} days old"),
            _ => "fresh".to_owned(),
        });
    ComponentRow {
        component: "embeddings",
        light: light(e.status),
        reason,
    }
}
