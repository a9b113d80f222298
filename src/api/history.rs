//! History endpoints (README, "API"): `/api/v1/services/{id}/uptime`,
//! `/api/v1/services/{id}/history`, `/api/v1/incidents`. Queries run on a
//! blocking thread against the store's read-only connection.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use serde::Serialize;

use super::services::CauseView;
use super::{ApiError, AppState};
use crate::store::Incident;
use crate::time::{from_unix, rfc3339, unix};
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

/// The uptime response.
#[derive(Serialize)]
pub struct UptimeView {
    service: String,
    window: String,
    from: String,
    to: String,
    uptime_ratio: Option<f64>,
    down_seconds: i64,
    degraded_seconds: i64,
    unknown_seconds: i64,
    maintenance_seconds: i64,
    observed_seconds: i64,
    incidents: usize,
    mttr_seconds: Option<f64>,
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

impl UptimeView {
    /// The view of one service's report over `[from, to)`.
    pub fn new(service: String, window: String, from: i64, to: i64, report: &crate::store::Report) -> UptimeView {
        UptimeView {
            service,
            window,
            from: rfc3339(from_unix(from)),
            to: rfc3339(from_unix(to)),
            uptime_ratio: report.uptime.ratio,
            down_seconds: report.uptime.down,
            degraded_seconds: report.uptime.degraded,
            unknown_seconds: report.uptime.unknown,
            maintenance_seconds: report.uptime.maintenance,
            observed_seconds: report.uptime.observed,
            incidents: report.incidents,
            mttr_seconds: report.mttr_seconds,
        }
    }
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

/// One incident as the API shows it.
#[derive(Serialize)]
pub struct IncidentView {
    id: i64,
    service: String,
    status: String,
    started_at: String,
    ended_at: Option<String>,
    duration_seconds: i64,
    cause: CauseView,
    group: Option<i64>,
}

impl IncidentView {
    /// From a stored incident, as of `now`.
    pub fn new(i: Incident, now: i64) -> IncidentView {
        IncidentView {
            id: i.id,
            duration_seconds: i.ended_at.unwrap_or(now) - i.started_at,
            service: i.service,
            status: i.status.as_str().into(),
            started_at: rfc3339(from_unix(i.started_at)),
            ended_at: i.ended_at.map(|e| rfc3339(from_unix(e))),
            cause: CauseView { layer: i.cause_layer, summary: i.cause_summary },
            group: i.group_id,
        }
    }
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
