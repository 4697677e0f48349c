//! recops-dashboard: the web dashboard and JSON API over every recops store.
//!
//! Eight pages (`/`, `/pipelines`, `/training`, `/models`, `/service`, `/drift`,
//! `/alerts`, `/scheduler`), each backed by `/api/v1/...` JSON that returns exactly
//! what its panels show. Pages are server-rendered with maud (escaped by default),
//! refresh live every 15 s, and draw interactive charts with the vendored uPlot;
//! everything is embedded in the binary and served under a `default-src 'self'`
//! Content-Security-Policy. The stores are opened read-only with a short busy
//! timeout: a busy database gives a stale notice, a missing one an empty state that
//! says what fills it. The only writes are two token- and CSRF-protected actions:
//! silences (through recops-alerting) and rollback (through recops-deploy).
//! `GET /metrics` exports each pipeline's last success for Prometheus
//! (`recops_pipeline_last_success_timestamp_seconds{pipeline}`, the input of the
//! dead-man rule in `config/prometheus/recops_rules.yml`).
//!
//! - [`spawn`]: starts the dashboard on its own thread and returns a
//!   [`DashboardHandle`] (the URL it listens on, [`DashboardHandle::stop`]);
//!   `recops demo` uses it.
//! - [`serve`]: runs it until SIGINT or SIGTERM (the `dashboard` binary).
//! - [`DashboardOptions`]: host (default `127.0.0.1`), port (default 8050), admin
//!   token. A non-loopback host without an admin token is refused.
//!
//! ```
//! use recops_core::Home;
//! use recops_dashboard::{DashboardOptions, spawn};
//!
//! let dir = tempfile::tempdir()?;
//! let home = Home::new(dir.path());
//! let dashboard = spawn(&home, DashboardOptions { port: 0, ..DashboardOptions::default() })?;
//! assert!(dashboard.url().starts_with("http://127.0.0.1:"));
//! dashboard.stop()?;
//! // Binding every interface needs an admin token.
//! let open = DashboardOptions { host: "0.0.0.0".into(), port: 0, ..DashboardOptions::default() };
//! assert!(spawn(&home, open).is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod actions;
mod api;
mod auth;
mod cache;
mod charts;
mod data;
mod error;
mod metrics;
mod pages;
mod server;
mod store;
mod timefmt;

pub use error::{Error, Result};

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use recops_core::{Home, SharedClock, SystemClock};

/// Default port.
pub const DEFAULT_PORT: u16 = 8050;
/// Environment variable holding the admin token the actions need.
pub const ADMIN_TOKEN_ENV: &str = "RECOPS_ADMIN_TOKEN";

/// How the dashboard runs.
#[derive(Clone)]
pub struct DashboardOptions {
    /// Address to bind (default `127.0.0.1`); anything but loopback needs
    /// `admin_token`.
    pub host: String,
    /// Port (default 8050; 0 picks a free one).
    pub port: u16,
    /// The token the actions (silences, rollback) need; without it they are refused.
    /// Usually `RECOPS_ADMIN_TOKEN`; never shown on a page.
    pub admin_token: Option<String>,
    /// Where the scheduler's job binaries are looked up (default: beside this
    /// executable).
    pub bin_dir: Option<PathBuf>,
    /// Time source (tests fix it).
    pub clock: SharedClock,
    /// Reuse slow results for a few seconds (service probe 10 s, drift reports 10 s,
    /// service buckets 5 s); default true. Off only to measure the uncached cost.
    pub cache: bool,
}

impl Default for DashboardOptions {
    fn default() -> Self {
        DashboardOptions {
            host: "127.0.0.1".to_owned(),
            port: DEFAULT_PORT,
            admin_token: None,
            bin_dir: None,
            clock: SystemClock::shared(),
            cache: true,
        }
    }
}

impl DashboardOptions {
    /// The defaults with the admin token from `RECOPS_ADMIN_TOKEN`.
    pub fn from_env() -> Self {
        DashboardOptions {
            admin_token: std::env::var(ADMIN_TOKEN_ENV)
                .ok()
                .filter(|t| !t.is_empty()),
            ..DashboardOptions::default()
        }
    }
}

impl std::fmt::Debug for DashboardOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DashboardOptions")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("admin_token", &self.admin_token.as_ref().map(|_| "<set>"))
            .field("bin_dir", &self.bin_dir)
            .field("cache", &self.cache)
            .finish_non_exhaustive()
    }
}

/// A dashboard running on its own thread; dropping it stops it.
#[derive(Debug)]
pub struct DashboardHandle {
    addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<Result<()>>>,
}

impl DashboardHandle {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://host:port`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting, finishes requests in flight and waits for the thread.
    pub fn stop(mut self) -> Result<()> {
        self.stop_inner()
    }

    fn stop_inner(&mut self) -> Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        match self.thread.take().map(|t| t.join()) {
            Some(Ok(r)) => r,
            Some(Err(_)) => Err(Error::Serve {
                source: std::io::Error::other("dashboard thread panicked"),
            }),
            None => Ok(()),
        }
    }
}

impl Drop for DashboardHandle {
    fn drop(&mut self) {
        let _ = self.stop_inner();
    }
}

/// Starts the dashboard of `home` on a thread of its own and returns once it accepts
/// connections.
pub fn spawn(home: &Home, options: DashboardOptions) -> Result<DashboardHandle> {
    let listener = bind(&options)?;
    let addr = listener.local_addr().map_err(|e| bind_err(&options, e))?;
    let state = state(home, options);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("recops-dashboard".into())
        .spawn(move || {
            runtime()?.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener)
                    .map_err(|source| Error::Serve { source })?;
                server::run(listener, state, async move {
                    let _ = rx.await;
                })
                .await
                .map_err(|source| Error::Serve { source })
            })
        })
        .map_err(|source| Error::Serve { source })?;
    Ok(DashboardHandle {
        addr,
        shutdown: Some(tx),
        thread: Some(thread),
    })
}

/// Runs the dashboard of `home` until SIGINT or SIGTERM (the `dashboard` binary).
pub fn serve(home: &Home, options: DashboardOptions) -> Result<()> {
    let listener = bind(&options)?;
    let url = listener
        .local_addr()
        .map(|a| format!("http://{a}"))
        .unwrap_or_default();
    tracing::info!(url = %url, "dashboard of {} at {url}", home.root().display());
    let state = state(home, options);
    runtime()?.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener)
            .map_err(|source| Error::Serve { source })?;
        server::run(listener, state, shutdown_signal())
            .await
            .map_err(|source| Error::Serve { source })
    })
}

fn bind(options: &DashboardOptions) -> Result<std::net::TcpListener> {
    if !auth::is_loopback(&options.host) && options.admin_token.is_none() {
        return Err(Error::NotLoopback {
            host: options.host.clone(),
        });
    }
    let host = options.host.trim_start_matches('[').trim_end_matches(']');
    let listener =
        std::net::TcpListener::bind((host, options.port)).map_err(|e| bind_err(options, e))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| bind_err(options, e))?;
    Ok(listener)
}

fn bind_err(options: &DashboardOptions, source: std::io::Error) -> Error {
    Error::Bind {
        addr: format!("{}:{}", options.host, options.port),
        source,
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(8)
        .enable_all()
        .thread_name("recops-dashboard-worker")
        .build()
        .map_err(|source| Error::Serve { source })
}

fn state(home: &Home, options: DashboardOptions) -> server::AppState {
    let config = recops_core::RecopsConfig::load(home).ok();
    if let Ok(recops_core::StorageUrl::Postgres(url)) = recops_core::RecopsConfig::storage(home) {
        store::mark_postgres(&home.logs_dir(), &url);
    }
    let bin_dir = options
        .bin_dir
        .clone()
        .or_else(|| recops_scheduler::default_bin_dir().ok())
        .unwrap_or_default();
    let tz = recops_scheduler::LoadedConfig::load(home, &bin_dir)
        .map(|c| c.timezone)
        .unwrap_or(chrono_tz::UTC);
    let ctx = data::Ctx {
        home: home.clone(),
        tz,
        clock: options.clock.clone(),
        service_url: config
            .as_ref()
            .map(|c| c.service.url.clone())
            .unwrap_or_else(|| "http://127.0.0.1:8000".to_owned()),
        service_urls: config
            .as_ref()
            .map(|c| c.service.urls())
            .unwrap_or_default(),
        stale_after_hours: config.as_ref().map_or(24.0, |c| c.locks.stale_after_hours),
        bin_dir,
        cache: if options.cache {
            cache::Cache::default()
        } else {
            cache::Cache::disabled()
        },
    };
    server::AppState {
        ctx: Arc::new(ctx),
        guard: Arc::new(auth::Guard::new(options.admin_token)),
    }
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
    tracing::info!("dashboard stopping");
}
