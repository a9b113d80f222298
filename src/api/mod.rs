//! HTTP on `[server].listen`: `/metrics`, `/healthz`, the JSON API (README,
//! "API") and the status page.
//!
//! Handlers only read: the verdict's current state (shared with the verdict
//! task behind a lock), the metrics registry, and the history store through
//! its read-only handle. Errors are JSON `{"error": "..."}` with 400 or 404.

pub mod history;
pub mod serve;
mod service_page;
mod services;
mod status_page;

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::sync::{RwLock, watch};

use crate::config::Config;
use crate::metrics::Metrics;
use crate::verdict::Verdict;

/// What the handlers read.
pub struct AppState {
    /// The running config (replaced on reload).
    pub config: watch::Receiver<Arc<Config>>,
    /// Current probe and service states.
    pub verdict: Arc<RwLock<Verdict>>,
    /// The metrics registry.
    pub metrics: Arc<Metrics>,
    /// The monitor's own health.
    pub health: Arc<crate::health::Health>,
    /// The history store, read-only.
    pub history: Arc<crate::store::Reader>,
    /// The BGP sources' health (empty without bgp probes).
    pub feed: crate::bgp::FeedStatus,
}

/// A JSON error response.
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    /// 404 with a message.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError { status: StatusCode::NOT_FOUND, message: message.into() }
    }

    /// 400 with a message.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError { status: StatusCode::BAD_REQUEST, message: message.into() }
    }

    /// 500 with a message.
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError { status: StatusCode::INTERNAL_SERVER_ERROR, message: message.into() }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(serde_json::json!({ "error": self.message }))).into_response()
    }
}

/// Every route.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", get(status_page::page))
        .route("/services/{id}", get(service_page::page))
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/api/v1/services", get(services::list))
        .route("/api/v1/services/{id}/uptime", get(history::uptime))
        .route("/api/v1/services/{id}/history", get(history::history))
        .route("/api/v1/incidents", get(history::incidents))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn(json_errors))
        .with_state(state)
}

/// Every error status is JSON `{"error": "…"}` (README, "API"), whatever
/// produced it (an extractor's rejection, a 405): text bodies become the
/// message. `/healthz` keeps its one plain line for probes and load balancers.
async fn json_errors(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let plain = request.uri().path() == "/healthz";
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if plain || is_json || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let body = axum::body::to_bytes(response.into_body(), 64 * 1024).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&body).trim().to_string();
    let message = if text.is_empty() { status.canonical_reason().unwrap_or("error").to_lowercase() } else { text };
    ApiError { status, message }.into_response()
}

async fn method_not_allowed() -> ApiError {
    ApiError { status: StatusCode::METHOD_NOT_ALLOWED, message: "method not allowed: only GET is served".into() }
}

/// Size of one chunk of the `/metrics` body.
const METRICS_CHUNK: usize = 64 * 1024;

/// A `fmt::Write` that hands the text on in chunks of [`METRICS_CHUNK`]
/// bytes, waiting while the client has not taken the earlier ones.
struct ChunkWriter {
    buf: String,
    tx: tokio::sync::mpsc::Sender<axum::body::Bytes>,
}

/// How long a `/metrics` client may read nothing before it is cut off:
/// while the text is encoded, the registry's families are read-locked, and
/// a new series (a new root cause, say) waits for that lock on the probes'
/// thread.
const METRICS_STALL: std::time::Duration = std::time::Duration::from_secs(10);

impl ChunkWriter {
    fn send(&mut self) -> std::fmt::Result {
        let chunk = std::mem::replace(&mut self.buf, String::with_capacity(METRICS_CHUNK + 4096));
        let sent = tokio::runtime::Handle::current()
            .block_on(tokio::time::timeout(METRICS_STALL, self.tx.send(axum::body::Bytes::from(chunk))));
        match sent {
            Ok(Ok(())) => Ok(()),
            // The client went away, or stopped reading.
            _ => Err(std::fmt::Error),
        }
    }
}

impl std::fmt::Write for ChunkWriter {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.buf.push_str(s);
        if self.buf.len() >= METRICS_CHUNK { self.send() } else { Ok(()) }
    }
}

/// Encoded on a blocking thread, so the ~100 ms of work for 10,000 probes
/// never stalls the probes' thread, and streamed in 64 KB chunks, so the
/// 17 MB text is never held whole (at most a few chunks are in flight).
async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let registry = state.metrics.clone();
    let (tx, rx) = tokio::sync::mpsc::channel::<axum::body::Bytes>(4);
    tokio::task::spawn_blocking(move || {
        let mut out = ChunkWriter { buf: String::with_capacity(METRICS_CHUNK + 4096), tx };
        // An error means the client went away: nothing more to send.
        if registry.encode(&mut out).is_ok() && !out.buf.is_empty() {
            let _ = out.send();
        }
    });
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (Ok::<_, std::io::Error>(chunk), rx))
    });
    ([(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], axum::body::Body::from_stream(body)).into_response()
}

async fn healthz(State(state): State<Arc<AppState>>) -> Response {
    match state.health.fault(crate::time::unix(std::time::SystemTime::now())) {
        None => (StatusCode::OK, "ok\n").into_response(),
        Some(fault) => (StatusCode::SERVICE_UNAVAILABLE, format!("{fault}\n")).into_response(),
    }
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such route")
}
