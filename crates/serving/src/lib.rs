//! recops-serving: the recommender service of the spec (`:8000`), with hot reload.
//!
//! - [`ServingModel`]: a validated model (factors, id mappings, seen items, popularity)
//!   that answers top-K requests with one dot product per item and a bounded heap.
//! - [`ModelSource`]: where models come from (the registry and model files in
//!   production).
//! - [`RunningService`]: the axum service on its own runtime: `GET /health`, `/livez`,
//!   `/readyz`, `POST /recommend`, `POST /reload_model`, `GET /metrics`.
//!
//! Connections are served by the crate's own accept loop (hyper HTTP/1): a header-read
//! timeout, a body-read timeout (408), an idle keep-alive timeout, a cap on connections
//! held at once, and a drain deadline at shutdown after which the remaining
//! connections are closed and the last metrics are written anyway
//! ([`ServiceOptions`], `service:` of `config/recops.yaml`). Request latency runs from
//! the complete request to the response; the body wait is reported apart. Without an
//! admin token the service only starts on a loopback address unless
//! [`ServiceOptions::allow_unauthenticated`]. See docs/operations-hardening.md.
//!
//! Hot reload loads and validates the new model off the request path, then swaps it in
//! atomically; requests in flight finish on the model they started with, and the
//! replaced model stays in memory so reloading it (a rollback) is instant. Request
//! metrics go to `/metrics` (Prometheus; every sample labelled
//! `instance="<ServiceOptions::instance>"`, default `<host name>:<port>`, so replicas
//! differ) and, once per flush interval, to `logs/service_metrics.db` through a
//! background task — never a database write on the request path.
//!
//! ```
//! use recops_serving::{ModelParts, ServingModel};
//!
//! let model = ServingModel::new(ModelParts {
//!     model_id: "als_20250115_103000".parse()?,
//!     model_type: recops_core::ModelType::Als,
//!     user_ids: vec![1],
//!     item_ids: vec![10, 20, 30],
//!     factors: 1,
//!     user_factors: vec![1.0],
//!     item_factors: vec![0.5, 2.0, 1.0],
//!     seen_indptr: vec![0, 1],
//!     seen_indices: vec![1],
//!     item_popularity: vec![3, 9, 1],
//! })?;
//! let rec = model.recommend(1, 2);
//! assert_eq!(rec.items.iter().map(|i| i.product_id).collect::<Vec<_>>(), vec![30, 10]);
//! assert!(model.recommend(42, 1).fallback);
//! # Ok::<(), recops_serving::Error>(())
//! ```

mod conn;
mod error;
mod metrics;
mod model;
mod server;
mod source;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use recops_core::SharedClock;
use recops_tracking::ServiceMetricsStore;

pub use error::{Error, Result, Unavailable};
pub use model::{ModelParts, Recommendation, ScoredItem, ServingModel};
pub use server::{ADMIN_TOKEN_ENV, ServiceOptions};
pub use source::{HomeModelSource, ModelSource};

/// A service running on its own Tokio runtime thread.
#[derive(Debug)]
pub struct RunningService {
    addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<Result<()>>>,
}

impl RunningService {
    /// Starts the service on `listener` (already bound), loading the source's initial
    /// model first. Returns once the service accepts connections.
    pub fn start(
        listener: std::net::TcpListener,
        source: Arc<dyn ModelSource>,
        store: Option<Arc<ServiceMetricsStore>>,
        options: ServiceOptions,
        clock: SharedClock,
    ) -> Result<Self> {
        let addr = listener.local_addr().map_err(|e| Error::Bind {
            addr: "listener".into(),
            source: e,
        })?;
        check_exposure(addr, &options)?;
        listener.set_nonblocking(true).map_err(|e| Error::Bind {
            addr: addr.to_string(),
            source: e,
        })?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("recops-serving".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .enable_all()
                    .thread_name("recops-serving-worker")
                    .build()
                    .map_err(|e| Error::Bind {
                        addr: addr.to_string(),
                        source: e,
                    })?;
                runtime.block_on(async move {
                    let listener =
                        tokio::net::TcpListener::from_std(listener).map_err(|e| Error::Bind {
                            addr: addr.to_string(),
                            source: e,
                        })?;
                    serve(listener, source, store, options, clock, async move {
                        let _ = ready_tx.send(());
                        let _ = rx.await;
                    })
                    .await
                })
            })
            .map_err(|e| Error::Bind {
                addr: addr.to_string(),
                source: e,
            })?;
        // Wait until the initial model is loaded and the server is accepting.
        let _ = ready_rx.recv();
        Ok(RunningService {
            addr,
            shutdown: Some(tx),
            thread: Some(thread),
        })
    }

    /// The address the service listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, lets requests in flight finish, writes the last metrics, and
    /// waits for the runtime to end.
    pub fn shutdown(mut self) -> Result<()> {
        self.stop()
    }

    fn stop(&mut self) -> Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        match self.thread.take().map(|t| t.join()) {
            Some(Ok(r)) => r,
            Some(Err(_)) => Err(Error::Bind {
                addr: self.addr.to_string(),
                source: std::io::Error::other("service thread panicked"),
            }),
            None => Ok(()),
        }
    }
}

impl Drop for RunningService {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// Runs the recommender of `home` on `host:port` until SIGINT or SIGTERM: models from
/// the home's registry, request rollups to `logs/service_metrics.db`. This is what
/// the `recommender` binary calls.
pub fn run(home: &recops_core::Home, host: &str, port: u16, options: ServiceOptions) -> Result<()> {
    let addr = format!("{host}:{port}");
    let store = Arc::new(ServiceMetricsStore::open(home)?);
    let source: Arc<dyn ModelSource> = Arc::new(HomeModelSource::new(home.clone()));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("recops-serving-worker")
        .build()
        .map_err(|e| Error::Bind {
            addr: addr.clone(),
            source: e,
        })?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&addr)
            .await
            .map_err(|e| Error::Bind {
                addr: addr.clone(),
                source: e,
            })?;
        serve(
            listener,
            source,
            Some(store),
            options,
            recops_core::SystemClock::shared(),
            shutdown_signal(),
        )
        .await
    })
}

/// Completes on the first SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = ctrl_c => {},
                _ = term.recv() => {},
            }
        }
        Err(_) => {
            let _ = ctrl_c.await;
        }
    }
    tracing::info!("shutdown requested: finishing requests in flight");
}

/// Serves on `listener` until `shutdown` completes: loads the initial model, runs the
/// metrics flusher, then shuts down gracefully and writes the last rollups.
pub async fn serve(
    listener: tokio::net::TcpListener,
    source: Arc<dyn ModelSource>,
    store: Option<Arc<ServiceMetricsStore>>,
    options: ServiceOptions,
    clock: SharedClock,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let local = listener.local_addr().map_err(|e| Error::Bind {
        addr: "listener".into(),
        source: e,
    })?;
    let addr = local.to_string();
    check_exposure(local, &options)?;
    let flush_every = options.flush_interval;
    let limits = conn::ConnLimits {
        max_connections: options.max_connections.max(1),
        header_read_timeout: options.header_read_timeout,
        idle_timeout: options.idle_timeout,
        drain_timeout: options.drain_timeout,
    };
    let mut options = options;
    if options.instance.is_none() {
        options.instance = Some(default_instance(local.port()));
    }
    let state = Arc::new(server::AppState::new(source, store, options, clock));
    state.load_initial().await;
    let app = server::router(state.clone());
    let flusher_state = state.clone();
    let flusher = tokio::spawn(async move {
        let mut tick = tokio::time::interval(flush_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            server::flush_rollups(&flusher_state).await;
        }
    });
    tracing::info!(
        max_connections = limits.max_connections,
        header_read_timeout_secs = limits.header_read_timeout.as_secs_f64(),
        idle_timeout_secs = limits.idle_timeout.as_secs_f64(),
        drain_timeout_secs = limits.drain_timeout.as_secs_f64(),
        "connection limits"
    );
    // Tests and scripts read the address from the end of this line.
    tracing::info!(addr = %addr, "recommender service listening");
    let outcome = conn::serve_connections(listener, app, limits, state.clone(), shutdown).await;
    // The last flush runs whatever happened to the connections.
    flusher.abort();
    server::flush_rollups(&state).await;
    tracing::info!(
        addr = %addr,
        closed_by_force = outcome.closed_by_force,
        "recommender service stopped"
    );
    Ok(())
}

/// The default `instance` label: `<host name>:<port>`.
fn default_instance(port: u16) -> String {
    let host = hostname::get()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "localhost".to_owned());
    format!("{host}:{port}")
}

/// Refuses a non-loopback address without an admin token, unless the operator allowed
/// it explicitly; warns when it is allowed.
fn check_exposure(local: SocketAddr, options: &ServiceOptions) -> Result<()> {
    if options.admin_token.is_some() {
        return Ok(());
    }
    if !local.ip().is_loopback() && !options.allow_unauthenticated {
        return Err(Error::Unauthenticated {
            addr: local.to_string(),
        });
    }
    if local.ip().is_loopback() {
        // Loopback only: the token is optional, but say so once.
        tracing::warn!(
            addr = %local,
            "{} is not set: POST /reload_model is open to every local user",
            ADMIN_TOKEN_ENV
        );
        return Ok(());
    }
    tracing::warn!(
        addr = %local,
        "{} is not set: POST /reload_model is open to anyone who can reach the service",
        ADMIN_TOKEN_ENV
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_non_loopback_address_needs_a_token_or_an_explicit_opt_out() {
        let open = ServiceOptions::default();
        let public: SocketAddr = "0.0.0.0:8000".parse().unwrap_or_else(|_| unreachable!());
        let local: SocketAddr = "127.0.0.1:8000".parse().unwrap_or_else(|_| unreachable!());
        let v6: SocketAddr = "[::1]:8000".parse().unwrap_or_else(|_| unreachable!());
        assert!(matches!(
            check_exposure(public, &open),
            Err(Error::Unauthenticated { .. })
        ));
        assert!(check_exposure(local, &open).is_ok());
        assert!(check_exposure(v6, &open).is_ok());
        let token = ServiceOptions {
            admin_token: Some("t".into()),
            ..ServiceOptions::default()
        };
        assert!(check_exposure(public, &token).is_ok());
        let allowed = ServiceOptions {
            allow_unauthenticated: true,
            ..ServiceOptions::default()
        };
        assert!(check_exposure(public, &allowed).is_ok());
    }
}
