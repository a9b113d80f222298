//! `GET /services/{id}`: one service's page — its state and root cause,
//! a 24-hour and a 30-day history chart as server-rendered SVG (no
//! JavaScript), every probe with its target and last result, and its
//! incidents of the last 30 days. Linked from the status page and from
//! every alert e-mail.

use std::sync::Arc;
use std::time::SystemTime;

use axum::extract::{Path, State};
use axum::response::{Html, IntoResponse, Response};

use maud::{Markup, html};

use super::status_page::{ServiceView, document, gather, incident_list, service_card};
use super::{ApiError, AppState};
use crate::store::uptime::Bucket;
use crate::store::{Incident, Reader};
use crate::time::{from_unix, unix, utc_text};
use crate::verdict::ServiceStatus;

/// One chart: buckets of `step` seconds ending after `now`.
struct Chart {
    title: &'static str,
    buckets: Vec<Bucket>,
}

fn colour(status: ServiceStatus) -> &'static str {
    match status {
        ServiceStatus::Up => "#1f9d55",
        ServiceStatus::Degraded => "#e3a008",
        ServiceStatus::Down => "#d93025",
        ServiceStatus::Unknown => "#d5d9df",
    }
}

/// A bar per bucket, as tall as its uptime, coloured by its worst status.
fn svg(chart: &Chart) -> Markup {
    let n = chart.buckets.len().max(1);
    html! {
        svg class="chart" viewBox={ "0 0 " (n * 10) " 40" } preserveAspectRatio="none" role="img" aria-label=(chart.title) {
            @for (i, b) in chart.buckets.iter().enumerate() {
                @let ratio = b.ratio.unwrap_or(1.0).clamp(0.0, 1.0);
                @let height = if b.status == ServiceStatus::Unknown { 40.0 } else { (ratio * 36.0).max(4.0) + 4.0 };
                @let title = match b.ratio {
                    Some(r) => format!("{} UTC: {} ({:.2}% up)", utc_text(from_unix(b.start)), b.status.as_str(), r * 100.0),
                    None => format!("{} UTC: no data", utc_text(from_unix(b.start))),
                };
                rect x=(i * 10) y=(format!("{:.1}", 40.0 - height)) width="9" height=(format!("{height:.1}")) fill=(colour(b.status)) {
                    title { (title) }
                }
            }
        }
    }
}

fn render(vantage: &str, s: &ServiceView, charts: &[Chart], incidents: &[Incident], now: i64) -> String {
    let header = html! {
        p class="meta" { a href="/" { "← all services" } " · vantage " b { (vantage) } " · updated " (utc_text(from_unix(now))) " UTC" }
    };
    let main = html! {
        (service_card(s, html! { h1 { (s.name) } }, now, html! {
            @for chart in charts { h2 { (chart.title) } (svg(chart)) }
        }))
        section class="service" {
            h2 { "Probes" }
            table {
                tr { th { "probe" } th { "kind" } th { "role" } th { "target" } th { "last result" } }
                @for p in &s.probes {
                    tr {
                        td { (p.id) } td { (p.kind) } td { (p.role) } td { (p.target) }
                        td { b { (p.result) } br; span class="small" { (p.detail) } }
                    }
                }
            }
        }
        section class="service" {
            h2 { "Incidents, last 30 days" }
            @if incidents.is_empty() { p class="small" { "None." } } @else { (incident_list(incidents.iter())) }
        }
    };
    let footer = html! { "chatpulse · " a href="/" { "status page" } };
    document(&format!("{} — chatpulse", s.name), header, main, footer).into_string()
}

fn charts(reader: &Reader, service: &str, now: i64) -> Vec<Chart> {
    [("Last 24 hours", 3_600, 24), ("Last 30 days", 86_400, 30)]
        .into_iter()
        .map(|(title, step, count)| {
            let to = now - now.rem_euclid(step) + step;
            let buckets = reader.history(service, to - count * step, to, step, now).unwrap_or_default();
            Chart { title, buckets }
        })
        .collect()
}

/// The handler.
pub async fn page(State(state): State<Arc<AppState>>, Path(id): Path<String>) -> Response {
    let config = state.config.borrow().clone();
    let vantage = config.monitor.vantage.clone();
    let view = {
        let verdict = state.verdict.read().await;
        gather(&config, &verdict, unix(SystemTime::now())).0.into_iter().find(|s| s.id == id)
    };
    let Some(view) = view else {
        return ApiError::not_found(format!("no service \"{id}\"")).into_response();
    };
    let reader = state.history.clone();
    let now = unix(SystemTime::now());
    let page = tokio::task::spawn_blocking(move || {
        let charts = charts(&reader, &view.id, now);
        let incidents = reader.incidents(Some(&view.id), now - 30 * 86_400).unwrap_or_default();
        render(&vantage, &view, &charts, &incidents, now)
    })
    .await
    .unwrap_or_else(|_| "<!doctype html><title>chatpulse</title><p>The page failed to render.</p>".into());
    Html(page).into_response()
}
