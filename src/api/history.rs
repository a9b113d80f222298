//! History endpoints (README, "API"): `/api/v1/services/{id}/uptime`,
//! `/api/v1/services/{id}/history`, `/api/v1/incidents`. Queries run on a
//! blocking thread against the store's read-only connection.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use serde::Serialize;

use super::{ApiError, AppState};
use crate::time::{from_unix, rfc3339, unix};
use crate::views::{IncidentView, UptimeView};
use crate::window::{Window, WindowError};

fn param(query: &HashMap<String, String>, key: &str, default: &str) -> Result<Window, ApiError> {
    Ok(Window::parse(key, query.get(key).map(String::as_str).unwrap_or(default))?)
}

impl From<WindowError> for ApiError {
    fn from(e: WindowError) -> ApiError {
        ApiError::bad_request(e.to_string())
    }
}

fn known_service(state: &AppState, id: &str) -> Result<(), ApiError> {
    if state.config.borrow().services.iter().any(|s| s.id == id) {
        Ok(())
    } else {
        Err(ApiError::not_found(format!("no service \"{id}\"")))
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, crate::store::StoreError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(|e| ApiError::internal(e.to_string()))
}

/// `GET /api/v1/services/{id}/uptime?window=30d`.
pub async fn uptime(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<UptimeView>, ApiError> {
    known_service(&state, &id)?;
    let window = param(&query, "window", "30d")?;
    let now = unix(std::time::SystemTime::now());
    let from = window.start("window", now)?;
    let to = now;
    let reader = state.history.clone();
    let service = id.clone();
    let report = blocking(move || reader.report(&service, from, to, now)).await?;
    Ok(Json(UptimeView::new(id, window.text().to_string(), from, to, &report)))
}

#[derive(Serialize)]
struct BucketView {
    start: String,
    status: String,
    uptime_ratio: Option<f64>,
}

/// The history response.
#[derive(Serialize)]
pub struct HistoryView {
    service: String,
    step: String,
    buckets: Vec<BucketView>,
}

/// `GET /api/v1/services/{id}/history?window=24h&step=5m`.
pub async fn history(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<HistoryView>, ApiError> {
    known_service(&state, &id)?;
    let window = param(&query, "window", "24h")?;
    let step = param(&query, "step", "5m")?;
    let now = unix(std::time::SystemTime::now());
    let grid = window.buckets(&step, now)?;
    let reader = state.history.clone();
    let service = id.clone();
    let buckets = blocking(move || reader.history(&service, grid.from, grid.to, grid.step, now)).await?;
    Ok(Json(HistoryView {
        service: id,
        step: step.text().to_string(),
        buckets: buckets
            .into_iter()
            .map(|b| BucketView {
                start: rfc3339(from_unix(b.start)),
                status: b.status.as_str().into(),
                uptime_ratio: b.ratio,
            })
            .collect(),
    }))
}

/// The incidents response.
#[derive(Serialize)]
pub struct IncidentsView {
    incidents: Vec<IncidentView>,
}

/// `GET /api/v1/incidents?service=ID&since=30d`.
pub async fn incidents(
    State(state): State<Arc<AppState>>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<IncidentsView>, ApiError> {
    let service = query.get("service").cloned();
    if let Some(id) = &service {
        known_service(&state, id)?;
    }
    let now = unix(std::time::SystemTime::now());
    let since = param(&query, "since", "30d")?.start("since", now)?;
    let reader = state.history.clone();
    let list = blocking(move || reader.incidents(service.as_deref(), since)).await?;
    Ok(Json(IncidentsView { incidents: list.into_iter().map(|i| IncidentView::new(i, now)).collect() }))
}
