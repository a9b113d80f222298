//! The JSON shapes of history (a service's uptime over a window, an
//! incident), shared by the API (README, "API") and `chatpulse uptime
//! --json`, so that both say the same thing in the same words.

use serde::Serialize;

use crate::cause::Cause;
use crate::store::Incident;
use crate::time::{from_unix, rfc3339};

/// A root cause: its layer, its reasons and its one-line summary.
#[derive(Serialize)]
pub struct CauseView {
    /// `bgp`, `dns`, `transport`, `chat` or `http`.
    pub layer: &'static str,
    /// The distinct reasons at that layer, comma-separated.
    pub reason: String,
    /// `layer: detail; detail`.
    pub summary: String,
}

impl CauseView {
    /// The view of a cause.
    pub fn of(cause: &Cause) -> CauseView {
        CauseView { layer: cause.layer.as_str(), reason: cause.reason_words(), summary: cause.summary.clone() }
    }
}

/// A service's uptime over a window.
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

/// One incident.
#[derive(Serialize)]
pub struct IncidentView {
    id: i64,
    service: String,
    status: String,
    started_at: String,
    ended_at: Option<String>,
    duration_seconds: i64,
    cause: Option<CauseView>,
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
            cause: i.cause.as_ref().map(CauseView::of),
            group: i.group_id,
        }
    }
}
