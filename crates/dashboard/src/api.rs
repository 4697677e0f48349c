//! `/api/v1/...`: the JSON behind every panel, exactly what the pages show.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::data::{alerts, drift, models, overview, pipelines, scheduler, service, training};
use crate::server::{AppState, blocking};

/// `GET /api/v1/overview`.
pub(crate) async fn overview(State(s): State<AppState>) -> Response {
    json(blocking(&s, overview::load).await)
}

/// `GET /api/v1/pipelines`.
pub(crate) async fn pipelines(
    State(s): State<AppState>,
    Query(f): Query<pipelines::RunFilter>,
) -> Response {
    json(blocking(&s, move |c| pipelines::load(c, f)).await)
}

/// `GET /api/v1/pipelines/runs/{run_id}`.
pub(crate) async fn pipeline_run(State(s): State<AppState>, Path(id): Path<String>) -> Response {
    json(blocking(&s, move |c| pipelines::detail(c, &id)).await)
}

/// Query of the trend charts.
#[derive(Debug, Deserialize)]
pub(crate) struct TrendQuery {
    /// `duration` or `success_rate`.
    chart: String,
    /// Days (default 30).
    days: Option<u32>,
}

/// `GET /api/v1/pipelines/trend?chart=duration|success_rate&days=30`.
pub(crate) async fn pipeline_trend(
    State(s): State<AppState>,
    Query(q): Query<TrendQuery>,
) -> Response {
    let which = match q.chart.as_str() {
        "success_rate" => pipelines::Trend::SuccessRate,
        _ => pipelines::Trend::Duration,
    };
    json(
        blocking(&s, move |c| {
            pipelines::trend(c, q.days.unwrap_or(30), which)
        })
        .await,
    )
}

/// `GET /api/v1/training`.
pub(crate) async fn training(
    State(s): State<AppState>,
    Query(f): Query<training::TrainingFilter>,
) -> Response {
    json(blocking(&s, move |c| training::load(c, f)).await)
}

/// `GET /api/v1/training/runs/{run_id}`.
pub(crate) async fn training_run(State(s): State<AppState>, Path(id): Path<String>) -> Response {
    json(blocking(&s, move |c| training::detail(c, &id)).await)
}

/// `GET /api/v1/training/runs/{run_id}/curves`.
pub(crate) async fn training_curves(State(s): State<AppState>, Path(id): Path<String>) -> Response {
    json(blocking(&s, move |c| training::run_curves(c, &id)).await)
}

/// Query of a comparison: `runs=a,b` and/or repeated `run=a&run=b` (the checkboxes of
/// the training page), and `curve`.
#[derive(Debug, Deserialize)]
#[serde(transparent)]
pub(crate) struct CompareQuery(Vec<(String, String)>);

impl CompareQuery {
    /// The run ids asked for, in order, without duplicates.
    pub(crate) fn ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = Vec::new();
        let values = self.0.iter().filter(|(k, _)| k == "run" || k == "runs");
        for id in values.flat_map(|(_, v)| v.split(',')).map(str::trim) {
            if !id.is_empty() && !ids.iter().any(|i| i == id) {
                ids.push(id.to_owned());
            }
        }
        ids
    }

    /// The value compared (default validation ndcg).
    fn curve(&self) -> training::Curve {
        let v = self
            .0
            .iter()
            .find(|(k, _)| k == "curve")
            .map(|(_, v)| v.as_str());
        match v {
            Some("loss") => training::Curve::Loss,
            Some("validation_recall") => training::Curve::ValidationRecall,
            _ => training::Curve::ValidationNdcg,
        }
    }
}

/// `GET /api/v1/training/compare?runs=a,b&curve=loss`.
pub(crate) async fn training_compare(
    State(s): State<AppState>,
    Query(q): Query<CompareQuery>,
) -> Response {
    let curve = q.curve();
    json(blocking(&s, move |c| training::compare(c, &q.ids(), curve)).await)
}

/// `GET /api/v1/training/evaluation`.
pub(crate) async fn training_evaluation(State(s): State<AppState>) -> Response {
    json(blocking(&s, training::evaluation_trend).await)
}

/// `GET /api/v1/models`.
pub(crate) async fn models(State(s): State<AppState>) -> Response {
    json(blocking(&s, models::load).await)
}

/// `GET /api/v1/service?range=24h`.
pub(crate) async fn service(
    State(s): State<AppState>,
    Query(q): Query<service::ServiceQuery>,
) -> Response {
    json(blocking(&s, move |c| service::load(c, q)).await)
}

/// Query of a service chart.
#[derive(Debug, Deserialize)]
pub(crate) struct ServiceChartQuery {
    #[serde(default)]
    range: service::Range,
    chart: service::ServiceChart,
}

/// `GET /api/v1/service/chart?range=24h&chart=requests|latency|rates`.
pub(crate) async fn service_chart(
    State(s): State<AppState>,
    Query(q): Query<ServiceChartQuery>,
) -> Response {
    json(blocking(&s, move |c| service::chart(c, q.range, q.chart)).await)
}

/// `GET /api/v1/drift`.
pub(crate) async fn drift(State(s): State<AppState>) -> Response {
    json(blocking(&s, drift::load).await)
}

/// Query of a drift chart.
#[derive(Debug, Deserialize)]
pub(crate) struct DriftChartQuery {
    chart: drift::DriftChart,
}

/// `GET /api/v1/drift/chart?chart=severity|popularity|volume`.
pub(crate) async fn drift_chart(
    State(s): State<AppState>,
    Query(q): Query<DriftChartQuery>,
) -> Response {
    json(blocking(&s, move |c| drift::chart(c, q.chart)).await)
}

/// `GET /api/v1/alerts`.
pub(crate) async fn alerts(State(s): State<AppState>) -> Response {
    json(blocking(&s, alerts::load).await)
}

/// `GET /api/v1/scheduler`.
pub(crate) async fn scheduler(State(s): State<AppState>) -> Response {
    json(blocking(&s, scheduler::load).await)
}

fn json<T: serde::Serialize>(value: Result<T, Response>) -> Response {
    match value {
        Ok(v) => Json(v).into_response(),
        Err(r) => r,
    }
}
