//! The accept loop: one hyper HTTP/1 connection per task, with a cap on connections
//! held at once, a header-read timeout, an idle keep-alive timeout and a drain
//! deadline at shutdown. The body-read timeout lives in the request middleware
//! (`server::observe`), which reads the whole body before the handler runs.
//!
//! Why not `axum::serve`: it has no header or body timeout and no connection cap, so a
//! few hundred clients that send half a request and wait hold the service down, and a
//! half-sent body makes its graceful shutdown wait forever.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;

use crate::server::AppState;

/// Limits of the accept loop.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnLimits {
    pub(crate) max_connections: usize,
    pub(crate) header_read_timeout: Duration,
    pub(crate) idle_timeout: Duration,
    pub(crate) drain_timeout: Duration,
}

/// How the accept loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DrainOutcome {
    /// Connections still open at the drain deadline, closed by force.
    pub(crate) closed_by_force: usize,
}

/// Accepts connections on `listener` and serves `app` on each until `shutdown`
/// completes; then asks every connection to finish its request in flight and close,
/// and closes those still open after `limits.drain_timeout`.
pub(crate) async fn serve_connections(
    listener: TcpListener,
    app: Router,
    limits: ConnLimits,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> DrainOutcome {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    let builder = Arc::new(builder);
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    let mut at_cap = false;
    tokio::pin!(shutdown);
    'accept: loop {
        let permit = match permits.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                if !at_cap {
                    at_cap = true;
                    state.metrics.connection_cap_reached();
                    tracing::warn!(
                        max_connections = limits.max_connections,
                        "connection cap reached: new connections wait in the listen backlog until one closes (service.max_connections)"
                    );
                }
                loop {
                    tokio::select! {
                        p = permits.clone().acquire_owned() => match p {
                            Ok(p) => break p,
                            Err(_) => break 'accept,
                        },
                        Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
                        () = &mut shutdown => break 'accept,
                    }
                }
            }
        };
        if at_cap && permits.available_permits() * 10 >= limits.max_connections {
            at_cap = false;
            tracing::info!(
                open = limits.max_connections - permits.available_permits(),
                "connections back under the cap"
            );
        }
        let stream = loop {
            tokio::select! {
                r = listener.accept() => match r {
                    Ok((stream, _peer)) => break stream,
                    Err(e) => accept_failed(&e).await,
                },
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
                () = &mut shutdown => break 'accept,
            }
        };
        tasks.spawn(serve_one(
            stream,
            app.clone(),
            builder.clone(),
            stop_rx.clone(),
            permit,
            limits.idle_timeout,
            state.clone(),
        ));
    }
    drop(listener);
    drain(tasks, &stop_tx, limits.drain_timeout).await
}

/// Asks every connection to finish its request in flight and close; closes those
/// still open after `deadline`.
async fn drain(
    mut tasks: JoinSet<()>,
    stop: &watch::Sender<bool>,
    deadline: Duration,
) -> DrainOutcome {
    tracing::info!(
        open_connections = tasks.len(),
        drain_secs = deadline.as_secs_f64(),
        "no longer accepting: draining connections"
    );
    let _ = stop.send(true);
    let drained = tokio::time::timeout(deadline, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    let closed_by_force = match drained {
        Ok(()) => 0,
        Err(_) => {
            let left = tasks.len();
            tracing::warn!(
                connections = left,
                "drain deadline passed: closing the remaining connections (service.drain_timeout_secs)"
            );
            tasks.abort_all();
            while tasks.join_next().await.is_some() {}
            left
        }
    };
    DrainOutcome { closed_by_force }
}

/// An accept error: per-connection errors (the peer already went away) are skipped;
/// running out of file descriptors backs off briefly instead of spinning.
async fn accept_failed(e: &io::Error) {
    use io::ErrorKind::*;
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionReset | ConnectionRefused | Interrupted
    ) {
        return;
    }
    tracing::warn!(error = %e, "accept failed (out of file descriptors?): retrying in 100 ms");
    tokio::time::sleep(Duration::from_millis(100)).await;
}

async fn serve_one(
    stream: TcpStream,
    app: Router,
    builder: Arc<http1::Builder>,
    mut stop: watch::Receiver<bool>,
    _permit: OwnedSemaphorePermit,
    idle_timeout: Duration,
    state: Arc<AppState>,
) {
    let _open = state.metrics.connection_opened();
    let _ = stream.set_nodelay(true);
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(ActivityIo {
        inner: stream,
        activity: activity.clone(),
    });
    let conn = builder.serve_connection(io, TowerToHyperService::new(app));
    tokio::pin!(conn);
    let mut tick = tokio::time::interval(idle_tick(idle_timeout));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut closing = *stop.borrow();
    if closing {
        conn.as_mut().graceful_shutdown();
    }
    loop {
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    if e.is_timeout() {
                        state.metrics.header_timeout();
                    }
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                break;
            }
            _ = stop.changed(), if !closing => {
                closing = true;
                conn.as_mut().graceful_shutdown();
            }
            _ = tick.tick(), if !closing => {
                if activity.silent_for() >= idle_timeout {
                    // Closes an idle connection at once; one with a request in flight
                    // finishes it first (with `Connection: close`).
                    closing = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

/// How often a connection checks for idleness: a quarter of the timeout, at least
/// 50 ms.
fn idle_tick(idle: Duration) -> Duration {
    (idle / 4).max(Duration::from_millis(50))
}

/// When a connection last read or wrote a byte.
#[derive(Debug)]
struct Activity {
    base: Instant,
    last_ms: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Activity {
            base: Instant::now(),
            last_ms: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.base.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    fn silent_for(&self) -> Duration {
        let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
        self.base.elapsed().saturating_sub(last)
    }
}

/// A TCP stream that records its last activity.
struct ActivityIo {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for ActivityIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.touch();
        }
        r
    }
}

impl AsyncWrite for ActivityIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_tick_is_a_quarter_with_a_floor() {
        assert_eq!(idle_tick(Duration::from_secs(8)), Duration::from_secs(2));
        assert_eq!(
            idle_tick(Duration::from_millis(40)),
            Duration::from_millis(50)
        );
    }

    #[test]
    fn fresh_activity_is_not_silent_for_long() {
        let a = Activity::new();
        a.touch();
        assert!(a.silent_for() < Duration::from_secs(60));
    }
}
