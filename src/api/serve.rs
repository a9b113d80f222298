//! The HTTP listener, hardened against the clients anyone on the network
//! can be: at most `[server] max_connections` connections at once (more are
//! closed at accept), a deadline on reading each request's headers, a
//! lifetime for every connection so idle keep-alives cannot pin
//! descriptors, a backoff when accept fails (out of descriptors), and a
//! handler panic answered with a JSON 500 instead of a dropped connection.
//! The limits are documented in README ("Running it safely").

use std::convert::Infallible;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::response::IntoResponse;
use futures_util::FutureExt;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tower::ServiceExt;
use tracing::warn;

use super::ApiError;

/// A client must send a request's headers within this time.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// A connection is closed (gracefully, between requests) after this long,
/// so idle keep-alive connections cannot hold descriptors for ever.
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(60);
/// After the lifetime, an unfinished response gets this long to complete.
const DRAIN: Duration = Duration::from_secs(10);
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(50);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Connections open now, shared with the metrics of the server.
#[derive(Clone, Default)]
pub struct Connections(Arc<AtomicUsize>);

impl Connections {
    /// How many are open.
    pub fn open(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}

/// Decrements the open count when a connection task ends, however it ends.
struct Slot(Connections);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Serves `app` on `listener` until `stop` resolves.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    max_connections: usize,
    stop: impl std::future::Future<Output = ()>,
) {
    let connections = Connections::default();
    let mut backoff = ACCEPT_BACKOFF_MIN;
    let mut last_warning: Option<Instant> = None;
    let mut warn_once_a_minute = |text: String| {
        if last_warning.is_none_or(|t| t.elapsed() >= Duration::from_secs(60)) {
            warn!("{text}");
            last_warning = Some(Instant::now());
        }
    };
    let mut tasks = tokio::task::JoinSet::new();
    let (closing, closing_rx) = tokio::sync::watch::channel(false);
    tokio::pin!(stop);
    loop {
        while tasks.try_join_next().is_some() {}
        let accepted = tokio::select! {
            () = &mut stop => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(a) => {
                backoff = ACCEPT_BACKOFF_MIN;
                a
            }
            Err(e) => {
                // EMFILE and friends: retrying at once would spin a core.
                warn_once_a_minute(format!("HTTP: cannot accept a connection ({e}); backing off"));
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(ACCEPT_BACKOFF_MAX);
                continue;
            }
        };
        if connections.open() >= max_connections {
            warn_once_a_minute(format!(
                "HTTP: {max_connections} connections open ([server] max_connections); closing new ones, e.g. from {peer}"
            ));
            drop(stream);
            continue;
        }
        connections.0.fetch_add(1, Ordering::Relaxed);
        let slot = Slot(connections.clone());
        tasks.spawn(connection(stream, peer, app.clone(), slot, closing_rx.clone()));
    }
    // Stopping: idle connections close now, busy ones finish what they are
    // sending (for at most DRAIN).
    let _ = closing.send(true);
    let _ = tokio::time::timeout(DRAIN, async { while tasks.join_next().await.is_some() {} }).await;
}

async fn connection(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    app: Router,
    _slot: Slot,
    mut closing: tokio::sync::watch::Receiver<bool>,
) {
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        let app = app.clone();
        async move {
            let response = AssertUnwindSafe(app.oneshot(request.map(Body::new))).catch_unwind().await;
            Ok::<_, Infallible>(match response {
                Ok(Ok(response)) => response,
                Ok(Err(never)) => match never {},
                Err(_) => ApiError::internal("internal error: the request could not be answered").into_response(),
            })
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(HEADER_TIMEOUT);
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    let outcome = tokio::select! {
        outcome = conn.as_mut() => outcome,
        () = tokio::time::sleep(CONNECTION_LIFETIME) => {
            conn.as_mut().graceful_shutdown();
            tokio::time::timeout(DRAIN, conn.as_mut()).await.unwrap_or(Ok(()))
        }
        _ = async { closing.wait_for(|c| *c).await.map(|_| ()) } => {
            conn.as_mut().graceful_shutdown();
            tokio::time::timeout(DRAIN, conn.as_mut()).await.unwrap_or(Ok(()))
        }
    };
    if let Err(e) = outcome
        && !e.is_incomplete_message()
        && !e.is_timeout()
    {
        tracing::debug!(%peer, "HTTP connection ended: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn boom() -> &'static str {
        if std::hint::black_box(true) {
            panic!("a bug");
        }
        "never"
    }

    #[tokio::test]
    async fn a_handler_that_panics_answers_a_json_500_and_the_server_goes_on() {
        let app = Router::new()
            .route("/boom", axum::routing::get(boom))
            .route("/fine", axum::routing::get(|| async { "fine" }));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, app, 8, async move {
            let _ = stopped.await;
        }));
        let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
        let boom = client.get(format!("http://{addr}/boom")).send().await.unwrap();
        assert_eq!(boom.status().as_u16(), 500);
        let body: serde_json::Value = serde_json::from_str(&boom.text().await.unwrap()).unwrap();
        assert!(body["error"].as_str().is_some_and(|e| e.contains("internal error")), "{body}");
        let fine = client.get(format!("http://{addr}/fine")).send().await.unwrap();
        assert_eq!(fine.text().await.unwrap(), "fine");
        let _ = stop.send(());
        tokio::time::timeout(Duration::from_secs(15), server).await.unwrap().unwrap();
    }
}
