//! The HTTP server: routes, security headers, embedded assets, start and stop.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::auth::Guard;
use crate::data::Ctx;
use crate::{api, pages};

/// The Content-Security-Policy of every response: nothing but this server.
pub(crate) const CSP: &str = "default-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// What every handler shares.
#[derive(Debug, Clone)]
pub(crate) struct AppState {
    pub(crate) ctx: Arc<Ctx>,
    pub(crate) guard: Arc<Guard>,
}

/// Runs `f` on the blocking pool (SQLite, files, the service probe).
pub(crate) async fn blocking<T: Send + 'static>(
    s: &AppState,
    f: impl FnOnce(&Ctx) -> T + Send + 'static,
) -> Result<T, Response> {
    let ctx = s.ctx.clone();
    tokio::task::spawn_blocking(move || f(&ctx))
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "dashboard request failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal error: see the dashboard log",
            )
                .into_response()
        })
}

/// Every route.
pub(crate) fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(pages::overview))
        .route("/pipelines", get(pages::pipelines))
        .route("/pipelines/runs/{run_id}", get(pages::pipeline_run))
        .route("/training", get(pages::training))
        .route("/training/runs/{run_id}", get(pages::training_run))
        .route("/training/compare", get(pages::training_compare))
        .route("/models", get(pages::models))
        .route("/models/rollback", post(pages::rollback))
        .route("/service", get(pages::service))
        .route("/drift", get(pages::drift))
        .route("/alerts", get(pages::alerts))
        .route("/alerts/silences", post(pages::create_silence))
        .route("/alerts/silences/expire", post(pages::expire_silence))
        .route("/scheduler", get(pages::scheduler))
        .route("/metrics", get(crate::metrics::handler))
        .nest("/api/v1", api_routes())
        .route("/assets/{name}", get(asset))
        .fallback(pages::not_found)
        .layer(middleware::from_fn(security_headers))
        .with_state(state)
}

fn api_routes() -> Router<AppState> {
    Router::new()
        .route("/overview", get(api::overview))
        .route("/pipelines", get(api::pipelines))
        .route("/pipelines/runs/{run_id}", get(api::pipeline_run))
        .route("/pipelines/trend", get(api::pipeline_trend))
        .route("/training", get(api::training))
        .route("/training/evaluation", get(api::training_evaluation))
        .route("/training/compare", get(api::training_compare))
        .route("/training/runs/{run_id}", get(api::training_run))
        .route("/training/runs/{run_id}/curves", get(api::training_curves))
        .route("/models", get(api::models))
        .route("/service", get(api::service))
        .route("/service/chart", get(api::service_chart))
        .route("/drift", get(api::drift))
        .route("/drift/chart", get(api::drift_chart))
        .route("/alerts", get(api::alerts))
        .route("/scheduler", get(api::scheduler))
}

async fn security_headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    res
}

/// The files embedded in the binary: uPlot (MIT, its license beside it) and ours.
const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "uPlot.iife.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/uPlot.iife.min.js"),
    ),
    (
        "uPlot.min.css",
        "text/css; charset=utf-8",
        include_bytes!("../assets/uPlot.min.css"),
    ),
    (
        "uPlot.LICENSE",
        "text/plain; charset=utf-8",
        include_bytes!("../assets/uPlot.LICENSE"),
    ),
    (
        "dashboard.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/dashboard.js"),
    ),
    (
        "dashboard.css",
        "text/css; charset=utf-8",
        include_bytes!("../assets/dashboard.css"),
    ),
    (
        "favicon.svg",
        "image/svg+xml",
        include_bytes!("../assets/favicon.svg"),
    ),
];

async fn asset(axum::extract::Path(name): axum::extract::Path<String>) -> Response {
    match ASSETS.iter().find(|(n, _, _)| *n == name) {
        Some((_, mime, body)) => (
            [
                (header::CONTENT_TYPE, *mime),
                (header::CACHE_CONTROL, "public, max-age=3600"),
            ],
            *body,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such asset").into_response(),
    }
}

/// Serves `router` on `listener` until `shutdown` completes.
pub(crate) async fn run(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let addr: Option<SocketAddr> = listener.local_addr().ok();
    tracing::info!(addr = ?addr, "dashboard listening");
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}
