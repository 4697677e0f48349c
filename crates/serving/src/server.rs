//! The HTTP service: routes, hot reload, metrics middleware, rollup flushing.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use axum::body::Body;
use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use recops_core::{ModelId, SharedClock, error_chain, format_timestamp};
use recops_tracking::ServiceMetricsStore;
use serde::Deserialize;
use serde_json::json;

use crate::error::{Error, Unavailable};
use crate::metrics::Metrics;
use crate::model::ServingModel;
use crate::source::ModelSource;

/// Environment variable holding the admin token that `/reload_model` requires.
pub const ADMIN_TOKEN_ENV: &str = "RECOPS_ADMIN_TOKEN";

/// Behaviour of the service.
#[derive(Debug, Clone)]
pub struct ServiceOptions {
    /// Token `/reload_model` requires as `Authorization: Bearer <token>`; `None` leaves
    /// it open (a warning is logged at start).
    pub admin_token: Option<String>,
    /// Largest `topk` accepted (default 100).
    pub max_topk: usize,
    /// `topk` when the request has none (default 10).
    pub default_topk: usize,
    /// Largest request body in bytes (default 16 KiB).
    pub body_limit_bytes: usize,
    /// How often rollups are written to `service_metrics.db` (default 10 s).
    pub flush_interval: Duration,
    /// Connections served at once (default 1024); at the cap the service stops
    /// accepting until one closes, and logs a warning.
    pub max_connections: usize,
    /// Time to receive a request's complete headers, from when the connection is ready
    /// for it (default 10 s).
    pub header_read_timeout: Duration,
    /// Time to receive a request's complete body after its headers (default 10 s);
    /// slower bodies get 408 and the connection is closed.
    pub body_read_timeout: Duration,
    /// A keep-alive connection silent this long between requests is closed (default
    /// 5 s).
    pub idle_timeout: Duration,
    /// At shutdown, requests in flight get this long before the remaining
    /// connections are closed (default 10 s). The final metrics flush runs either way.
    pub drain_timeout: Duration,
    /// Serve on a non-loopback address without an admin token (default false: the
    /// service refuses to start, since `/reload_model` would be open to the network).
    pub allow_unauthenticated: bool,
    /// The `instance` label on every `/metrics` sample (`service.instance`); `None`:
    /// `<host name>:<port>`, so replicas on different machines differ.
    pub instance: Option<String>,
}

impl Default for ServiceOptions {
    fn default() -> Self {
        ServiceOptions {
            admin_token: None,
            max_topk: 100,
            default_topk: 10,
            body_limit_bytes: 16 * 1024,
            flush_interval: Duration::from_secs(10),
            max_connections: 1024,
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(5),
            drain_timeout: Duration::from_secs(10),
            allow_unauthenticated: false,
            instance: None,
        }
    }
}

impl ServiceOptions {
    /// Defaults with the connection limits of `config/recops.yaml` (`service:`).
    pub fn from_settings(settings: &recops_core::ServiceSettings) -> Self {
        ServiceOptions {
            max_connections: settings.max_connections,
            header_read_timeout: Duration::from_secs(settings.header_read_timeout_secs),
            body_read_timeout: Duration::from_secs(settings.body_read_timeout_secs),
            idle_timeout: Duration::from_secs(settings.idle_timeout_secs),
            drain_timeout: Duration::from_secs(settings.drain_timeout_secs),
            instance: Some(settings.instance.trim().to_owned()).filter(|i| !i.is_empty()),
            ..ServiceOptions::default()
        }
    }
}

/// A loaded model and when it was loaded.
#[derive(Debug)]
struct Loaded {
    model: ServingModel,
    loaded_at: DateTime<Utc>,
}

/// Shared state of the service.
pub(crate) struct AppState {
    source: Arc<dyn ModelSource>,
    current: ArcSwapOption<Loaded>,
    previous: Mutex<Option<Arc<Loaded>>>,
    reload_lock: tokio::sync::Mutex<()>,
    pub(crate) metrics: Metrics,
    options: ServiceOptions,
    clock: SharedClock,
    started: Instant,
    pub(crate) store: Option<Arc<ServiceMetricsStore>>,
}

impl AppState {
    pub(crate) fn new(
        source: Arc<dyn ModelSource>,
        store: Option<Arc<ServiceMetricsStore>>,
        options: ServiceOptions,
        clock: SharedClock,
    ) -> Self {
        AppState {
            source,
            current: ArcSwapOption::empty(),
            previous: Mutex::new(None),
            reload_lock: tokio::sync::Mutex::new(()),
            metrics: Metrics::new(clock.now()),
            options,
            clock,
            started: Instant::now(),
            store,
        }
    }

    /// Loads the registry's current best at start; a failure leaves the service
    /// running, not ready, and is logged.
    pub(crate) async fn load_initial(self: &Arc<Self>) {
        let source = self.source.clone();
        let id = match tokio::task::spawn_blocking(move || source.initial_model_id()).await {
            Ok(Ok(Some(id))) => id,
            Ok(Ok(None)) => {
                tracing::warn!(
                    "no current_best model in the registry: serving not ready until a model is deployed"
                );
                return;
            }
            Ok(Err(e)) => {
                tracing::error!(error = %error_chain(&e), "cannot read the registry: serving not ready");
                return;
            }
            Err(e) => {
                tracing::error!(error = %e, "model loading task failed");
                return;
            }
        };
        match self.reload(&id).await {
            Ok(_) => {}
            Err(e) => {
                tracing::error!(model_id = %id, error = %error_chain(&e), "cannot load the deployed model: serving not ready")
            }
        }
    }

    /// Loads `model_id` off the request path, validates it, and swaps it in. The model
    /// it replaces stays in memory, so reloading it again is instant (a rollback).
    async fn reload(&self, model_id: &ModelId) -> Result<ReloadOutcome, Error> {
        let _guard = self.reload_lock.lock().await;
        let started = Instant::now();
        // The one servable check, also for the previous model kept in memory.
        let source = self.source.clone();
        let id = model_id.clone();
        tokio::task::spawn_blocking(move || source.admit(&id))
            .await
            .map_err(|source| Error::ModelUnavailable {
                model_id: model_id.to_string(),
                reason: Unavailable::Task {
                    what: "servable check",
                    source,
                },
            })??;
        let current = self.current.load_full();
        let kept = self
            .previous
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .filter(|p| p.model.model_id() == model_id);
        let (next, from_memory) = match kept {
            Some(p) => (p, true),
            None => {
                let source = self.source.clone();
                let id = model_id.clone();
                let model = tokio::task::spawn_blocking(move || source.load(&id))
                    .await
                    .map_err(|source| Error::ModelUnavailable {
                        model_id: model_id.to_string(),
                        reason: Unavailable::Task {
                            what: "loading",
                            source,
                        },
                    })??;
                if model.model_id() != model_id {
                    return Err(Error::InvalidModel {
                        model_id: model_id.to_string(),
                        reason: format!("its files say model_id {}", model.model_id()),
                    });
                }
                (
                    Arc::new(Loaded {
                        model,
                        loaded_at: self.clock.now(),
                    }),
                    false,
                )
            }
        };
        self.current.store(Some(next.clone()));
        *self.previous.lock().unwrap_or_else(PoisonError::into_inner) = current.clone();
        let outcome = ReloadOutcome {
            model_id: model_id.clone(),
            previous_model_id: current.map(|c| c.model.model_id().clone()),
            from_memory,
            seconds: started.elapsed().as_secs_f64(),
            loaded_at: next.loaded_at,
        };
        tracing::info!(
            model_id = %outcome.model_id,
            previous = outcome.previous_model_id.as_deref().unwrap_or("none"),
            from_memory,
            seconds = outcome.seconds,
            "model loaded and serving"
        );
        Ok(outcome)
    }
}

#[derive(Debug)]
struct ReloadOutcome {
    model_id: ModelId,
    previous_model_id: Option<ModelId>,
    from_memory: bool,
    seconds: f64,
    loaded_at: DateTime<Utc>,
}

/// The service's routes, with metrics and limits.
pub(crate) fn router(state: Arc<AppState>) -> Router {
    let limit = state.options.body_limit_bytes;
    Router::new()
        .route("/health", get(health))
        .route("/livez", get(livez))
        .route("/readyz", get(readyz))
        .route("/recommend", post(recommend))
        .route("/reload_model", post(reload_model))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

/// Marks a response as a popularity fallback, for the metrics middleware.
#[derive(Debug, Clone, Copy)]
struct Fallback;

/// Reads the whole request body (bounded in size and time) before the handler runs,
/// then times the handler: the recorded latency runs from the complete request to the
/// response, so a client that trickles its body cannot fire `high_latency`; the body
/// wait is reported apart (`recops_http_request_body_wait_seconds`).
async fn observe(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "other".to_owned());
    let req = match read_body(&state, req).await {
        Ok(req) => req,
        Err((status, message)) => {
            if status == StatusCode::REQUEST_TIMEOUT {
                state.metrics.body_timeout(&route);
            } else {
                state.metrics.count_only(&route, status.as_u16());
            }
            let mut r = error(status, message);
            // The rest of the body may still be on its way: do not reuse the connection.
            r.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            return r;
        }
    };
    let started = Instant::now();
    let response = next.run(req).await;
    let seconds = started.elapsed().as_secs_f64();
    let fallback = response.extensions().get::<Fallback>().is_some();
    let model_id = state
        .current
        .load()
        .as_ref()
        .map(|l| l.model.model_id().to_string())
        .unwrap_or_default();
    state.metrics.observe(
        state.clock.now(),
        &route,
        response.status().as_u16(),
        seconds,
        fallback,
        &model_id,
    );
    response
}

/// Buffers the body of `req` within `body_limit_bytes` and `body_read_timeout`.
async fn read_body(state: &AppState, req: Request) -> Result<Request, (StatusCode, String)> {
    let limit = state.options.body_limit_bytes;
    let too_large = || {
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body is larger than {limit} bytes"),
        )
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let (parts, body) = req.into_parts();
    let started = Instant::now();
    let timeout = state.options.body_read_timeout;
    let collected = tokio::time::timeout(
        timeout,
        http_body_util::BodyExt::collect(http_body_util::Limited::new(body, limit)),
    )
    .await;
    let bytes = match collected {
        Err(_) => {
            return Err((
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "request body not received within {} s",
                    timeout.as_secs_f64()
                ),
            ));
        }
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => return Err(too_large()),
        Ok(Err(_)) => {
            return Err((
                StatusCode::BAD_REQUEST,
                "request body could not be read".to_owned(),
            ));
        }
        Ok(Ok(c)) => c.to_bytes(),
    };
    if !bytes.is_empty() {
        state.metrics.body_wait(started.elapsed().as_secs_f64());
    }
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

/// JSON body extractor whose rejections are JSON errors with a readable message.
struct AppJson<T>(T);

impl<S, T> FromRequest<S> for AppJson<T>
where
    Json<T>: FromRequest<S, Rejection = JsonRejection>,
    S: Send + Sync,
{
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        // The body is already buffered (and bounded) by `observe`. serde would build a
        // struct from a JSON array (`[1, 5]`): only objects are requests here.
        let (parts, body) = req.into_parts();
        let bytes = axum::body::to_bytes(body, usize::MAX)
            .await
            .map_err(|_| error(StatusCode::BAD_REQUEST, "request body could not be read"))?;
        if let Some(first) = bytes.iter().find(|b| !b.is_ascii_whitespace())
            && *first != b'{'
        {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "invalid type: expected a JSON object such as {\"user_id\": 123}",
            ));
        }
        let req = Request::from_parts(parts, Body::from(bytes));
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(AppJson(v)),
            Err(rejection) => {
                let status = match rejection.status() {
                    StatusCode::PAYLOAD_TOO_LARGE => StatusCode::PAYLOAD_TOO_LARGE,
                    StatusCode::UNSUPPORTED_MEDIA_TYPE => StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    _ => StatusCode::BAD_REQUEST,
                };
                Err(error(status, rejection.body_text()))
            }
        }
    }
}

async fn health(State(state): State<Arc<AppState>>) -> Response {
    let uptime = state.started.elapsed().as_secs_f64();
    match state.current.load_full() {
        Some(l) => (
            StatusCode::OK,
            Json(json!({
                "status": "ok",
                "model_id": l.model.model_id(),
                "model_type": l.model.model_type(),
                "loaded_at": format_timestamp(l.loaded_at),
                "uptime_seconds": uptime,
            })),
        )
            .into_response(),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({
                "status": "no_model",
                "model_id": null,
                "loaded_at": null,
                "uptime_seconds": uptime,
            })),
        )
            .into_response(),
    }
}

async fn livez() -> Response {
    Json(json!({"status": "alive"})).into_response()
}

async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    match state.current.load_full() {
        Some(l) => Json(json!({"status": "ready", "model_id": l.model.model_id()})).into_response(),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "not_ready", "reason": "no model loaded"})),
        )
            .into_response(),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RecommendRequest {
    user_id: i64,
    topk: Option<i64>,
}

async fn recommend(
    State(state): State<Arc<AppState>>,
    body: Result<AppJson<RecommendRequest>, Response>,
) -> Response {
    let req = match body {
        Ok(AppJson(r)) => r,
        Err(resp) => return resp,
    };
    let max = state.options.max_topk;
    let topk = req.topk.unwrap_or(state.options.default_topk as i64);
    if topk < 1 || topk as usize > max {
        return error(
            StatusCode::BAD_REQUEST,
            format!("topk must be between 1 and {max}, got {topk}"),
        );
    }
    let Some(loaded) = state.current.load_full() else {
        return error(StatusCode::SERVICE_UNAVAILABLE, "no model loaded yet");
    };
    let rec = loaded.model.recommend(req.user_id, topk as usize);
    let mut response = Json(json!({
        "user_id": req.user_id,
        "model_id": loaded.model.model_id(),
        "items": rec.items,
        "fallback": rec.fallback,
    }))
    .into_response();
    if rec.fallback {
        response.extensions_mut().insert(Fallback);
    }
    response
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReloadRequest {
    /// Validated on deserialization: a path-like id is a 400 before anything runs.
    model_id: ModelId,
}

async fn reload_model(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<AppJson<ReloadRequest>, Response>,
) -> Response {
    if let Some(token) = &state.options.admin_token
        && !bearer_matches(&headers, token)
    {
        let mut r = error(
            StatusCode::UNAUTHORIZED,
            "reload_model needs the admin token: Authorization: Bearer <RECOPS_ADMIN_TOKEN>",
        );
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return r;
    }
    let req = match body {
        Ok(AppJson(r)) => r,
        Err(resp) => {
            // A malformed body or an invalid model id: a refused reload.
            state.metrics.reload(false);
            return resp;
        }
    };
    match state.reload(&req.model_id).await {
        Ok(o) => {
            state.metrics.reload(true);
            // A direct reload changes production: leave a deployment record.
            let source = state.source.clone();
            let (id, prev) = (o.model_id.clone(), o.previous_model_id.clone());
            let recorded =
                tokio::task::spawn_blocking(move || source.reloaded(&id, prev.as_ref())).await;
            if let Ok(Err(e)) = &recorded {
                tracing::warn!(model_id = %o.model_id, error = %error_chain(e), "reloaded, but the deployment record was not written");
            }
            Json(json!({
                "status": "reloaded",
                "model_id": o.model_id,
                "previous_model_id": o.previous_model_id,
                "from_memory": o.from_memory,
                "load_seconds": o.seconds,
                "loaded_at": format_timestamp(o.loaded_at),
            }))
            .into_response()
        }
        Err(e) => {
            state.metrics.reload(false);
            let current = state
                .current
                .load()
                .as_ref()
                .map(|l| l.model.model_id().clone());
            tracing::warn!(model_id = %req.model_id, error = %error_chain(&e), "reload refused; the current model keeps serving");
            let status = match e {
                Error::ModelUnavailable {
                    reason: crate::error::Unavailable::Damaged(_),
                    ..
                } => StatusCode::UNPROCESSABLE_ENTITY,
                Error::ModelUnavailable { .. } => StatusCode::NOT_FOUND,
                Error::InvalidModel { .. } | Error::ModelFiles { .. } => {
                    StatusCode::UNPROCESSABLE_ENTITY
                }
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            (
                status,
                Json(json!({
                    "error": redact_paths(&error_chain(&e)),
                    "model_id": req.model_id,
                    "serving_model_id": current,
                })),
            )
                .into_response()
        }
    }
}

/// Replaces every absolute filesystem path in `message` with its last component, so
/// error bodies name ids and files, never where the home lives. The full message
/// goes to the log.
pub(crate) fn redact_paths(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(at) = rest.find('/') {
        let starts_word = at == 0
            || rest[..at]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_whitespace() || "(\"'`=[{<,:".contains(c));
        let (before, from) = rest.split_at(at);
        out.push_str(before);
        let end = from
            .find(|c: char| c.is_whitespace() || "\"'`)]}>,;".contains(c))
            .unwrap_or(from.len());
        let (path, after) = from.split_at(end);
        if starts_word && !path.starts_with("//") {
            let trimmed = path.trim_end_matches(['/', ':', '.']);
            let name = trimmed.rsplit('/').next().unwrap_or_default();
            if name.is_empty() {
                out.push_str("<path>");
            } else {
                out.push_str(name);
                out.push_str(&path[trimmed.len()..]);
            }
        } else {
            out.push_str(path);
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

/// Constant-time comparison of the bearer token.
fn bearer_matches(headers: &HeaderMap, token: &str) -> bool {
    let Some(given) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    let (a, b) = (given.as_bytes(), token.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let current = state.current.load_full();
    let text = state.metrics.render(
        current.as_ref().map(|l| {
            (
                l.model.model_id().as_str(),
                l.model.model_type(),
                l.loaded_at,
            )
        }),
        state.options.instance.as_deref().unwrap_or_default(),
    );
    Response::builder()
        .header(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )
        .body(Body::from(text))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "no such endpoint")
}

/// Writes the rollups gathered so far to the store (off the request path), labelled
/// with this replica's instance (`service.instance`) so replicas sharing a store keep
/// their own rows. A failed write keeps them for the next flush.
pub(crate) async fn flush_rollups(state: &Arc<AppState>) {
    let Some(store) = state.store.clone() else {
        return;
    };
    let mut rollups = state.metrics.take_rollups();
    if rollups.is_empty() {
        return;
    }
    let instance = state.options.instance.as_deref().unwrap_or_default();
    for r in &mut rollups {
        r.instance = instance.to_owned();
    }
    let st = state.clone();
    let result = tokio::task::spawn_blocking(move || match store.record(&rollups) {
        Ok(()) => Ok(()),
        Err(e) => Err((e, rollups)),
    })
    .await;
    match result {
        Ok(Ok(())) => {}
        Ok(Err((e, rollups))) => {
            tracing::warn!(error = %error_chain(&e), "cannot write service metrics; will retry");
            st.metrics.restore_rollups(rollups);
        }
        Err(e) => tracing::warn!(error = %e, "service metrics task failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_name_files_not_where_they_live() {
        assert_eq!(
            redact_paths(
                "model m cannot be loaded: its files are missing in /srv/recops/artifacts/cf/m"
            ),
            "model m cannot be loaded: its files are missing in m"
        );
        assert_eq!(
            redact_paths("read \"/home/u/x/model.json\": no such file"),
            "read \"model.json\": no such file"
        );
        assert_eq!(redact_paths("path=/a/b/c.npz, ok"), "path=c.npz, ok");
        assert_eq!(redact_paths("shape 3/4 and 1/2"), "shape 3/4 and 1/2");
        assert_eq!(
            redact_paths("see https://x.invalid/a"),
            "see https://x.invalid/a"
        );
        assert_eq!(redact_paths("/"), "<path>");
    }
}
